package hostconfig

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/channel"
	"github.com/flyingcircusio/devhost/internal/diag"
	"github.com/flyingcircusio/devhost/internal/limits"
	"github.com/flyingcircusio/devhost/internal/names"
)

func TestMinimalFileIsDefault(t *testing.T) {
	c, err := Parse("/etc/devhost/devhost.hcl", []byte(`public_address = "dev.example.com"`+"\n"))
	require.NoError(t, err)
	want := Default("dev.example.com")
	want.Path = "/etc/devhost/devhost.hcl"
	assert.Equal(t, want, c)
	require.NoError(t, c.Validate())
}

const fullHCL = `
public_address = "dev.example.org"
state_dir      = "state"
generated_dir  = "/srv/generated"
profile_dir    = "profiles"
containers_dir = "containers"
template_dir   = "templates"
alias_proxy    = false
alias_style    = "flat"
addresses {
  network      = "10.99.0.0/20"
  host_address = "10.99.0.254"
}
channels { allowed_prefixes = ["https://hydra.flyingcircus.io/", "file:///nix/"] }
acme {
  enable  = false
  email   = "ops@example.org"
  staging = true
  server  = "https://acme.example.org/directory"
  challenge    = "dns-01"
  dns_provider = "rfc2136"
  shards       = 12
}
cleanup {
  enable        = false
  stop_after    = "36h"
  destroy_after = "1d12h30m"
  at            = "23:59"
}
nginx {
  server_names_hash_bucket_size = 256
  server_names_hash_max_size    = 8192
  proxy_timeout                 = "5m"
  client_max_body_size          = "2g"
  group                         = "www"
}
limits {
  memory_max = "2G"
  cpu_weight = 50
  cpu_quota  = "200%"
  tasks_max  = 4096
}
compat { bootstrap_key = true }
access {
  groups      = ["developers"]
  admin_group = "admins"
}
commands {
  rebuild         = ["fc-manage", "switch"]
  nix_build       = ["./bin/nix-build"]
  nix_env         = ["/run/current-system/sw/bin/nix-env"]
  nix_instantiate = ["nix-instantiate", "--option", "restrict-eval", "true"]
  nixos_container = ["nixos-container"]
  systemctl       = ["systemctl", "--no-ask-password"]
  timeout         = "1h"
  rebuild_batch_window = "750ms"
}
`

func fullWant(dir string) *Config {
	return &Config{
		Path:          filepath.Join(dir, "devhost.hcl"),
		PublicAddress: "dev.example.org",
		StateDir:      filepath.Join(dir, "state"),
		GeneratedDir:  "/srv/generated",
		ProfileDir:    filepath.Join(dir, "profiles"),
		ContainersDir: filepath.Join(dir, "containers"),
		TemplateDir:   filepath.Join(dir, "templates"),
		SystemProfile: DefaultSystemProfile,
		AliasProxy:    false,
		AliasStyle:    AliasFlat,
		Addresses:     AddressPool{Network: netip.MustParsePrefix("10.99.0.0/20"), HostAddress: netip.MustParseAddr("10.99.0.254")},
		Channels:      ChannelPolicy{AllowedPrefixes: []string{"https://hydra.flyingcircus.io/", "file:///nix/"}},
		ACME: ACME{Enable: false, Email: "ops@example.org", Staging: true, Server: "https://acme.example.org/directory",
			Challenge: DNS01, DNSProvider: "rfc2136", Shards: 12, CertDir: "/var/lib/acme"},
		Cleanup: Cleanup{Enable: false, StopAfter: 36 * time.Hour, DestroyAfter: 36*time.Hour + 30*time.Minute, At: "23:59"},
		Nginx:   Nginx{ServerNamesHashBucketSize: 256, ServerNamesHashMaxSize: 8192, ProxyTimeout: 5 * time.Minute, ClientMaxBodySize: "2g", Group: "www"},
		Limits:  limits.Limits{MemoryMax: "2G", CPUWeight: 50, CPUQuota: "200%", TasksMax: 4096},
		Compat:  Compat{BootstrapKey: true},
		Access:  Access{Groups: []string{"developers"}, AdminGroup: "admins"},
		Commands: Commands{
			Rebuild:        []string{"fc-manage", "switch"},
			NixBuild:       []string{filepath.Join(dir, "bin/nix-build")},
			NixEnv:         []string{"/run/current-system/sw/bin/nix-env"},
			NixInstantiate: []string{"nix-instantiate", "--option", "restrict-eval", "true"},
			NixosContainer: []string{"nixos-container"},
			Systemctl:      []string{"systemctl", "--no-ask-password"},
			Timeout:        time.Hour,

			RebuildBatchWindow: 750 * time.Millisecond,
		},
	}
}

