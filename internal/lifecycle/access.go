package lifecycle

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strings"

	"github.com/flyingcircusio/devhost/internal/hostconfig"
	"github.com/flyingcircusio/devhost/internal/names"
	"github.com/flyingcircusio/devhost/internal/registry"
)

// ErrDenied is matched (errors.Is) by every refusal of an authorization
// check; nothing has been changed when it is returned.
var ErrDenied = errors.New("permission denied")

// DeniedError says who was refused what, and why.
type DeniedError struct {
	User string
	What string
	Why  string
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("%s: user %q may not %s: %s", ErrDenied, e.User, e.What, e.Why)
}

// Is makes errors.Is(err, ErrDenied) true.
func (e *DeniedError) Is(target error) bool { return target == ErrDenied }

// Caller is the person a devhost command acts for.
type Caller struct {
	// User is the invoking user: SUDO_USER when root runs devhost through
	// sudo, else the user running it.
	User string
	// Groups are the names of User's groups (primary and supplementary).
	Groups []string
	// Root is true when root runs devhost directly (no sudo user): the
	// machine's administrator, allowed everything.
	Root bool
}

// Users looks up group memberships. OSUsers is the system's database; a
// GroupFile is used by tests running unprivileged.
type Users interface {
	GroupsOf(user string) ([]string, error)
}

// OSUsers uses os/user (NSS through cgo, or /etc/passwd and /etc/group).
type OSUsers struct{}

// GroupsOf returns the names of the groups user belongs to.
func (OSUsers) GroupsOf(name string) ([]string, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", name, err)
	}
	ids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("groups of %q: %w", name, err)
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		g, err := user.LookupGroupId(id)
		if err != nil {
			continue // a gid without a name grants no named membership
		}
		out = append(out, g.Name)
	}
	return out, nil
}

// GroupFile reads memberships from a file in /etc/group format
// ("name:x:gid:user1,user2"). A user is a member of the groups that list
// them. Only honoured for unprivileged test runs (see ResolveCaller).
type GroupFile struct{ Path string }

// GroupsOf returns the groups listing name as a member.
func (g GroupFile) GroupsOf(name string) ([]string, error) {
	f, err := os.Open(g.Path)
	if err != nil {
		return nil, fmt.Errorf("group file: %w", err)
	}
	defer func() { _ = f.Close() }()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, ":")
		if len(fields) < 4 {
			continue
		}
		if slices.Contains(strings.Split(fields[3], ","), name) {
			out = append(out, fields[0])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("group file %s: %w", g.Path, err)
	}
	return out, nil
}

// Environment variables a test build of devhost (go build -tags
// devhosttest) honours, so the end-to-end tests can play several users
// without root. A production build never reads them: the command line sets
// Process.TestIdentity only in a test build, so no environment variable can
// grant anything on a real devhost.
const (
	EnvTestUser      = "DEVHOST_TEST_USER"
	EnvTestGroupFile = "DEVHOST_TEST_GROUP_FILE"
)

// Process describes the running process for ResolveCaller.
type Process struct {
	EUID    int                    // os.Geteuid()
	Env     func(string) string    // the environment
	Current func() (string, error) // the name of the user running the process
	// TestIdentity enables DEVHOST_TEST_USER and DEVHOST_TEST_GROUP_FILE.
	// Only a binary built with the devhosttest tag sets it.
	TestIdentity bool
}

// ResolveCaller decides who the caller is:
//
//   - In a test build with DEVHOST_TEST_USER set: that user, groups from
//     DEVHOST_TEST_GROUP_FILE (or the system).
//   - Running as root with SUDO_USER set (sudo sets it and callers cannot
//     choose it): that user, groups from the system; root when it is
//     "root". An unprivileged process's SUDO_USER is ignored: anybody can
//     set it there, and it would make them any user (an admin, say) to a
//     devhost whose state they can write.
//   - As root without SUDO_USER: root, the administrator.
//   - Otherwise the user running devhost, groups from the system.
func ResolveCaller(p Process, sys Users) (Caller, error) {
	if p.TestIdentity {
		if name := p.Env(EnvTestUser); name != "" {
			if name == "root" {
				return Caller{User: "root", Root: true}, nil
			}
			if err := names.Login(name); err != nil {
				return Caller{}, fmt.Errorf("%s: %w", EnvTestUser, err)
			}
			users := sys
			if path := p.Env(EnvTestGroupFile); path != "" {
				users = GroupFile{Path: path}
			}
			groups, err := users.GroupsOf(name)
			if err != nil {
				return Caller{}, err
			}
			return Caller{User: name, Groups: groups}, nil
		}
	}
	var name string
	if p.EUID == 0 {
		name = p.Env("SUDO_USER")
	}
	switch {
	case name != "":
		if err := names.Login(name); err != nil {
			return Caller{}, fmt.Errorf("SUDO_USER: %w", err)
		}
		if name == "root" {
			return Caller{User: "root", Root: true}, nil
		}
	case p.EUID == 0:
		return Caller{User: "root", Root: true}, nil
	default:
		var err error
		if name, err = p.Current(); err != nil {
			return Caller{}, fmt.Errorf("current user: %w", err)
		}
		if err := names.Login(name); err != nil {
			return Caller{}, fmt.Errorf("invoking user: %w", err)
		}
	}
	groups, err := sys.GroupsOf(name)
	if err != nil {
		return Caller{}, err
	}
	return Caller{User: name, Groups: groups}, nil
}

// Admin reports whether c may act on every container.
func (c Caller) Admin(a hostconfig.Access) bool {
	return c.Root || a.AdminGroup != "" && slices.Contains(c.Groups, a.AdminGroup)
}

// CheckMember refuses callers that are neither root, admins, nor in one of
// the groups allowed to use devhost.
func (c Caller) CheckMember(a hostconfig.Access, what string) error {
	if c.Admin(a) {
		return nil
	}
	for _, g := range a.Groups {
		if slices.Contains(c.Groups, g) {
			return nil
		}
	}
	return &DeniedError{User: c.User, What: what,
		Why: fmt.Sprintf("devhost is for members of %s; ask an administrator to add you", strings.Join(quoteAll(a.Groups), " or "))}
}

// CheckOwner refuses acting on a container owned by someone else, unless
// the caller is an administrator.
func (c Caller) CheckOwner(a hostconfig.Access, what, name, owner string) error {
	if owner == c.User || c.Admin(a) {
		return nil
	}
	return &DeniedError{User: c.User, What: what,
		Why: fmt.Sprintf("container %q belongs to %q; choose another name or ask %q or an administrator (group %q)", name, owner, owner, a.AdminGroup)}
}

// CheckShared allows the owner, an administrator, and the users the
// container is shared with: what a colleague may do (deploy over ssh,
// keep). Changing who may do it (share, unshare) and destroying stay
// CheckOwner's.
func (c Caller) CheckShared(a hostconfig.Access, what string, ct *registry.Container) error {
	if slices.Contains(ct.SharedWith, c.User) {
		return nil
	}
	return c.CheckOwner(a, what, ct.Name, ct.Owner)
}

func quoteAll(l []string) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
