package registry

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"golang.org/x/crypto/ssh"

	"github.com/flyingcircusio/devhost/internal/channel"
	"github.com/flyingcircusio/devhost/internal/diag"
	"github.com/flyingcircusio/devhost/internal/names"
)

// reservedUsers are users the container's configuration defines itself:
// a service user of that name would declare users.users.developer twice
// (a Nix error in the generated file) or turn root into a normal user.
var reservedUsers = map[string]bool{"developer": true, "root": true}

var (
	// environmentName is a batou environment: a directory name under
	// environments/. It reaches Nix (escaped), HTML and file names.
	environmentName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	// labelKey keeps label keys usable as HCL identifiers, Nix attribute
	// names and systemd/Prometheus-style labels without quoting surprises.
	labelKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,62}$`)
	// stateVersion is a NixOS release as lib.trivial.release names it.
	stateVersion = regexp.MustCompile(`^[0-9]{2}\.[0-9]{2}$`)
)

// Validate checks everything a registry entry must satisfy before it is
// written: names and aliases usable as DNS labels and NixOS container names,
// a permitted channel URL, an address, a state and a creation time. The
// error is a *diag.Error (without positions: there is no file yet).
func (c *Container) Validate() error {
	return diag.NewError(c.check(noRange), nil)
}

// ValidStateVersion reports whether v is a NixOS release as
// system.stateVersion takes it ("24.11").
func ValidStateVersion(v string) bool { return stateVersion.MatchString(v) }

// check validates c; rng gives the range of an attribute's value in the
// file it came from, or nil.
func (c *Container) check(rng func(attr string) *hcl.Range) hcl.Diagnostics {
	var diags hcl.Diagnostics
	add := func(attr, summary, detail string) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: rng(attr)})
	}
	nameErr := func(attr, summary string, err error) {
		detail := err.Error()
		var ne *names.Error
		if errors.As(err, &ne) && ne.Hint != "" {
			detail += "; " + ne.Hint
		}
		add(attr, summary, detail+".")
	}
	if err := names.Container(c.Name); err != nil {
		nameErr("name", "Invalid container name", err)
	} else if c.Name == "localhost" {
		// The generated set gives every container a line in the host's
		// /etc/hosts; this one would make localhost resolve to it there.
		add("name", "Reserved container name", "\"localhost\" would name this container in the host's /etc/hosts; choose another name.")
	}
	if err := names.Login(c.Owner); err != nil {
		nameErr("owner", "Invalid owner", err)
	}
	if c.Environment != "" && !environmentName.MatchString(c.Environment) {
		add("environment", "Invalid environment", fmt.Sprintf("%q is not a batou environment name; use letters, digits, '.', '_' and '-' (at most 64).", c.Environment))
	}
	if c.Root != "" && (!filepath.IsAbs(c.Root) || hasControl(c.Root)) {
		add("root", "Invalid root", fmt.Sprintf("%q must be an absolute path without control characters, or empty.", c.Root))
	}
	if c.ServiceUser != "" {
		if err := names.User(c.ServiceUser); err != nil {
			nameErr("service_user", "Invalid service_user", err)
		} else if reservedUsers[c.ServiceUser] {
			add("service_user", "Reserved service_user", fmt.Sprintf("%q is a user every container already has; give the environment its own service user, e.g. \"s-%s\".", c.ServiceUser, c.Name))
		}
	}
	if _, err := channel.Parse(c.Channel); err != nil {
		nameErr("channel", "Invalid channel", err)
	}
	if c.StateVersion != "" && !ValidStateVersion(c.StateVersion) {
		add("state_version", "Invalid state_version", fmt.Sprintf("%q is not a NixOS release; write it like \"24.11\" (the release the container was created with), or remove the line and the next ensure records its channel's release.", c.StateVersion))
	}
	if len(c.Aliases) > names.MaxAliases {
		add("aliases", "Too many aliases", fmt.Sprintf("%d aliases are listed; at most %d fit the container's certificate (Let's Encrypt: 100 names, one of them the container's own). Remove some.", len(c.Aliases), names.MaxAliases))
	}
	seen := map[string]bool{}
	for _, a := range c.Aliases {
		if err := names.Alias(a); err != nil {
			nameErr("aliases", "Invalid alias", err)
			continue
		}
		if seen[a] {
			add("aliases", "Duplicate alias", fmt.Sprintf("%q is listed twice; remove one.", a))
		}
		seen[a] = true
	}
	switch {
	case !c.Address.IsValid():
		add("address", "Missing address", "Every container needs its own address from the host's address pool.")
	case c.Address.IsUnspecified() || c.Address.IsMulticast() || c.Address.IsLoopback() || c.Address.Zone() != "":
		add("address", "Invalid address", fmt.Sprintf("%s cannot be a container's address; use one from the host's address pool.", c.Address))
	}
	if a := c.Address6; a.IsValid() && (!a.Is6() || a.Is4In6() || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.Zone() != "") {
		add("address6", "Invalid address6", fmt.Sprintf("%s cannot be a container's IPv6 address; use one from the host's addresses.network6, or remove the line and the next ensure gives the container one.", a))
	}
	if c.State != Running && c.State != Stopped {
		add("state", "Invalid state", fmt.Sprintf("%q is not a state; use %q or %q.", string(c.State), Running, Stopped))
	}
	if c.Created.IsZero() {
		add("created", "Missing creation time", "created must be an RFC 3339 time such as \"2026-11-20T10:00:00Z\".")
	}
	if !c.Deployed.IsZero() && !c.Created.IsZero() && c.Deployed.Before(c.Created) {
		add("deployed", "Deployed before created", fmt.Sprintf("deployed %s is before created %s; fix one of them.",
			c.Deployed.UTC().Format(timeLayout), c.Created.UTC().Format(timeLayout)))
	}
	for i, k := range c.SSHKeys {
		if err := checkSSHKey(k); err != nil {
			add("ssh_keys", "Invalid SSH key", fmt.Sprintf("ssh_keys[%d]: %v; use one public key per entry, as in authorized_keys (\"ssh-ed25519 AAAA… comment\").", i, err))
		}
	}
	shared := map[string]bool{}
	for _, u := range c.SharedWith {
		switch err := names.Login(u); {
		case err != nil:
			nameErr("shared_with", "Invalid user in shared_with", err)
		case u == c.Owner:
			add("shared_with", "Owner in shared_with", fmt.Sprintf("%q owns the container already; remove it from shared_with.", u))
		case reservedUsers[u]:
			add("shared_with", "Reserved user in shared_with", fmt.Sprintf("%q cannot log into the devhost as a colleague; remove it.", u))
		case shared[u]:
			add("shared_with", "Duplicate user in shared_with", fmt.Sprintf("%q is listed twice; remove one.", u))
		}
		shared[u] = true
	}
	if len(c.SharedWith) > MaxShared {
		add("shared_with", "Too many users in shared_with", fmt.Sprintf("%d users are listed, at most %d are allowed.", len(c.SharedWith), MaxShared))
	}
	for i, k := range c.SharedKeys {
		if err := checkSSHKey(k); err != nil {
			add("shared_keys", "Invalid SSH key", fmt.Sprintf("shared_keys[%d]: %v; devhost writes these from the shared users' authorized_keys: remove the entry and run `devhost ensure` or `devhost share`.", i, err))
		}
	}
	for _, fe := range c.Limits.Problems() {
		add(fe.Field, "Invalid "+fe.Field, fe.Error()+".")
	}
	if c.ProtectUser != "" {
		// It becomes the user name of an htpasswd line "user:hash".
		if err := names.User(c.ProtectUser); err != nil {
			nameErr("protect_user", "Invalid protect_user", err)
		}
	}
	if strings.ContainsRune(c.LastError, 0) {
		add("last_error", "Invalid last_error", "It contains a NUL byte.")
	}
	keys := make([]string, 0, len(c.Labels))
	for k := range c.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := c.Labels[k]
		if !labelKey.MatchString(k) {
			add("labels", "Invalid label name", fmt.Sprintf("%q: use a letter or '_' followed by letters, digits, '_', '.' or '-' (at most 63).", k))
		}
		if hasControl(v) || len(v) > 1024 {
			add("labels", "Invalid label value", fmt.Sprintf("label %q: values are one line of at most 1024 characters.", k))
		}
	}
	return diags
}

// MaxShared bounds how many users a container is shared with: each one's
// keys are read on every ensure.
const MaxShared = 32

// noRange is check's range function when there is no file.
func noRange(string) *hcl.Range { return nil }

// normalize makes empty lists and maps nil, so an entry reads the same
// whether the file says `aliases = []` or leaves the attribute out.
func (c *Container) normalize() {
	if len(c.Aliases) == 0 {
		c.Aliases = nil
	}
	if len(c.SSHKeys) == 0 {
		c.SSHKeys = nil
	}
	if len(c.SharedWith) == 0 {
		c.SharedWith = nil
	}
	if len(c.SharedKeys) == 0 {
		c.SharedKeys = nil
	}
	if len(c.Labels) == 0 {
		c.Labels = nil
	}
}

// checkSSHKey accepts exactly one authorized_keys line without options, so
// a key can never smuggle a second line or a command= restriction.
func checkSSHKey(k string) error {
	if hasControl(k) {
		return errors.New("it contains a line break or control character")
	}
	_, _, options, rest, err := ssh.ParseAuthorizedKey([]byte(k))
	switch {
	case err != nil:
		return errors.New("it is not an SSH public key")
	case len(options) > 0:
		return errors.New("authorized_keys options are not allowed")
	case len(rest) > 0:
		return errors.New("it holds more than one key")
	}
	return nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}