func TestFullNativeSyntax(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "devhost.hcl")
	require.NoError(t, os.WriteFile(path, []byte(fullHCL), 0o644))
	c, err := Load(path)
	require.NoError(t, err)
	assert.Equal(t, fullWant(dir), c)
}

// fullJSON is what the NixOS module writes with builtins.toJSON: the same
// structure as fullHCL, blocks as objects, unset options as null.
func fullJSON(t *testing.T) []byte {
	t.Helper()
	v := map[string]any{
		"public_address": "dev.example.org",
		"state_dir":      "state",
		"generated_dir":  "/srv/generated",
		"profile_dir":    "profiles",
		"containers_dir": "containers",
		"template_dir":   "templates",
		"alias_proxy":    false,
		"alias_style":    "flat",
		"addresses":      map[string]any{"network": "10.99.0.0/20", "host_address": "10.99.0.254"},
		"channels":       map[string]any{"allowed_prefixes": []string{"https://hydra.flyingcircus.io/", "file:///nix/"}},
		"acme": map[string]any{"enable": false, "email": "ops@example.org", "staging": true, "server": "https://acme.example.org/directory",
			"challenge": "dns-01", "dns_provider": "rfc2136", "shards": 12},
		"cleanup": map[string]any{"enable": false, "stop_after": "36h", "destroy_after": "1d12h30m", "at": "23:59"},
		"nginx": map[string]any{"server_names_hash_bucket_size": 256, "server_names_hash_max_size": 8192,
			"proxy_timeout": "5m", "client_max_body_size": "2g", "group": "www"},
		"limits": map[string]any{"memory_max": "2G", "cpu_weight": 50, "cpu_quota": "200%", "tasks_max": 4096},
		"compat": map[string]any{"bootstrap_key": true},
		"access": map[string]any{"groups": []string{"developers"}, "admin_group": "admins"},
		"commands": map[string]any{
			"rebuild": []string{"fc-manage", "switch"}, "nix_build": []string{"./bin/nix-build"},
			"nix_env": []string{"/run/current-system/sw/bin/nix-env"}, "nix_instantiate": []string{"nix-instantiate", "--option", "restrict-eval", "true"},
			"nixos_container": []string{"nixos-container"}, "systemctl": []string{"systemctl", "--no-ask-password"}, "timeout": "1h",
			"rebuild_batch_window": "750ms",
		},
	}
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func TestJSONSyntaxMatchesNative(t *testing.T) {
	dir := t.TempDir()
	src := fullJSON(t)
	for _, name := range []string{"devhost.json", "devhost.hcl.json", "devhost.hcl"} {
		t.Run(name, func(t *testing.T) {
			c, err := Parse(filepath.Join(dir, name), src)
			require.NoError(t, err)
			want := fullWant(dir)
			want.Path = filepath.Join(dir, name)
			assert.Equal(t, want, c)
		})
	}
}

func TestJSONNullMeansDefault(t *testing.T) {
	src := `{"public_address": "dev.example.com", "template_dir": null,
	  "acme": {"email": null, "server": null}, "cleanup": null}`
	c, err := Parse("/etc/devhost/devhost.hcl.json", []byte(src))
	require.NoError(t, err)
	want := Default("dev.example.com")
	want.Path = "/etc/devhost/devhost.hcl.json"
	assert.Equal(t, want, c)
}

func TestDerivedDefaults(t *testing.T) {
	c, err := Parse("/x/devhost.hcl", []byte(`
public_address = "dev.example.com"
state_dir = "/srv/devhost"
addresses { network = "192.168.64.0/24" }
`))
	require.NoError(t, err)
	assert.Equal(t, "/srv/devhost/generated", c.GeneratedDir, "generated set follows state_dir")
	assert.Equal(t, netip.MustParseAddr("192.168.64.1"), c.Addresses.HostAddress, "first usable address")
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.hcl"))
	require.ErrorIs(t, err, fs.ErrNotExist)
}

func TestExampleConfig(t *testing.T) {
	c, err := Load("../../examples/devhost.hcl")
	require.NoError(t, err)
	abs, _ := filepath.Abs("../../examples")
	assert.Equal(t, "dev.example.com", c.PublicAddress)
	assert.Equal(t, filepath.Join(abs, "state"), c.StateDir)
	assert.Equal(t, filepath.Join(abs, "generated"), c.GeneratedDir)
}

// containers_dir defaults to where NixOS keeps container roots; a relative
// value is resolved against the configuration file like the other paths.
func TestContainersDir(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"default", "", "/var/lib/nixos-containers"},
		{"absolute", `containers_dir = "/srv/containers"`, "/srv/containers"},
		{"relative", `containers_dir = "sandbox/containers"`, "/x/sandbox/containers"},
		{"trailing slash", `containers_dir = "/srv/containers/"`, "/srv/containers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("/x/devhost.hcl", []byte("public_address = \"dev.example.com\"\n"+tt.src+"\n"))
			require.NoError(t, err)
			assert.Equal(t, tt.want, c.ContainersDir)
		})
	}
}

