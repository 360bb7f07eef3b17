package hostconfig

import (
	"bytes"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	hcljson "github.com/hashicorp/hcl/v2/json"

	"github.com/flyingcircusio/devhost/internal/diag"
	"github.com/flyingcircusio/devhost/internal/hclinput"
	"github.com/flyingcircusio/devhost/internal/inputfile"
)

// Default returns the configuration a file containing only public_address
// decodes to. It is not validated: publicAddress may be anything.
func Default(publicAddress string) *Config {
	return &Config{
		PublicAddress: publicAddress,
		StateDir:      "/var/lib/devhost",
		GeneratedDir:  "/var/lib/devhost/generated",
		ProfileDir:    "/nix/var/nix/profiles/per-container",
		ContainersDir: DefaultContainersDir,
		SystemProfile: DefaultSystemProfile,
		AliasProxy:    true,
		AliasStyle:    AliasNested,
		Addresses: AddressPool{
			Network:     netip.MustParsePrefix("10.233.0.0/16"),
			HostAddress: netip.MustParseAddr("10.233.0.1"),
		},
		ACME:    ACME{Enable: true, Challenge: HTTP01, Shards: 10, CertDir: "/var/lib/acme"},
		Cleanup: Cleanup{Enable: true, StopAfter: 7 * 24 * time.Hour, DestroyAfter: 30 * 24 * time.Hour, At: "03:00"},
		Nginx: Nginx{
			ServerNamesHashBucketSize: 128,
			ServerNamesHashMaxSize:    4096,
			ProxyTimeout:              300 * time.Second,
			ClientMaxBodySize:         "100m",
			Group:                     "nginx",
		},
		Access: Access{Groups: []string{"users", "service"}, AdminGroup: "wheel"},
		Commands: Commands{
			Rebuild:        []string{"nixos-rebuild", "switch"},
			NixBuild:       []string{"nix-build"},
			NixEnv:         []string{"nix-env"},
			NixInstantiate: []string{"nix-instantiate"},
			NixosContainer: []string{"nixos-container"},
			Systemctl:      []string{"systemctl"},
			Timeout:        30 * time.Minute,

			RebuildBatchWindow: 300 * time.Millisecond,
		},
	}
}

// MaxSize bounds the host configuration file.
const MaxSize = 1 << 20

// Load reads and validates the host configuration at path. Problems with
// the file's content are returned as a *diag.Error carrying the file's bytes,
// so the command line can show them with a snippet; a file that cannot be
// read is an ordinary wrapped error (errors.Is(err, fs.ErrNotExist) works).
func Load(path string) (*Config, error) {
	// The NixOS module's file is a symbolic link into the store: follow it.
	src, err := inputfile.Read(path, MaxSize)
	if err != nil {
		return nil, fmt.Errorf("host configuration: %w", err)
	}
	return Parse(path, src)
}

// Parse decodes src, read from filename, into a validated Config. Relative
// paths in the file are resolved against filename's directory. The syntax is
// JSON (what the NixOS module writes with builtins.toJSON) when filename ends
// in ".json" or the content starts with "{", and HCL's native syntax
// otherwise.
func Parse(filename string, src []byte) (*Config, error) {
	files := map[string][]byte{filename: src}
	var (
		file  *hcl.File
		diags hcl.Diagnostics
	)
	if isJSON(filename, src) {
		if diags = hclinput.CheckJSON(filename, src, MaxSize); !diags.HasErrors() {
			file, diags = hcljson.Parse(src, filename)
		}
	} else {
		if diags = hclinput.CheckNative(filename, src, MaxSize); !diags.HasErrors() {
			file, diags = hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
		}
	}
	if diags.HasErrors() {
		return nil, diag.NewError(diags, files)
	}
	dir, err := filepath.Abs(filepath.Dir(filename))
	if err != nil {
		return nil, fmt.Errorf("host configuration %s: %w", filename, err)
	}
	d := &decoder{ranges: map[string]*hcl.Range{}, file: filename}
	c := d.decode(file.Body)
	if d.diags.HasErrors() {
		return nil, diag.NewError(d.diags, files)
	}
	c.Path = filename
	c.resolvePaths(dir)
	if err := diag.NewError(c.validate(d.rangeOf), files); err != nil {
		return nil, err
	}
	return c, nil
}

