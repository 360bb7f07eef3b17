// Package registry is devhost's source of truth: one HCL file per container
// in <state>/containers/<name>.hcl. It is read with precise diagnostics,
// written with hclwrite so comments a person added survive machine edits,
// and every write is atomic (temp file, fsync, rename).
//
// An entry looks like this (every attribute on its own line; name, owner,
// channel, address, state and created are required, address6 is there on
// a host with addresses.network6; the file name must be <name>.hcl):
//
//	# comments a person adds survive machine edits
//	name         = "web"
//	owner        = "alice"
//	environment  = "dev"
//	root         = "/home/alice/shop"
//	service_user = "s-shop"
//	channel      = "https://hydra.flyingcircus.io/build/116563/download/1/nixexprs.tar.xz"
//	state_version = "24.11"
//	aliases      = ["shop", "admin"]
//	address      = "10.233.0.2"
//	address6     = "fd00:dead:beef::2"
//	state        = "running"
//	created      = "2026-11-20T10:00:00Z"
//	deployed     = "2026-11-25T09:00:00Z"
//	keep         = false
//	ssh_keys     = ["ssh-ed25519 AAAA... alice@laptop"]
//	shared_with  = ["jane"]
//	shared_keys  = ["ssh-ed25519 AAAA... shared:jane"]
//	last_error   = ""
//	labels       = { team = "shop" }
//	memory_max   = "2G"      # optional limits; unset means the host's default
//	cpu_weight   = 100
//	cpu_quota    = "200%"
//	tasks_max    = 4096
//	expires_at   = "2026-11-28T09:00:00Z" # optional: destroyed by cleanup then
//	protect_user = "customer" # optional: HTTP basic auth on its vhosts
//
// Concurrency: readers need no lock (files are replaced by rename);
// read-modify-write sequences and Allocate run under Registry.Lock, an
// flock shared by every devhost process on the host.
package registry

import (
	"net/netip"
	"time"

	"github.com/flyingcircusio/devhost/internal/limits"
)

// State of a container as recorded in the registry.
type State string

// The states a container can be in.
const (
	Running State = "running"
	Stopped State = "stopped"
)

// Container is one registry entry.
type Container struct {
	Name        string            // container name, validated by names.Container
	Owner       string            // Unix user who created it
	Environment string            // batou environment name, e.g. "dev" (may be empty)
	Root        string            // deployment root it came from (informational; may be empty)
	ServiceUser string            // the environment's service user, e.g. "s-shop" (may be empty)
	Channel     string            // channel URL, validated by channel.Parse
	Aliases     []string          // each validated by names.Alias; order kept, no duplicates
	Address     netip.Addr        // the container's local address, unique
	Address6    netip.Addr        // its IPv6 address, unique; invalid without addresses.network6 (or until the next ensure)
	State       State             // running or stopped
	Created     time.Time         // RFC 3339 in the file
	Deployed    time.Time         // last deployment, RFC 3339 in the file
	Keep        bool              // exempt from cleanup
	Labels      map[string]string // free-form
	// SSHKeys are public keys authorised for the user developer.
	SSHKeys []string
	// SharedWith are the users (login names, names.Login) besides the owner who may log
	// into the container as developer, deploy it and keep it; order kept,
	// no duplicates, never the owner.
	SharedWith []string
	// SharedKeys are SharedWith's public keys, read from their
	// authorized_keys on the devhost at the last ensure, share or unshare
	// (see lifecycle.ReadAuthorizedKeys), each commented "shared:<user>".
	// Stored so that every rendering of the entry (a host rebuild, `devhost
	// render`) gives the configuration the container was built from.
	SharedKeys []string
	// LastError is the last failure of an operation on this container.
	LastError string
	// Limits are the container's own resource limits (memory_max,
	// cpu_weight, cpu_quota, tasks_max); an unset field takes the host's
	// default (hostconfig.Config.Limits).
	Limits limits.Limits
	// ExpiresAt is when cleanup destroys the container whatever its
	// deployment time or keep flag (expires_at); zero means never.
	ExpiresAt time.Time
	// ProtectUser, when set, is the user of the HTTP basic auth on the
	// container's virtual hosts (protect_user); the password hash is in
	// the state directory, never in the registry.
	ProtectUser string
	// StateVersion is the container's system.stateVersion: the NixOS
	// release of its channel when it was created, kept when the channel
	// changes, since NixOS reads the state on disk with it. Empty in
	// entries from before devhost recorded it; the next ensure records one.
	StateVersion string
}