// TestAbsolutePathsCleaned: an absolute directory written with a trailing
// slash or a "." component is accepted and cleaned, so the generated set
// (which takes only clean absolute paths, nixlit.Path) can use it.
func TestAbsolutePathsCleaned(t *testing.T) {
	c, err := Parse("/x/devhost.hcl", []byte(`public_address = "dev.example.com"
state_dir     = "/srv/devhost/"
generated_dir = "/srv/./generated/"
profile_dir   = "/nix/var/nix/profiles//per-container"
template_dir  = "/etc/devhost/templates/"
`))
	require.NoError(t, err)
	assert.Equal(t, "/srv/devhost", c.StateDir)
	assert.Equal(t, "/srv/generated", c.GeneratedDir)
	assert.Equal(t, "/nix/var/nix/profiles/per-container", c.ProfileDir)
	assert.Equal(t, "/etc/devhost/templates", c.TemplateDir)

	// Only state_dir given: the generated set follows it, cleaned as well.
	c, err = Parse("/x/devhost.hcl", []byte("public_address = \"dev.example.com\"\nstate_dir = \"/srv/devhost/\"\n"))
	require.NoError(t, err)
	assert.Equal(t, "/srv/devhost/generated", c.GeneratedDir)
}

// TestBadInput: every mistake gives a positioned diagnostic whose summary
// and detail say what is wrong.
func TestBadInput(t *testing.T) {
	const pa = "public_address = \"dev.example.com\"\n"
	tests := []struct {
		name, file, src string
		line, col       int
		want            []string // substrings of summary + detail
	}{
		{"syntax", "h.hcl", pa + "addresses {\n", 2, 11, []string{"Unclosed configuration block"}},
		{"missing public_address", "h.hcl", "alias_proxy = true\n", 1, 1, []string{"public_address", "required"}},
		{"unknown attribute", "h.hcl", pa + "state_dri = \"/x\"\n", 2, 1, []string{"Unsupported argument", `Did you mean "state_dir"?`}},
		{"unknown block", "h.hcl", pa + "cleanpu {\n}\n", 2, 1, []string{"Unsupported block type", `Did you mean "cleanup"?`}},
		{"unknown attribute in block", "h.hcl", pa + "cleanup {\n  stop_afte = \"7d\"\n}\n", 3, 3, []string{`Did you mean "stop_after"?`}},
		{"attribute as block", "h.hcl", pa + "alias_proxy {\n}\n", 2, 1, []string{"Unsupported block type"}},
		{"block as attribute", "h.hcl", pa + "cleanup = {}\n", 2, 1, []string{"Unsupported argument", "block"}},
		{"json unknown key", "h.json", `{"public_address": "dev.example.com", "aliasproxy": true}`, 1, 39, []string{`Did you mean "alias_proxy"?`}},
		{"json unknown key in block", "h.json", `{"public_address": "dev.example.com", "acme": {"emial": "x"}}`, 1, 48, []string{`Did you mean "email"?`}},
		{"json unknown block", "h.json", `{"public_address": "dev.example.com", "cleanpu": {}}`, 1, 39, []string{`Did you mean "cleanup"?`}},
		{"json syntax", "h.json", `{"public_address": "dev.example.com",}`, 1, 37, []string{"Trailing comma"}},
		{"json duplicate block", "h.json", `{"public_address": "dev.example.com", "acme": [{}, {}]}`, 1, 53, []string{"Duplicate acme block"}},
		{"wrong type", "h.hcl", pa + "alias_proxy = \"yes please\"\n", 2, 16, []string{"Unsuitable value type"}},
		{"wrong list type", "h.hcl", pa + "access {\n groups = \"users\"\n}\n", 3, 12, []string{"Unsuitable value type"}},
		{"variable", "h.hcl", pa + "state_dir = var.x\n", 2, 13, []string{"Variables not allowed"}},
		{"duplicate block", "h.hcl", pa + "acme {\n}\nacme {\n}\n", 4, 1, []string{"Duplicate acme block"}},
		{"bad public address", "h.hcl", "public_address = \"Dev_Example.com\"\n", 1, 18, []string{"Invalid public_address", "dev.example.com"}},
		{"network syntax", "h.hcl", pa + "addresses { network = \"10.233.0.0\" }\n", 2, 23, []string{"Invalid network"}},
		{"network host bits", "h.hcl", pa + "addresses { network = \"10.233.0.1/16\" }\n", 2, 23, []string{"host bits", "10.233.0.0/16"}},
		{"network too small", "h.hcl", pa + "addresses { network = \"10.233.0.0/31\" }\n", 2, 23, []string{"Network too small"}},
		{"host outside network", "h.hcl", pa + "addresses {\n network = \"10.233.0.0/24\"\n host_address = \"10.234.0.1\"\n}\n", 4, 17, []string{"outside network"}},
		{"host is broadcast", "h.hcl", pa + "addresses {\n network = \"10.233.0.0/24\"\n host_address = \"10.233.0.255\"\n}\n", 4, 17, []string{"broadcast"}},
		{"network6 syntax", "h.hcl", pa + "addresses { network6 = \"fd00::\" }\n", 2, 24, []string{"Invalid network"}},
		{"network6 is IPv4", "h.hcl", pa + "addresses { network6 = \"10.234.0.0/16\" }\n", 2, 24, []string{"Invalid network6", "not an IPv6 network"}},
		{"network6 host bits", "h.hcl", pa + "addresses { network6 = \"fd00::1/64\" }\n", 2, 24, []string{"host bits", "fd00::/64"}},
		{"network6 not a /64", "h.hcl", pa + "addresses { network6 = \"fd00::/112\" }\n", 2, 24, []string{"not a /64"}},
		{"network6 shorter than /64", "h.hcl", pa + "addresses { network6 = \"fd00::/48\" }\n", 2, 24, []string{"not a /64"}},
		{"network6 link-local", "h.hcl", pa + "addresses { network6 = \"fe80::/64\" }\n", 2, 24, []string{"link-local"}},
		{"network6 multicast", "h.hcl", pa + "addresses { network6 = \"ff02::/64\" }\n", 2, 24, []string{"multicast"}},
		{"network6 loopback", "h.hcl", pa + "addresses { network6 = \"::/64\" }\n", 2, 24, []string{"loopback"}},
		{"network6 mapped IPv4", "h.hcl", pa + "addresses { network6 = \"::ffff:10.0.0.0/64\" }\n", 2, 24, []string{"not an IPv6 network"}},
		{"network6 overlaps network", "h.hcl", pa + "addresses {\n network = \"fd00::/48\"\n network6 = \"fd00::/64\"\n}\n", 4, 13, []string{"overlap", "fd00::/48"}},
		{"host6 outside network6", "h.hcl", pa + "addresses {\n network6 = \"fd00::/64\"\n host_address6 = \"fd01::1\"\n}\n", 4, 18, []string{"outside network6"}},
		{"host6 is anycast", "h.hcl", pa + "addresses {\n network6 = \"fd00::/64\"\n host_address6 = \"fd00::\"\n}\n", 4, 18, []string{"anycast", "fd00::1"}},
		{"host6 without network6", "h.hcl", pa + "addresses {\n host_address6 = \"fd00::1\"\n}\n", 3, 18, []string{"without network6"}},
		{"json network6 not a /64", "h.json", `{"public_address": "dev.example.com", "addresses": {"network6": "fd00::/56"}}`, 1, 65, []string{"not a /64"}},
		{"stop after destroy", "h.hcl", pa + "cleanup {\n  stop_after = \"30d\"\n  destroy_after = \"7d\"\n}\n", 3, 16, []string{"stop_after is not before destroy_after", "7d"}},
		{"stop after default destroy", "h.hcl", pa + "cleanup {\n  stop_after = \"31d\"\n}\n", 3, 16, []string{"stop_after is not before destroy_after"}},
		{"bad duration", "h.hcl", pa + "cleanup {\n  stop_after = \"a week\"\n}\n", 3, 16, []string{"Invalid duration", "7d"}},
		{"bad at", "h.hcl", pa + "cleanup {\n  at = \"3:00\"\n}\n", 3, 8, []string{"Invalid cleanup.at", "HH:MM"}},
		{"bad at hour", "h.hcl", pa + "cleanup {\n  at = \"24:00\"\n}\n", 3, 8, []string{"Invalid cleanup.at"}},
		{"http prefix", "h.hcl", pa + "channels {\n  allowed_prefixes = [\"http://example.com/\"]\n}\n", 3, 22, []string{"allowed_prefixes[0]", "https://"}},
		{"empty command", "h.hcl", pa + "commands {\n  rebuild = []\n}\n", 3, 13, []string{"Empty commands.rebuild"}},
		{"nginx injection", "h.hcl", pa + "nginx {\n  client_max_body_size = \"1m; return 200\"\n}\n", 3, 26, []string{"nginx size"}},
		{"zero timeout", "h.hcl", pa + "commands {\n  timeout = \"0s\"\n}\n", 3, 13, []string{"Invalid commands.timeout"}},
		{"bad email", "h.hcl", pa + "acme {\n  email = \"root\"\n}\n", 3, 11, []string{"Invalid acme.email"}},
		{"bad acme server", "h.hcl", pa + "acme {\n  server = \"http://acme\"\n}\n", 3, 12, []string{"Invalid acme.server"}},
		{"bad challenge", "h.hcl", pa + "acme {\n  challenge = \"dns\"\n}\n", 3, 15, []string{"Invalid acme.challenge", "dns-01"}},
		{"dns-01 without provider", "h.hcl", pa + "acme {\n  challenge = \"dns-01\"\n}\n", 3, 15, []string{"acme.dns_provider missing", "rfc2136"}},
		{"bad dns provider", "h.hcl", pa + "acme {\n  dns_provider = \"x; rm\"\n}\n", 3, 18, []string{"Invalid acme.dns_provider"}},
		{"zero shards", "h.hcl", pa + "acme {\n  shards = 0\n}\n", 3, 12, []string{"Invalid acme.shards"}},
		{"bad alias style", "h.hcl", pa + "alias_style = \"dashed\"\n", 2, 15, []string{"Invalid alias_style", "flat"}},
		{"bad group", "h.hcl", pa + "access {\n  groups = [\"Users\"]\n}\n", 3, 12, []string{"Invalid access.groups"}},
		{"empty state dir", "h.hcl", pa + "state_dir = \"\"\n", 2, 13, []string{"Empty state_dir"}},
		{"empty containers dir", "h.hcl", pa + "containers_dir = \"\"\n", 2, 18, []string{"Empty containers_dir"}},
		{"bad memory_max", "h.hcl", pa + "limits {\n  memory_max = \"2 GB\"\n}\n", 3, 16, []string{"Invalid limits.memory_max", "512M"}},
		{"bad cpu_weight", "h.hcl", pa + "limits {\n  cpu_weight = 10001\n}\n", 3, 16, []string{"Invalid limits.cpu_weight", "10000"}},
		{"bad cpu_quota", "h.hcl", pa + "limits {\n  cpu_quota = \"2 cpus\"\n}\n", 3, 15, []string{"Invalid limits.cpu_quota", "200%"}},
		{"bad tasks_max", "h.hcl", pa + "limits {\n  tasks_max = -1\n}\n", 3, 15, []string{"Invalid limits.tasks_max"}},
		{"json cpu_weight not a number", "h.json", `{"public_address": "dev.example.com", "limits": {"memory_max": null, "cpu_weight": "x"}}`, 1, 84, []string{"Unsuitable value type"}},
		{"bad nginx group", "h.hcl", pa + "nginx {\n  group = \"www data\"\n}\n", 3, 11, []string{"Invalid nginx.group"}},
		{"json empty containers dir", "h.json", `{"public_address": "dev.example.com", "containers_dir": ""}`, 1, 57, []string{"Empty containers_dir"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.file, []byte(tt.src))
			var de *diag.Error
			require.ErrorAs(t, err, &de)
			require.NotEmpty(t, de.Diags)
			d := de.Diags[0]
			require.NotNil(t, d.Subject, "diagnostic has a position: %s", diag.Line(d))
			assert.Equal(t, tt.file, d.Subject.Filename)
			assert.Equal(t, tt.line, d.Subject.Start.Line, diag.Line(d))
			assert.Equal(t, tt.col, d.Subject.Start.Column, diag.Line(d))
			text := d.Summary + " " + d.Detail
			for _, w := range tt.want {
				assert.Contains(t, text, w)
			}
			assert.Equal(t, []byte(tt.src), de.Files[tt.file], "file bytes for the snippet")
		})
	}
}

