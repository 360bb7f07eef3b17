package hostconfig

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"unicode"

	"github.com/hashicorp/hcl/v2"

	"github.com/flyingcircusio/devhost/internal/channel"
	"github.com/flyingcircusio/devhost/internal/diag"
	"github.com/flyingcircusio/devhost/internal/names"
)

// Validate checks a Config built by hand (Load and Parse already did). The
// diagnostics carry no positions because there is no file.
func (c *Config) Validate() error {
	return diag.NewError(c.validate(func(...string) *hcl.Range { return nil }), nil)
}

// MaxShards bounds acme.shards: each slot may become a certificate.
const MaxShards = 1000

var (
	timeOfDay = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
	// nginxSize is what client_max_body_size accepts; the value is pasted
	// into nginx configuration, so nothing else may pass.
	nginxSize = regexp.MustCompile(`^[0-9]{1,12}[kKmMgG]?$`)
	email     = regexp.MustCompile(`^[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+$`)
	// lego's DNS provider names: lowercase letters, digits, "." and "-".
	dnsProvider = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,39}$`)
)

// validate checks semantics; rng maps configuration keys ("cleanup.at") to
// the range of their value, or nil when the value is a default.
func (c *Config) validate(rng func(keys ...string) *hcl.Range) hcl.Diagnostics {
	var diags hcl.Diagnostics
	add := func(summary, detail string, subject *hcl.Range) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: subject})
	}
	nameErr := func(summary string, err error, subject *hcl.Range) {
		detail := err.Error()
		var ne *names.Error
		if errors.As(err, &ne) && ne.Hint != "" {
			detail += "; " + ne.Hint
		}
		add(summary, detail+".", subject)
	}

	if err := names.Domain(c.PublicAddress); err != nil {
		nameErr("Invalid public_address", err, rng("public_address"))
	}
	for key, p := range map[string]string{"state_dir": c.StateDir, "generated_dir": c.GeneratedDir, "profile_dir": c.ProfileDir, "containers_dir": c.ContainersDir} {
		if p == "" {
			add("Empty "+key, key+" must name a directory; remove the line to use the default.", rng(key))
		}
	}
	if c.GeneratedDir != "" && c.GeneratedDir == c.StateDir {
		add("generated_dir is state_dir", "The generated set is replaced as a whole on every render; give it its own directory, e.g. \""+c.StateDir+"/generated\".", rng("generated_dir", "state_dir"))
	}

	// Addresses.
	n, h := c.Addresses.Network, c.Addresses.HostAddress
	switch {
	case !n.IsValid():
		add("Invalid network", "addresses.network must be an address prefix such as \"10.233.0.0/16\".", rng("addresses.network"))
	case n != n.Masked():
		add("Network has host bits set", fmt.Sprintf("addresses.network %s: write it as %s.", n, n.Masked()), rng("addresses.network"))
	case n.Addr().Is4() && n.Bits() > 30, !n.Addr().Is4() && n.Bits() > 126:
		add("Network too small", fmt.Sprintf("addresses.network %s leaves no address for containers next to the host address; use a larger network such as \"10.233.0.0/16\".", n), rng("addresses.network"))
	case !h.IsValid():
		add("Invalid host_address", "addresses.host_address must be an IP address inside addresses.network.", rng("addresses.host_address"))
	case !n.Contains(h):
		add("host_address outside network", fmt.Sprintf("addresses.host_address %s is not inside %s; pick an address of that network, e.g. %s.", h, n, n.Addr().Next()), rng("addresses.host_address", "addresses.network"))
	case h == n.Addr() || (n.Addr().Is4() && h == lastAddr(n)):
		add("Invalid host_address", fmt.Sprintf("addresses.host_address %s is the network or broadcast address of %s; pick another, e.g. %s.", h, n, n.Addr().Next()), rng("addresses.host_address"))
	}

	for i, p := range c.Channels.AllowedPrefixes {
		if _, err := channel.ParsePrefix(p); err != nil {
			nameErr(fmt.Sprintf("Invalid channels.allowed_prefixes[%d]", i), err, rng("channels.allowed_prefixes"))
		}
	}

	if c.ACME.Email != "" && !email.MatchString(c.ACME.Email) {
		add("Invalid acme.email", fmt.Sprintf("%q is not an e-mail address; Let's Encrypt uses it for expiry warnings.", c.ACME.Email), rng("acme.email"))
	}
	if c.ACME.Server != "" {
		if !httpsURL(c.ACME.Server) {
			add("Invalid acme.server", fmt.Sprintf("%q must be the https:// URL of an ACME directory, e.g. https://acme-staging-v02.api.letsencrypt.org/directory.", c.ACME.Server), rng("acme.server"))
		}
	}

	switch c.ACME.Challenge {
	case HTTP01:
	case DNS01:
		if c.ACME.Enable && c.ACME.DNSProvider == "" {
			add("acme.dns_provider missing", "The dns-01 challenge needs lego's name of the DNS provider, e.g. \"rfc2136\" or \"route53\" (https://go-acme.github.io/lego/dns/).", rng("acme.challenge"))
		}
	default:
		add("Invalid acme.challenge", fmt.Sprintf("%q is not a challenge; use \"http-01\" or \"dns-01\".", c.ACME.Challenge), rng("acme.challenge"))
	}
	if c.ACME.DNSProvider != "" && !dnsProvider.MatchString(c.ACME.DNSProvider) {
		add("Invalid acme.dns_provider", fmt.Sprintf("%q is not a lego DNS provider name; use one of https://go-acme.github.io/lego/dns/, e.g. \"rfc2136\".", c.ACME.DNSProvider), rng("acme.dns_provider"))
	}
	if c.ACME.Shards < 1 || c.ACME.Shards > MaxShards {
		add("Invalid acme.shards", fmt.Sprintf("%d: the number of wildcard shard certificates must be 1 to %d.", c.ACME.Shards, MaxShards), rng("acme.shards"))
	}
	if c.AliasStyle != AliasNested && c.AliasStyle != AliasFlat {
		add("Invalid alias_style", fmt.Sprintf("%q is not an alias style; use \"nested\" (<alias>.<name>.<domain>) or \"flat\" (<alias>--<name>.<domain>).", c.AliasStyle), rng("alias_style"))
	}

	if c.Cleanup.StopAfter <= 0 {
		add("Invalid cleanup.stop_after", "It must be positive, e.g. \"7d\".", rng("cleanup.stop_after"))
	}
	if c.Cleanup.DestroyAfter <= 0 {
		add("Invalid cleanup.destroy_after", "It must be positive, e.g. \"30d\".", rng("cleanup.destroy_after"))
	}
	if c.Cleanup.StopAfter > 0 && c.Cleanup.DestroyAfter > 0 && c.Cleanup.StopAfter >= c.Cleanup.DestroyAfter {
		add("stop_after is not before destroy_after",
			fmt.Sprintf("cleanup stops a container after %s and destroys it after %s; a container must be stopped before it is destroyed, so make stop_after shorter than destroy_after.",
				FormatDuration(c.Cleanup.StopAfter), FormatDuration(c.Cleanup.DestroyAfter)),
			rng("cleanup.stop_after", "cleanup.destroy_after"))
	}
	if !timeOfDay.MatchString(c.Cleanup.At) {
		add("Invalid cleanup.at", fmt.Sprintf("%q is not a time of day; use HH:MM (24 hours), e.g. \"03:00\".", c.Cleanup.At), rng("cleanup.at"))
	}

	if c.Nginx.ServerNamesHashBucketSize <= 0 {
		add("Invalid nginx.server_names_hash_bucket_size", "It must be a positive number, e.g. 128.", rng("nginx.server_names_hash_bucket_size"))
	}
	if c.Nginx.ServerNamesHashMaxSize <= 0 {
		add("Invalid nginx.server_names_hash_max_size", "It must be a positive number, e.g. 4096.", rng("nginx.server_names_hash_max_size"))
	}
	if c.Nginx.ProxyTimeout <= 0 {
		add("Invalid nginx.proxy_timeout", "It must be positive, e.g. \"300s\".", rng("nginx.proxy_timeout"))
	}
	if !nginxSize.MatchString(c.Nginx.ClientMaxBodySize) {
		add("Invalid nginx.client_max_body_size", fmt.Sprintf("%q is not an nginx size; use a number with an optional k, m or g suffix, e.g. \"100m\" (\"0\" disables the limit).", c.Nginx.ClientMaxBodySize), rng("nginx.client_max_body_size"))
	}
	if err := names.User(c.Nginx.Group); err != nil {
		nameErr("Invalid nginx.group", err, rng("nginx.group"))
	}
	for _, fe := range c.Limits.Problems() {
		add("Invalid limits."+fe.Field, fe.Error()+".", rng("limits."+fe.Field))
	}

	for _, g := range c.Access.Groups {
		if err := names.User(g); err != nil {
			nameErr("Invalid access.groups entry", err, rng("access.groups"))
		}
	}
	if c.Access.MaxContainersPerUser < 0 {
		add("Invalid access.max_containers_per_user", "It must be a positive number of containers, or left out (null) for no limit.", rng("access.max_containers_per_user"))
	}
	for _, n := range c.Access.ReservedNames {
		if n == "" || strings.ContainsFunc(n, unicode.IsControl) {
			add("Invalid access.reserved_names entry", fmt.Sprintf("%q is not a host name; list host names such as \"devhost01\".", n), rng("access.reserved_names"))
		}
	}
	if err := names.User(c.Access.AdminGroup); err != nil {
		nameErr("Invalid access.admin_group", err, rng("access.admin_group"))
	}

	for _, key := range []string{"rebuild", "nix_build", "nix_env", "nix_instantiate", "nixos_container", "systemctl"} {
		argv := *c.Commands.all()[key]
		if len(argv) == 0 || argv[0] == "" {
			add("Empty commands."+key, "A command needs at least the program, e.g. [\"nixos-rebuild\", \"switch\"]; remove the line to use the default.", rng("commands."+key))
			continue
		}
		for _, arg := range argv {
			if strings.ContainsRune(arg, 0) {
				add("Invalid commands."+key, "An argument contains a NUL byte.", rng("commands."+key))
			}
		}
	}
	if c.Commands.Timeout <= 0 {
		add("Invalid commands.timeout", "It must be positive, e.g. \"30m\".", rng("commands.timeout"))
	}
	return diags
}

// lastAddr is the last address of p (the IPv4 broadcast address).
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().AsSlice()
	bits := p.Bits()
	for i := range a {
		for b := 0; b < 8; b++ {
			if i*8+b >= bits {
				a[i] |= 0x80 >> b
			}
		}
	}
	out, _ := netip.AddrFromSlice(a)
	return out
}

// httpsURL reports whether s is an https:// URL with a host, no user
// information and only characters that need no quoting in Nix or a shell
// (an ACME directory may have a port, a query or percent-escapes).
func httpsURL(s string) bool {
	ok := func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~:/?#!&+,;=%", r)
	}
	if len(s) > 2048 || strings.IndexFunc(s, func(r rune) bool { return !ok(r) }) >= 0 {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Host != "" && u.User == nil
}
