package templates

// The data the templates are executed with. All strings are Values (see
// Value): a template can output them only through an escaping function.
// Booleans and integers print as valid Nix and HTML and are plain Go types.

// Index is the data of default.nix.tmpl: the host and every container,
// sorted by name.
type Index struct {
	Host       *Host
	Containers []*Container
}

// Host is what the host configuration contributes.
type Host struct {
	PublicAddress Value // dev.example.com
	HostAddress   Value // host side of every container's veth pair
	HostAddress6  Value // its IPv6 address; empty when the host has no IPv6 pool
	GeneratedDir  Value // absolute
	WWWRoot       Value // <GeneratedDir>/www, root of the status page
	// ACME is true when certificates come from Let's Encrypt; when false
	// every virtual host uses SelfSignedCert/SelfSignedKey, which the NixOS
	// module provides.
	ACME bool
	// DNS01 is true when ACME validates over DNS: every virtual host then
	// uses the wildcard certificate MainCert (useACMEHost), and default.nix
	// moves those with nested aliases to their shard certificate
	// (certs.json's vhostCert).
	DNS01          bool
	MainCert       Value // the main certificate's name, the public address
	SelfSignedCert Value
	SelfSignedKey  Value
	AliasProxy     bool // serve <alias>.<name>.<public>
	Cleanup        bool
	CleanupAt      Value // systemd OnCalendar time, e.g. 03:00
	// ProxyConfig are the nginx directives (one per line, already valid
	// nginx) of every container's location "/": timeouts, TLS towards the
	// container's self-signed certificate, body size. (The proxy headers
	// come from the location's recommendedProxySettings.)
	ProxyConfig []Value
	// BootstrapKey is true when batou 2.3/2.4's public key is authorised
	// (it is then already part of every Container.SSHKeys).
	BootstrapKey bool
	// ProvisionDir is where the lifecycle writes <name>.nix provision files.
	ProvisionDir Value
}

// Container is one container, with everything derived from its registry
// entry and the host configuration. Host points back to the host.
type Container struct {
	Host *Host

	Name        Value   // shop
	FQDN        Value   // shop.dev.example.com
	Aliases     []Value // alias labels, registry order
	AliasFQDNs  []Value // <alias>.<name>.<public> (flat style: <alias>--<name>.<public>), registry order
	CertNames   []Value // Name, FQDN, AliasFQDNs: the self-signed certificate's names
	URLs        []Value // https://FQDN/ and, with the alias proxy, https://<alias FQDN>/
	ProxyPass   Value   // https://<name>
	Owner       Value
	Environment Value
	Root        Value // deployment root it came from
	ServiceUser Value // may be empty
	ServiceHome Value // /srv/<ServiceUser> (empty when ServiceUser is)
	Channel     Value
	// StateVersion is the container's system.stateVersion, recorded when
	// it was created; empty for an entry from before devhost recorded it.
	StateVersion Value
	// LocalAddress is the container's own address.
	LocalAddress Value
	// LocalAddress6 is the container's own IPv6 address; empty when it has
	// none (no addresses.network6, or an entry from before it was set).
	LocalAddress6 Value
	// ProfilePath is <ProfileDir>/<name>/system, the container's system
	// profile the host declares as containers.<name>.path.
	ProfilePath Value
	// ProvisionPath is the deployment's provision.nix on the host
	// (generator.ProvisionNixPath); the container's configuration imports
	// it when it exists.
	ProvisionPath Value
	// HostFile is the container's host-side file relative to the set,
	// e.g. containers/shop.nix (for nixRelPath in default.nix).
	HostFile  Value
	AutoStart bool // state is running
	State     Value
	Created   Value // RFC 3339, UTC
	Deployed  Value // RFC 3339, UTC; empty when never deployed
	Keep      bool
	SSHKeys   []Value // authorised for developer: the owner's, the shared users', the bootstrap key when enabled
	Labels    []Label // sorted by key
	LastError Value
	// Unit is the container's systemd unit, container@<name>.
	Unit Value
	// Limits are the container's effective resource limits (its own,
	// else the host's defaults); nil when none is set.
	Limits *Limits
	// BasicAuthFile is the htpasswd file of a protected container
	// (<StateDir>/htpasswd/<name>); empty when the container is public.
	BasicAuthFile Value
	// Protected is true when the vhosts ask for HTTP basic auth.
	Protected bool
}

// Limits are systemd resource settings of container@<name>; a zero field
// is not set.
type Limits struct {
	MemoryMax Value // systemd size or percentage, e.g. 2G
	CPUWeight int
	CPUQuota  Value // e.g. 200%
	TasksMax  int
}

// Label is one free-form registry label.
type Label struct {
	Key   Value
	Value Value
}

// Status is the data of index.html.tmpl, the status page nginx serves to
// anybody at https://<public address>/. It holds only what is public: the
// containers' names, states, URLs and whether they ask for a password
// (never who or which). Owners, environments, deployment
// roots, labels and last errors (which may quote command output) are not
// part of it, so no template, an admin's override included, can publish
// them; `devhost status` and `devhost list` show them to those allowed.
type Status struct {
	PublicAddress Value
	Containers    []StatusContainer // sorted by name
}

// StatusContainer is one container on the status page.
type StatusContainer struct {
	Name  Value
	State Value   // running, stopped
	URLs  []Value // as Container.URLs
	// Protected is true when the container's virtual hosts ask for HTTP
	// basic auth (devhost protect); the user name is not public.
	Protected bool
}
