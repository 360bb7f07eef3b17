// Package environment is batou's environment model: what a deployment's
// environments/<env>/environment.cfg, hostmap.json, provision.nix and
// provision.sh say, read with batou's own rules and validated for devhost.
//
// batou is the reference. Every rule here (how lists are split, which
// provisioner a host gets, which real name it has, when hostmap.json is
// written) follows batou's environment.py, host.py and provision.py, so that
// `devhost check` agrees with what `batou deploy` will do. devhost adds the
// checks batou leaves to the devhost (container names, aliases, channel
// URLs) and reports every problem at once as positioned hcl.Diagnostics.
//
// Problems only batou cares about (an unknown section, a timeout that is not
// a number) are warnings: batou reports them when it deploys, and they do not
// stop devhost from creating the containers.
package environment

import (
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/flyingcircusio/devhost/internal/limits"
	"github.com/flyingcircusio/devhost/internal/rawconfig"
)

// Known provisioner methods. batou 2.3/2.4 register their container
// provisioner as "fc-nixos-dev-container"; "devhost" is the same provisioner
// named for this tool. Both read the keys host and channel.
const (
	MethodFCContainer = "fc-nixos-dev-container"
	MethodDevhost     = "devhost"
)

// KnownMethods lists the provisioner methods devhost provisions.
func KnownMethods() []string { return []string{MethodFCContainer, MethodDevhost} }

// Setting is one option as the environment file gives it.
type Setting struct {
	Value string
	// Set is true when the file gives the option (possibly via [DEFAULT]);
	// otherwise Value is batou's default, or "".
	Set bool
	// Range is the value's range (the option name's when the value is
	// empty); NameRange the option name's. Both are zero when not Set.
	Range     hcl.Range
	NameRange hcl.Range
}

// Settings are the [environment] section's options that batou reads, with
// batou's defaults applied (Environment._set_defaults).
type Settings struct {
	ServiceUser     Setting
	RequireSudo     Setting
	HostDomain      Setting
	TargetDirectory Setting // default "~/deployment"
	ConnectMethod   Setting // default "ssh"
	UpdateMethod    Setting // default "rsync"
	Branch          Setting
	Platform        Setting // default: host_domain
	Timeout         Setting // default "3"
	RepositoryURL   Setting
	RepositoryRoot  Setting
	Jobs            Setting
	RequireV4       Setting // "True", "False" or "optional"; batou's default True
	RequireV6       Setting // batou's default False

	// TimeoutSeconds is batou's int(timeout); 3 when unset or invalid.
	TimeoutSeconds int
	// Other holds the [environment] options batou does not read (e.g.
	// "develop" in older projects), in file order. batou ignores them
	// silently, and so does devhost.
	Other []rawconfig.Option
}

// Environment is one batou environment.
type Environment struct {
	// Name is the environment's name (the directory under environments/).
	Name string
	// Root is the deployment root (where environments/ is); Dir is
	// Root/environments/Name. Both are paths on disk.
	Root, Dir string
	// ConfigFile is environment.cfg's name as used in diagnostics.
	ConfigFile string
	File       *rawconfig.File

	Settings     Settings
	Hosts        []*Host
	Provisioners []*Provisioner
	// Overrides are the [component:NAME] sections: attribute values batou
	// sets on the component (and provision.sh sees as COMPONENT_<NAME>_<ATTR>).
	Overrides []*Override
	// Resolver is [resolver]: fixed addresses for host names.
	Resolver []ResolverEntry
	// VFS is the [vfs] section, or the zero Section.
	VFS rawconfig.Section

	HostMap   *HostMap
	Provision Provision

	files map[string][]byte
}