// TestEveryProblemReported: one run names every mistake, not just the first.
func TestEveryProblemReported(t *testing.T) {
	src := `public_address = "-bad-"
cleanup {
  at = "noon"
}
channels { allowed_prefixes = ["ftp://x/"] }
`
	_, err := Parse("h.hcl", []byte(src))
	var de *diag.Error
	require.ErrorAs(t, err, &de)
	lines := map[int]bool{}
	for _, d := range de.Diags {
		lines[d.Subject.Start.Line] = true
	}
	assert.Equal(t, map[int]bool{1: true, 3: true, 5: true}, lines)

	var out bytes.Buffer
	require.NoError(t, diag.Write(&out, de.Diags, de.Files, false))
	assert.Contains(t, out.String(), "h.hcl:3:8: error: Invalid cleanup.at")
	assert.Contains(t, out.String(), `3:   at = "noon"`, "snippet")
}

func TestValidateByHand(t *testing.T) {
	c := Default("dev.example.com")
	require.NoError(t, c.Validate())
	c.Cleanup.At = "25:00"
	c.Addresses.HostAddress = netip.MustParseAddr("192.168.0.1")
	err := c.Validate()
	var de *diag.Error
	require.ErrorAs(t, err, &de)
	assert.Len(t, de.Diags, 2)
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: "7d", want: 7 * 24 * time.Hour},
		{in: "30d", want: 30 * 24 * time.Hour},
		{in: "36h", want: 36 * time.Hour},
		{in: "300s", want: 300 * time.Second},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "0d", want: 0},
		{in: "", bad: true},
		{in: "d", bad: true},
		{in: "7", bad: true},
		{in: "-1d", bad: true},
		{in: "1.5d", bad: true},
		{in: "7days", bad: true},
		{in: "99999999999d", bad: true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if tt.bad {
			assert.Error(t, err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
	assert.Equal(t, "7d", FormatDuration(7*24*time.Hour))
	assert.Equal(t, "36h0m0s", FormatDuration(36*time.Hour))
}

func TestAddressPool(t *testing.T) {
	p := AddressPool{Network: netip.MustParsePrefix("10.0.0.0/29"), HostAddress: netip.MustParseAddr("10.0.0.1")}
	var got []string
	for a := p.First(); a.IsValid(); a = p.Next(a) {
		got = append(got, a.String())
	}
	assert.Equal(t, []string{"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"}, got)
	p.HostAddress = netip.MustParseAddr("10.0.0.4")
	got = nil
	for a := p.First(); a.IsValid(); a = p.Next(a) {
		got = append(got, a.String())
	}
	assert.Equal(t, []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.5", "10.0.0.6"}, got)
	assert.False(t, p.Assignable(netip.MustParseAddr("10.0.0.7")), "broadcast")
	assert.False(t, p.Assignable(netip.MustParseAddr("10.0.0.8")), "outside")

	v6 := AddressPool{Network: netip.MustParsePrefix("fd00::/126"), HostAddress: netip.MustParseAddr("fd00::1")}
	got = nil
	for a := v6.First(); a.IsValid(); a = v6.Next(a) {
		got = append(got, a.String())
	}
	assert.Equal(t, []string{"fd00::2", "fd00::3"}, got, "IPv6 has no broadcast address")
}

// TestIPv6Addresses: network6 is optional; host_address6 defaults to its
// first address, and JSON null (the module's unset option) is no IPv6.
func TestIPv6Addresses(t *testing.T) {
	const pa = "public_address = \"dev.example.com\"\n"
	c, err := Parse("h.hcl", []byte(pa))
	require.NoError(t, err)
	assert.False(t, c.Addresses.HasIPv6())
	assert.False(t, c.Addresses.HostAddress6.IsValid())

	c, err = Parse("h.hcl", []byte(pa+"addresses { network6 = \"fd00:dead:beef::/64\" }\n"))
	require.NoError(t, err)
	assert.True(t, c.Addresses.HasIPv6())
	assert.Equal(t, "fd00:dead:beef::/64", c.Addresses.Network6.String())
	assert.Equal(t, "fd00:dead:beef::1", c.Addresses.HostAddress6.String())
	assert.Equal(t, "10.233.0.1", c.Addresses.HostAddress.String(), "IPv4 unchanged")
	v6 := c.Addresses.IPv6()
	assert.Equal(t, "fd00:dead:beef::2", v6.First().String())

	c, err = Parse("h.hcl", []byte(pa+"addresses {\n network6 = \"2001:db8:1:2::/64\"\n host_address6 = \"2001:db8:1:2::ffff\"\n}\n"))
	require.NoError(t, err)
	assert.Equal(t, "2001:db8:1:2::ffff", c.Addresses.HostAddress6.String())
	assert.Equal(t, "2001:db8:1:2::1", c.Addresses.IPv6().First().String())

	c, err = Parse("h.json", []byte(`{"public_address": "dev.example.com", "addresses": {"network": "10.233.0.0/16", "host_address": null, "network6": null, "host_address6": null}}`))
	require.NoError(t, err)
	assert.False(t, c.Addresses.HasIPv6())
}

// TestChannelsPolicy: the configured prefixes become the channel policy,
// and an allowed prefix cannot be left by a longer host name, a port or a
// query.
func TestChannelsPolicy(t *testing.T) {
	c := Default("dev.example.com")
	check := func(s string) error {
		ch, err := channel.Parse(s)
		if err != nil {
			return err
		}
		_, err = c.Channels.Policy().Check(ch)
		return err
	}
	require.NoError(t, check("https://example.org/nixexprs.tar.xz"), "no prefixes: any https:// channel")
	assert.ErrorContains(t, check("file:///nix/var/nix/profiles/per-user/root/channels/nixos"), "allows no file:// channels")
	c.Channels.AllowedPrefixes = []string{"https://hydra.flyingcircus.io", "file:///nix/var/nix/profiles/per-user/root/channels/"}
	tests := []struct {
		channel string
		ok      bool
	}{
		{"https://hydra.flyingcircus.io/build/1/download/1/nixexprs.tar.xz", true},
		{"https://hydra.flyingcircus.io", true},
		{"https://hydra.flyingcircus.io?x=1", false},
		{"https://hydra.flyingcircus.io.evil.example/nixexprs.tar.xz", false},
		{"https://hydra.flyingcircus.io:8443/nixexprs.tar.xz", false},
		{"https://hydra.flyingcircus.io-evil.example/x", false},
		{"https://example.org/nixexprs.tar.xz", false},
		{"file:///nix/var/nix/profiles/per-user/root/channels/../../alice/channels/evil", false},
		{"file:///nix/var/nix/profiles/per-user/root/channels/%2e%2e/%2e%2e/alice/x", false},
		{"https://hydra.flyingcircus.io/build/../../x", false},
		{"file:///nix/var/nix/profiles/per-user/root/channels/./nixos", false},
	}
	for _, tt := range tests {
		err := check(tt.channel)
		if tt.ok {
			assert.NoError(t, err, tt.channel)
		} else {
			assert.ErrorIs(t, err, names.ErrInvalid, tt.channel)
		}
	}
}