// isJSON decides the syntax: native HCL can never start with "{", JSON
// (an object) always does.
func isJSON(filename string, src []byte) bool {
	if strings.HasSuffix(filename, ".json") {
		return true
	}
	return bytes.HasPrefix(bytes.TrimLeft(src, " \t\r\n\ufeff"), []byte("{"))
}

// resolvePaths makes relative directories (and relative command paths that
// contain a slash, such as "./bin/nixos-rebuild") relative to dir, the
// directory of the configuration file, so a sandbox config works from any
// working directory. Absolute directories are cleaned too
// ("/var/lib/devhost/" is /var/lib/devhost): the generated set writes them
// into Nix, which takes only clean absolute paths.
func (c *Config) resolvePaths(dir string) {
	for _, p := range []*string{&c.StateDir, &c.GeneratedDir, &c.ProfileDir, &c.ContainersDir, &c.TemplateDir, &c.SystemProfile} {
		switch {
		case *p == "":
		case filepath.IsAbs(*p):
			*p = filepath.Clean(*p)
		default:
			*p = filepath.Join(dir, *p)
		}
	}
	for _, argv := range c.Commands.all() {
		if len(*argv) > 0 && strings.Contains((*argv)[0], "/") && !filepath.IsAbs((*argv)[0]) {
			(*argv)[0] = filepath.Join(dir, (*argv)[0])
		}
	}
}

// all lists the command argvs by their configuration key.
func (c *Commands) all() map[string]*[]string {
	return map[string]*[]string{
		"rebuild":         &c.Rebuild,
		"nix_build":       &c.NixBuild,
		"nix_env":         &c.NixEnv,
		"nix_instantiate": &c.NixInstantiate,
		"nixos_container": &c.NixosContainer,
		"systemctl":       &c.Systemctl,
	}
}

// decoder walks the body by schema so unknown attributes and blocks are
// errors with HCL's own "Did you mean" suggestions, and remembers the range
// of every attribute for the semantic checks that follow.
type decoder struct {
	diags  hcl.Diagnostics
	ranges map[string]*hcl.Range // "block.attr" (or "attr") -> value range
	file   string
}

// rangeOf returns the range of the first key present, for diagnostics about
// a value that may have come from a default.
func (d *decoder) rangeOf(keys ...string) *hcl.Range {
	for _, k := range keys {
		if r := d.ranges[k]; r != nil {
			return r
		}
	}
	return nil
}

func attrSchema(names ...string) []hcl.AttributeSchema {
	s := make([]hcl.AttributeSchema, len(names))
	for i, n := range names {
		s[i] = hcl.AttributeSchema{Name: n}
	}
	return s
}

var (
	blockNames = []string{"addresses", "channels", "acme", "cleanup", "nginx", "compat", "access", "commands", "limits"}
	topSchema  = &hcl.BodySchema{
		Attributes: append([]hcl.AttributeSchema{{Name: "public_address", Required: true}},
			attrSchema("state_dir", "generated_dir", "profile_dir", "containers_dir", "template_dir", "system_profile", "alias_proxy", "alias_style")...),
		Blocks: func() []hcl.BlockHeaderSchema {
			s := make([]hcl.BlockHeaderSchema, len(blockNames))
			for i, n := range blockNames {
				s[i] = hcl.BlockHeaderSchema{Type: n}
			}
			return s
		}(),
	}
	blockSchemas = map[string]*hcl.BodySchema{
		"addresses": {Attributes: attrSchema("network", "host_address", "network6", "host_address6")},
		"channels":  {Attributes: attrSchema("allowed_prefixes")},
		"acme":      {Attributes: attrSchema("enable", "email", "staging", "server", "challenge", "dns_provider", "shards", "cert_dir")},
		"cleanup":   {Attributes: attrSchema("enable", "stop_after", "destroy_after", "at")},
		"nginx": {Attributes: attrSchema("server_names_hash_bucket_size", "server_names_hash_max_size",
			"proxy_timeout", "client_max_body_size", "group")},
		"compat": {Attributes: attrSchema("bootstrap_key")},
		"access": {Attributes: attrSchema("groups", "admin_group", "max_containers_per_user", "reserved_names")},
		"commands": {Attributes: attrSchema("rebuild", "nix_build", "nix_env", "nix_instantiate",
			"nixos_container", "systemctl", "timeout", "rebuild_batch_window")},
		"limits": {Attributes: attrSchema("memory_max", "cpu_weight", "cpu_quota", "tasks_max")},
	}
)

// attrs is one body's attributes with the prefix used for range keys.
type attrs struct {
	d      *decoder
	prefix string
	m      hcl.Attributes
}

