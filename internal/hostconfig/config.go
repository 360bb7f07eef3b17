// Package hostconfig reads the devhost's host configuration: one HCL file
// (default /etc/devhost/devhost.hcl) written by the NixOS module from its
// options, or by hand on other machines and in tests.
package hostconfig

import (
	"net/netip"
	"time"

	"github.com/flyingcircusio/devhost/internal/limits"
)

// DefaultPath is where the NixOS module writes the host configuration.
const DefaultPath = "/etc/devhost/devhost.hcl"

// DefaultSystemProfile is NixOS' system profile.
const DefaultSystemProfile = "/nix/var/nix/profiles/system"

// DefaultContainersDir is where NixOS keeps the containers' root
// directories (/var/lib/nixos-containers/<name>).
const DefaultContainersDir = "/var/lib/nixos-containers"

// Config is the decoded, defaulted and validated host configuration.
// Build it with Load or Parse; a Config built by hand must be passed through
// Validate. All durations and addresses are already parsed.
type Config struct {
	// Path is the file the configuration was read from ("" when built by
	// hand). Relative paths in it are already resolved against its directory.
	Path string
	// PublicAddress is the domain under which containers are public:
	// <name>.<PublicAddress> and <alias>.<name>.<PublicAddress>.
	PublicAddress string
	// StateDir holds the registry (<StateDir>/containers/<name>.hcl), locks
	// and logs. Default /var/lib/devhost.
	StateDir string
	// GeneratedDir is the generated set the NixOS module imports.
	// Default /var/lib/devhost/generated, or <StateDir>/generated when only
	// state_dir is set.
	GeneratedDir string
	// ProfileDir holds the containers' system profiles
	// (<ProfileDir>/<name>/system). Default /nix/var/nix/profiles/per-container.
	ProfileDir string
	// ContainersDir holds the containers' root directories
	// (<ContainersDir>/<name>), where devhost reads a container's SSH host
	// key and which it removes when a container is destroyed. Default
	// DefaultContainersDir, where NixOS' container units put them.
	ContainersDir string
	// TemplateDir, when set, holds admin overrides of the embedded templates.
	TemplateDir string
	// SystemProfile is the host's system profile, which the rebuild command
	// switches. When a failed rebuild moved it (activation failed after the
	// switch), devhost points it back at the previous system and activates
	// that again. Default DefaultSystemProfile; "" turns that off.
	SystemProfile string

	Addresses  AddressPool
	Channels   ChannelPolicy
	ACME       ACME
	Cleanup    Cleanup
	AliasProxy bool // serve <alias>.<name>.<public> names (enableAliasProxy)
	// AliasStyle is how an alias is spelled: AliasNested (the default,
	// batou's and the old role's <alias>.<name>.<public>) or AliasFlat
	// (<alias>--<name>.<public>, covered by the one wildcard certificate).
	AliasStyle AliasStyle
	Nginx      Nginx
	Compat     Compat
	Access     Access
	Commands   Commands
	// Limits are the default resource limits of every container (the
	// limits block); a container's own registry values take precedence.
	// Zero fields mean no limit.
	Limits limits.Limits
}

// AddressPool is where container addresses come from. Every container gets
// its own local address from Network; all containers share HostAddress as
// the host side of their point-to-point veth links.
//
// With Network6 set, every container also gets its own IPv6 address from
// that /64, with HostAddress6 as the host side of the links. Without it
// containers have IPv4 only, as before devhost knew IPv6.
type AddressPool struct {
	Network     netip.Prefix // default 10.233.0.0/16
	HostAddress netip.Addr   // default: the first address of Network

	Network6     netip.Prefix // an IPv6 /64; invalid (the default) when containers get no IPv6
	HostAddress6 netip.Addr   // default: the first address of Network6
}

// HasIPv6 reports whether containers get IPv6 addresses.
func (p AddressPool) HasIPv6() bool { return p.Network6.IsValid() }

// IPv6 is the IPv6 half of the pool as a pool of its own (Network6 and
// HostAddress6 as Network and HostAddress), so that First, Next and
// Assignable walk the IPv6 addresses. Its Network is invalid when the pool
// has no IPv6.
func (p AddressPool) IPv6() AddressPool {
	return AddressPool{Network: p.Network6, HostAddress: p.HostAddress6}
}

// Assignable reports whether a may be given to a container: inside Network,
// and neither the network address, the IPv4 broadcast address nor the host
// address.
func (p AddressPool) Assignable(a netip.Addr) bool {
	return p.Network.IsValid() && p.Network.Contains(a) && a != p.Network.Masked().Addr() &&
		a != p.HostAddress && (!a.Is4() || a != lastAddr(p.Network))
}

// First is the lowest address of the pool a container may get (it may be
// invalid for a pool too small to hold any).
func (p AddressPool) First() netip.Addr {
	a := p.Network.Masked().Addr().Next()
	for a.IsValid() && p.Network.Contains(a) && !p.Assignable(a) {
		a = a.Next()
	}
	if !p.Network.Contains(a) {
		return netip.Addr{}
	}
	return a
}