// Host is one host of the environment, from [hosts] or [host:NAME].
type Host struct {
	// Name is the host's name in the environment (without a leading "!").
	Name      string
	NameRange hcl.Range
	// Section is the [host:NAME] section, the zero Section for a [hosts] entry.
	Section rawconfig.Section
	// Ignore: batou does not connect to the host ("!name" in [hosts], or
	// ignore = True). batou still provisions it if it has a provisioner.
	Ignore     bool
	Components []Component

	Platform    Setting // default: the environment's platform
	ServiceUser Setting // default: the environment's service_user
	RequireSudo Setting

	// ProvisionerRef is "provisioner = …" as written (not Set: default).
	ProvisionerRef Setting
	// Provisioner is the provisioner that creates this host, nil when the
	// host is not provisioned; NotProvisioned then says why.
	Provisioner    *Provisioner
	NotProvisioned string

	// Dynamic is provision-dynamic-hostname = True: the provisioner picks
	// the real name, which hostmap.json remembers.
	Dynamic        bool
	DynamicSetting Setting
	Aliases        []Alias
	// Limits are provision-memory, provision-cpu-weight,
	// provision-cpu-quota and provision-tasks-max (the host's own, else
	// its provisioner's), checked; zero fields are not set.
	Limits limits.Limits
	// ExpireAfter is provision-expire-after (0: not set).
	ExpireAfter time.Duration
	// Data are the data-* options, name without "data-", in file order.
	Data []Data

	// RealName is the container's name: Name for a static host, the
	// hostmap.json entry for a dynamic one, "" while not yet assigned.
	// RealNameRange is where it comes from.
	RealName      string
	RealNameRange hcl.Range
}

// Provisioned reports whether devhost creates a container for h.
func (h *Host) Provisioned() bool { return h.Provisioner != nil }

// Assigned reports whether h's real name is known.
func (h *Host) Assigned() bool { return h.RealName != "" }

// Alias is one provision-aliases entry: public as <alias>.<name>.<devhost>.
type Alias struct {
	Name  string
	Range hcl.Range
}

// Data is one data-* attribute of a host.
type Data struct {
	Name  string // without "data-"
	Value Setting
}

// Provisioner is a [provisioner:NAME] section.
type Provisioner struct {
	Name      string
	NameRange hcl.Range
	Section   rawconfig.Section
	Method    Setting
	// Host is the devhost's public address, e.g. dev.example.com.
	Host Setting
	// Channel is the NixOS channel URL the containers are pinned to.
	Channel Setting
	// Other are the remaining options, in file order.
	Other []rawconfig.Option
}

// Override is a [component:NAME] section.
type Override struct {
	Component string
	NameRange hcl.Range
	Options   []rawconfig.Option
}

// ResolverEntry is one address of [resolver]: name = addresses, one a line.
type ResolverEntry struct {
	Name    string
	Address string
	IPv6    bool
	Range   hcl.Range
}

// Provision describes the environment's provisioning code.
type Provision struct {
	// NixFile and ShFile are provision.nix and provision.sh as named in
	// diagnostics; NixExists and ShExists whether they exist.
	NixFile, ShFile     string
	NixExists, ShExists bool
	// NixCopied: provision.nix is copied into every container as
	// /etc/local/nixos/provision-container.nix, which batou does unless
	// provision.sh mentions "provision.nix" itself.
	NixCopied bool
}

// ProvisionNixTarget is where batou copies provision.nix in a container.
const ProvisionNixTarget = "/etc/local/nixos/provision-container.nix"

// Files returns the contents of the files the environment's diagnostics
// refer to, by the names used in their ranges, for snippets.
func (e *Environment) Files() map[string][]byte { return e.files }

// Host returns the host named name in the environment, or nil.
func (e *Environment) Host(name string) *Host {
	for _, h := range e.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Provisioned returns the hosts devhost creates containers for, in batou's
// order ([hosts] entries first, then [host:NAME] sections in file order).
func (e *Environment) Provisioned() []*Host {
	var out []*Host
	for _, h := range e.Hosts {
		if h.Provisioned() {
			out = append(out, h)
		}
	}
	return out
}

// RealName returns the real (container) name of the host named name in the
// environment, and whether it is known: false for an unknown host or a
// dynamic host without hostmap.json entry yet.
func (e *Environment) RealName(name string) (string, bool) {
	h := e.Host(name)
	if h == nil || h.RealName == "" {
		return "", false
	}
	return h.RealName, true
}