// value returns the attribute's expression, or nil when it is absent or null
// (JSON from Nix writes null for unset options: it means "the default").
func (a attrs) expr(name string) hcl.Expression {
	at, ok := a.m[name]
	if !ok {
		return nil
	}
	v, diags := at.Expr.Value(nil)
	if diags.HasErrors() {
		a.d.diags = append(a.d.diags, diags...)
		return nil
	}
	if v.IsNull() {
		return nil
	}
	r := at.Expr.Range()
	a.d.ranges[a.prefix+name] = &r
	return at.Expr
}

// decodeInto decodes attribute name into target (a pointer understood by
// gocty), leaving the default in place when absent. It reports whether a
// value was decoded.
func (a attrs) decodeInto(name string, target any) bool {
	e := a.expr(name)
	if e == nil {
		return false
	}
	diags := gohcl.DecodeExpression(e, nil, target)
	a.d.diags = append(a.d.diags, diags...)
	return !diags.HasErrors()
}

func (a attrs) str(name string, target *string) { a.decodeInto(name, target) }
func (a attrs) boolean(name string, target *bool) {
	a.decodeInto(name, target)
}

func (a attrs) integer(name string, target *int) { a.decodeInto(name, target) }

func (a attrs) list(name string, target *[]string) {
	var l []string
	if a.decodeInto(name, &l) {
		if l == nil {
			l = []string{}
		}
		*target = l
	}
}

func (a attrs) duration(name string, target *time.Duration) {
	var s string
	if !a.decodeInto(name, &s) {
		return
	}
	d, err := ParseDuration(s)
	if err != nil {
		a.d.diags = append(a.d.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid duration",
			Detail:   fmt.Sprintf("%s: %v. Use a number with a unit: \"7d\" (days), \"36h\", \"90m\", \"300s\".", name, err),
			Subject:  a.d.ranges[a.prefix+name],
		})
		return
	}
	*target = d
}

func (a attrs) prefixValue(name string, target *netip.Prefix) {
	var s string
	if !a.decodeInto(name, &s) {
		return
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a.d.diags = append(a.d.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid network",
			Detail:   fmt.Sprintf("%s: %v. Use an address prefix in CIDR notation, e.g. \"10.233.0.0/16\".", name, err),
			Subject:  a.d.ranges[a.prefix+name],
		})
		return
	}
	*target = p
}

func (a attrs) addr(name string, target *netip.Addr) bool {
	var s string
	if !a.decodeInto(name, &s) {
		return false
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		a.d.diags = append(a.d.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid address",
			Detail:   fmt.Sprintf("%s: %v. Use an IP address such as \"10.233.0.1\".", name, err),
			Subject:  a.d.ranges[a.prefix+name],
		})
		return false
	}
	*target = ip
	return true
}

func (d *decoder) body(b hcl.Body, schema *hcl.BodySchema, prefix string) (attrs, *hcl.BodyContent) {
	content, diags := b.Content(schema)
	d.diags = append(d.diags, diags...)
	return attrs{d: d, prefix: prefix, m: content.Attributes}, content
}

