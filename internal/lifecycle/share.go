package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"

	"github.com/flyingcircusio/devhost/internal/authkeys"
	"github.com/flyingcircusio/devhost/internal/names"
	"github.com/flyingcircusio/devhost/internal/registry"
)

// Accounts finds where a user's keys are.
type Accounts interface {
	Account(user string) (authkeys.Account, error)
}

// OSAccounts reads the passwd database.
type OSAccounts struct{}

// Account returns user's home and uid from the passwd database.
func (OSAccounts) Account(name string) (authkeys.Account, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return authkeys.Account{}, fmt.Errorf("user %q: %w", name, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil || !filepath.IsAbs(u.HomeDir) {
		return authkeys.Account{}, fmt.Errorf("user %q has no usable uid and home directory in the passwd database", name)
	}
	return authkeys.Account{User: name, Home: u.HomeDir, UID: uint32(uid)}, nil
}

// EnvTestHomes names a directory holding the test users' homes (<dir>/<user>,
// whose owner is the user's id). Only a devhosttest build honours it (see
// EnvTestUser).
const EnvTestHomes = "DEVHOST_TEST_HOMES"

// HomeDirs finds homes as <Dir>/<user>, owned by the user's id: the
// end-to-end tests' stand-in for the passwd database.
type HomeDirs struct{ Dir string }

// Account returns <Dir>/<user> and its owner.
func (d HomeDirs) Account(name string) (authkeys.Account, error) {
	// A login name has no '/' and cannot be "." or "..": it starts with a
	// letter or '_'.
	if err := names.Login(name); err != nil {
		return authkeys.Account{}, err
	}
	home := filepath.Join(d.Dir, name)
	fi, err := os.Stat(home)
	if err != nil {
		return authkeys.Account{}, fmt.Errorf("user %q: %w", name, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return authkeys.Account{}, fmt.Errorf("user %q: no owner of %s", name, home)
	}
	return authkeys.Account{User: name, Home: home, UID: st.Uid}, nil
}

func (h *Host) accounts() Accounts {
	if h.Accounts != nil {
		return h.Accounts
	}
	return OSAccounts{}
}

// sharedKeys reads the keys of every user in users. A user whose keys
// cannot be read loses access (their keys are left out) and gets a
// warning: a colleague's broken file must not stop the owner's deploy.
func (h *Host) sharedKeys(users []string) (keys, warnings []string) {
	for _, u := range users {
		a, err := h.accounts().Account(u)
		if err == nil {
			var k authkeys.Keys
			k, err = authkeys.Read(a)
			keys = append(keys, k.Keys...)
			warnings = append(warnings, k.Warnings...)
		}
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("the keys of %q are left out: %v", u, err))
		}
	}
	return keys, warnings
}

// ShareError is a share or unshare the caller got wrong (an unknown user,
// the owner); nothing was changed.
type ShareError struct{ Err error }

func (e *ShareError) Error() string { return e.Err.Error() }

func (e *ShareError) Unwrap() error { return e.Err }

// Share lets users log into container name as developer with the keys they
// log into the devhost with, deploy it and keep it (on=true), or takes that
// away (on=false). Only the owner or an administrator may. The container's
// system is rebuilt with the new keys and a running container switched to
// it, as an ensure does; nothing else of the entry changes.
func (h *Host) Share(ctx context.Context, name string, users []string, on bool, caller Caller) (*EnsureResult, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	verb := "share"
	if !on {
		verb = "unshare"
	}
	if err := caller.CheckMember(h.Cfg.Access, verb+" containers"); err != nil {
		return nil, err
	}
	if len(users) == 0 {
		return nil, &ShareError{Err: errors.New("name at least one user")}
	}
	for _, u := range users {
		if err := names.Login(u); err != nil {
			return nil, &ShareError{Err: err}
		}
	}
	return h.ensure(ctx, EnsureRequest{Name: name, Caller: caller, KeepProvision: true}, &entryEdit{what: verb, apply: func(c *registry.Container) error {
		if on {
			for _, u := range users {
				if u == c.Owner {
					return &ShareError{Err: fmt.Errorf("%q owns container %q already", u, name)}
				}
				// Refuse a typo before anything changes: a user the
				// devhost does not know has no keys to log in with.
				if _, err := h.accounts().Account(u); err != nil {
					return &ShareError{Err: fmt.Errorf("share %s with %q: %w", name, u, err)}
				}
				if !slices.Contains(c.SharedWith, u) {
					c.SharedWith = append(c.SharedWith, u)
				}
			}
			if len(c.SharedWith) > registry.MaxShared {
				return &ShareError{Err: fmt.Errorf("container %q would be shared with %d users; at most %d are allowed", name, len(c.SharedWith), registry.MaxShared)}
			}
			return nil
		}
		c.SharedWith = slices.DeleteFunc(c.SharedWith, func(u string) bool { return slices.Contains(users, u) })
		return nil
	}})
}