// Next is the lowest assignable address above a, or an invalid address when
// a is the last one.
func (p AddressPool) Next(a netip.Addr) netip.Addr {
	for a = a.Next(); a.IsValid() && p.Network.Contains(a); a = a.Next() {
		if p.Assignable(a) {
			return a
		}
	}
	return netip.Addr{}
}

// ChannelPolicy restricts the channels containers may use.
type ChannelPolicy struct {
	// AllowedPrefixes: a channel must lie under one of these (see
	// channel.Policy). Empty means any https:// channel and no file://
	// channel.
	AllowedPrefixes []string
}

// AliasStyle is the spelling of a container's alias names.
type AliasStyle string

// The alias styles.
const (
	AliasNested AliasStyle = "nested" // <alias>.<name>.<public>
	AliasFlat   AliasStyle = "flat"   // <alias>--<name>.<public>
)

// Challenge is the ACME challenge certificates are validated with.
type Challenge string

// The challenges.
const (
	// HTTP01: one certificate per container, issued when it appears.
	HTTP01 Challenge = "http-01"
	// DNS01: one wildcard certificate for every primary name and shared
	// wildcard shard certificates for nested aliases (generator.Certs).
	DNS01 Challenge = "dns-01"
)

// ACME configures Let's Encrypt.
type ACME struct {
	Enable  bool   // default true; false serves self-signed certificates
	Email   string // account contact
	Staging bool   // use the staging server (for tests and new hosts)
	Server  string // explicit directory URL; overrides Staging
	// Challenge is HTTP01 (the default) or DNS01.
	Challenge Challenge
	// DNSProvider is lego's name of the DNS provider (dns-01 only); the
	// NixOS module passes it and the credentials file to NixOS' ACME
	// module. devhost only shows it.
	DNSProvider string
	// Shards is the number of wildcard shard slots of nested aliases in
	// dns-01 mode: a container's slot is a stable hash of its name
	// (default 10; the NixOS module derives it from its capacity option).
	Shards int
	// CertDir is where NixOS' ACME module keeps the certificates
	// (<CertDir>/<cert>/cert.pem); devhost reads their state there.
	// Default /var/lib/acme.
	CertDir string
}

// DNS01 reports whether certificates are wildcards validated over DNS.
func (a ACME) DNS01() bool { return a.Enable && a.Challenge == DNS01 }

// Cleanup is the policy for environments nobody deploys any more.
type Cleanup struct {
	Enable       bool          // default true (cleanupContainers)
	StopAfter    time.Duration // default 7 days
	DestroyAfter time.Duration // default 30 days
	At           string        // systemd OnCalendar time of day, default "03:00"
}

// Nginx details.
type Nginx struct {
	ServerNamesHashBucketSize int           // default 128
	ServerNamesHashMaxSize    int           // default 4096
	ProxyTimeout              time.Duration // proxy_read/send_timeout, default 300s
	ClientMaxBodySize         string        // default "100m"
	// Group is nginx's group (services.nginx.group), which alone may read
	// the password hashes of protected containers. Default "nginx".
	Group string
}

// Compat is compatibility with batou 2.3/2.4's container provisioner.
type Compat struct {
	// BootstrapKey authorises batou's well-known public key for the user
	// developer in every container. Off by default: the key is public.
	BootstrapKey bool
}

// Access says who may run devhost through sudo and who administers it.
type Access struct {
	Groups     []string // default ["users", "service"]
	AdminGroup string   // default "wheel"
	// MaxContainersPerUser limits how many containers one user owns
	// (0, the default: no limit). Admins are exempt.
	MaxContainersPerUser int
	// ReservedNames are host names no container may take besides the
	// built-in ones (names.Reserved) and the host's own name: the NixOS
	// module lists the host's networking.hostName and its other
	// networking.hosts names. A container's name resolves to it on the
	// devhost, so a container named like another host would redirect the
	// host's own connections to that host.
	ReservedNames []string
}

// Commands are the argv prefixes of external commands; tests point them at
// test doubles. Each is an absolute path or a name looked up in PATH.
type Commands struct {
	Rebuild        []string      // default ["nixos-rebuild", "switch"]
	NixBuild       []string      // default ["nix-build"]
	NixEnv         []string      // default ["nix-env"]
	NixInstantiate []string      // default ["nix-instantiate"]
	NixosContainer []string      // default ["nixos-container"]
	Systemctl      []string      // default ["systemctl"]
	Timeout        time.Duration // per command, default 30m
	// RebuildBatchWindow is how long a rebuild that starts on an idle
	// host waits before it reads the registry, so that requests arriving
	// within it share the rebuild (default 300ms, 0: none); while
	// requests keep arriving it waits another window, at most four in
	// all. It delays a lone request by one window; requests arriving
	// while a rebuild runs share the next one anyway.
	RebuildBatchWindow time.Duration
}