func (d *decoder) decode(b hcl.Body) *Config {
	c := Default("")
	top, content := d.body(b, topSchema, "")
	top.str("public_address", &c.PublicAddress)
	top.str("state_dir", &c.StateDir)
	stateSet := d.ranges["state_dir"] != nil
	if !top.decodeInto("generated_dir", &c.GeneratedDir) && stateSet {
		c.GeneratedDir = filepath.Join(c.StateDir, "generated")
	}
	top.str("profile_dir", &c.ProfileDir)
	top.str("containers_dir", &c.ContainersDir)
	top.str("template_dir", &c.TemplateDir)
	top.str("system_profile", &c.SystemProfile)
	top.boolean("alias_proxy", &c.AliasProxy)
	top.decodeInto("alias_style", (*string)(&c.AliasStyle))

	seen := map[string]*hcl.Block{}
	hostAddressSet, hostAddress6Set := false, false
	for _, blk := range content.Blocks {
		if prev := seen[blk.Type]; prev != nil {
			subject, detail := blk.DefRange, fmt.Sprintf("The %s block was already defined at %s; merge the two into one.", blk.Type, prev.DefRange)
			if prev.DefRange == blk.DefRange { // JSON: a list of objects under one key
				subject = blk.Body.MissingItemRange()
				detail = fmt.Sprintf("Give one object for %s, not a list; merge them into one.", blk.Type)
			}
			d.diags = append(d.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Duplicate %s block", blk.Type),
				Detail:   detail,
				Subject:  &subject,
			})
			continue
		}
		seen[blk.Type] = blk
		a, _ := d.body(blk.Body, blockSchemas[blk.Type], blk.Type+".")
		switch blk.Type {
		case "addresses":
			a.prefixValue("network", &c.Addresses.Network)
			hostAddressSet = a.addr("host_address", &c.Addresses.HostAddress)
			a.prefixValue("network6", &c.Addresses.Network6)
			hostAddress6Set = a.addr("host_address6", &c.Addresses.HostAddress6)
		case "channels":
			a.list("allowed_prefixes", &c.Channels.AllowedPrefixes)
		case "acme":
			a.boolean("enable", &c.ACME.Enable)
			a.str("email", &c.ACME.Email)
			a.boolean("staging", &c.ACME.Staging)
			a.str("server", &c.ACME.Server)
			a.decodeInto("challenge", (*string)(&c.ACME.Challenge))
			a.str("dns_provider", &c.ACME.DNSProvider)
			a.integer("shards", &c.ACME.Shards)
			a.str("cert_dir", &c.ACME.CertDir)
		case "cleanup":
			a.boolean("enable", &c.Cleanup.Enable)
			a.duration("stop_after", &c.Cleanup.StopAfter)
			a.duration("destroy_after", &c.Cleanup.DestroyAfter)
			a.str("at", &c.Cleanup.At)
		case "nginx":
			a.integer("server_names_hash_bucket_size", &c.Nginx.ServerNamesHashBucketSize)
			a.integer("server_names_hash_max_size", &c.Nginx.ServerNamesHashMaxSize)
			a.duration("proxy_timeout", &c.Nginx.ProxyTimeout)
			a.str("client_max_body_size", &c.Nginx.ClientMaxBodySize)
			a.str("group", &c.Nginx.Group)
		case "compat":
			a.boolean("bootstrap_key", &c.Compat.BootstrapKey)
		case "access":
			a.list("groups", &c.Access.Groups)
			a.str("admin_group", &c.Access.AdminGroup)
			a.integer("max_containers_per_user", &c.Access.MaxContainersPerUser)
			a.list("reserved_names", &c.Access.ReservedNames)
		case "commands":
			for key, argv := range c.Commands.all() {
				a.list(key, argv)
			}
			a.duration("timeout", &c.Commands.Timeout)
			a.duration("rebuild_batch_window", &c.Commands.RebuildBatchWindow)
		case "limits":
			a.str("memory_max", &c.Limits.MemoryMax)
			a.integer("cpu_weight", &c.Limits.CPUWeight)
			a.str("cpu_quota", &c.Limits.CPUQuota)
			a.integer("tasks_max", &c.Limits.TasksMax)
		}
	}
	if !hostAddressSet && c.Addresses.Network.IsValid() {
		c.Addresses.HostAddress = c.Addresses.Network.Masked().Addr().Next()
	}
	if !hostAddress6Set && c.Addresses.Network6.IsValid() {
		c.Addresses.HostAddress6 = c.Addresses.Network6.Masked().Addr().Next()
	}
	return c
}

// ParseDuration parses a Go duration ("36h", "300s", "1h30m") or a number of
// days with a "d" suffix, optionally followed by a Go duration ("7d", "1d12h").
func ParseDuration(s string) (time.Duration, error) {
	if i := strings.IndexByte(s, 'd'); i > 0 {
		var days int64
		for _, c := range s[:i] {
			if c < '0' || c > '9' {
				return 0, fmt.Errorf("invalid duration %q", s)
			}
			days = days*10 + int64(c-'0')
			if days > 100000 {
				return 0, fmt.Errorf("duration %q is too long", s)
			}
		}
		d := time.Duration(days) * 24 * time.Hour
		if rest := s[i+1:]; rest != "" {
			r, err := time.ParseDuration(rest)
			if err != nil {
				return 0, fmt.Errorf("invalid duration %q", s)
			}
			d += r
		}
		return d, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	return d, nil
}

// FormatDuration writes d the way ParseDuration reads it, preferring days.
func FormatDuration(d time.Duration) string {
	const day = 24 * time.Hour
	if d > 0 && d%day == 0 {
		return fmt.Sprintf("%dd", d/day)
	}
	return d.String()
}
