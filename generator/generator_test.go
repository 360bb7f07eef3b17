package generator

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/diag"
	"github.com/flyingcircusio/devhost/internal/hostconfig"
	"github.com/flyingcircusio/devhost/internal/limits"
	"github.com/flyingcircusio/devhost/internal/registry"
)

// expected computes what default.nix must evaluate to, from the host
// configuration and the registry alone (the contract in doc.go). The
// locations' extraConfig is compared separately.
func expected(cfg *hostconfig.Config, cs []*registry.Container) map[string]any {
	ssl := func(v map[string]any) map[string]any {
		if !cfg.ACME.Enable {
			v["sslCertificate"] = cfg.StateDir + "/selfsigned/cert.pem"
			v["sslCertificateKey"] = cfg.StateDir + "/selfsigned/key.pem"
		}
		return v
	}
	containers, vhosts, hosts, services := map[string]any{}, map[string]any{}, map[string]any{}, map[string]any{}
	pub := cfg.PublicAddress
	dns := cfg.ACME.Enable && cfg.ACME.Challenge == hostconfig.DNS01
	certs := map[string]any{}
	if dns {
		certs[pub] = map[string]any{"domain": pub, "extraDomainNames": []any{"*." + pub}}
	}
	cert := func(v map[string]any, name string) map[string]any {
		if dns {
			v["useACMEHost"] = name
		} else {
			v["enableACME"] = cfg.ACME.Enable
		}
		return v
	}
	for _, c := range cs {
		if l := c.Limits.Or(cfg.Limits); !l.IsZero() {
			sc := map[string]any{}
			if l.MemoryMax != "" {
				sc["MemoryMax"] = l.MemoryMax
			}
			if l.CPUWeight != 0 {
				sc["CPUWeight"] = float64(l.CPUWeight)
			}
			if l.CPUQuota != "" {
				sc["CPUQuota"] = l.CPUQuota
			}
			if l.TasksMax != 0 {
				sc["TasksMax"] = float64(l.TasksMax)
			}
			services["container@"+c.Name] = map[string]any{"serviceConfig": sc}
		}
		decl := map[string]any{
			"path":           cfg.ProfileDir + "/" + c.Name + "/system",
			"privateNetwork": true,
			"hostAddress":    cfg.Addresses.HostAddress.String(),
			"localAddress":   c.Address.String(),
			"autoStart":      c.State == registry.Running,
		}
		if cfg.Addresses.Network6.IsValid() && c.Address6.IsValid() {
			decl["hostAddress6"] = cfg.Addresses.HostAddress6.String()
			decl["localAddress6"] = c.Address6.String()
			hosts[c.Address6.String()] = []any{c.Name}
		}
		containers[c.Name] = decl
		certName := pub
		if dns && cfg.AliasProxy && cfg.AliasStyle == hostconfig.AliasNested && len(c.Aliases) > 0 {
			// The shard of the name's FNV-1a hash among the slots; a
			// fresh plan lists a shard's wildcards sorted.
			h := fnv.New32a()
			h.Write([]byte(c.Name))
			certName = fmt.Sprintf("%s-shard-%02d", pub, h.Sum32()%uint32(cfg.ACME.Shards))
			shard, _ := certs[certName].(map[string]any)
			if shard == nil {
				shard = map[string]any{"domain": "*." + pub, "extraDomainNames": []any{}}
				certs[certName] = shard
			}
			shard["extraDomainNames"] = append(shard["extraDomainNames"].([]any), "*."+c.Name+"."+pub)
		}
		v := ssl(cert(map[string]any{
			"forceSSL": true,
			"locations": map[string]any{"/": map[string]any{
				"proxyPass":                "https://" + c.Name,
				"proxyWebsockets":          true,
				"recommendedProxySettings": true,
				"extraConfig":              "(checked separately)",
			}},
		}, certName))
		if c.ProtectUser != "" {
			v["basicAuthFile"] = cfg.StateDir + "/htpasswd/" + c.Name
		}
		if cfg.AliasProxy {
			aliases := []any{}
			for _, a := range c.Aliases {
				if cfg.AliasStyle == hostconfig.AliasFlat {
					aliases = append(aliases, a+"--"+c.Name+"."+cfg.PublicAddress)
				} else {
					aliases = append(aliases, a+"."+c.Name+"."+cfg.PublicAddress)
				}
			}
			v["serverAliases"] = aliases
		}
		vhosts[c.Name+"."+cfg.PublicAddress] = v
		hosts[c.Address.String()] = []any{c.Name}
	}
	vhosts[cfg.PublicAddress] = ssl(cert(map[string]any{
		"forceSSL":  true,
		"root":      cfg.GeneratedDir + "/www",
		"locations": map[string]any{"/": map[string]any{"tryFiles": "/index.html =404"}},
	}, pub))
	for _, c := range certs {
		l := c.(map[string]any)["extraDomainNames"].([]any)
		slices.SortFunc(l, func(a, b any) int { return strings.Compare(a.(string), b.(string)) })
	}
	return map[string]any{
		"version":       float64(1),
		"publicAddress": cfg.PublicAddress,
		"containers":    containers,
		"virtualHosts":  vhosts,
		"hosts":         hosts,
		"certs":         certs,
		"services":      services,
		"cleanup":       map[string]any{"enable": cfg.Cleanup.Enable, "at": cfg.Cleanup.At},
	}
}

// TestGeneratedSetEvaluates renders registries under several host
// configurations, checks every file with nix-instantiate --parse and
// compares the evaluation of default.nix with the structure computed from
// the input.
func TestGeneratedSetEvaluates(t *testing.T) {
	nix := nixInstantiate(t)
	variants := map[string]func(*hostconfig.Config){
		"defaults":       func(*hostconfig.Config) {},
		"no acme":        func(c *hostconfig.Config) { c.ACME.Enable = false },
		"no alias proxy": func(c *hostconfig.Config) { c.AliasProxy = false; c.Cleanup.Enable = false; c.Cleanup.At = "04:30" },
		"hostile paths":  func(*hostconfig.Config) {},
		"flat aliases":   func(c *hostconfig.Config) { c.AliasStyle = hostconfig.AliasFlat },
		// Every container but c3 (registered before network6) has IPv6.
		"ipv6": func(c *hostconfig.Config) {
			c.Addresses.Network6 = netip.MustParsePrefix("fd00:dead:beef::/64")
			c.Addresses.HostAddress6 = netip.MustParseAddr("fd00:dead:beef::1")
		},
		// The entries keep their IPv6 addresses; the host declares none.
		"ipv6 removed": func(*hostconfig.Config) {},
		"dns-01": func(c *hostconfig.Config) {
			c.ACME.Challenge, c.ACME.DNSProvider, c.ACME.Shards = hostconfig.DNS01, "rfc2136", 3
		},
		"dns-01 flat": func(c *hostconfig.Config) {
			c.ACME.Challenge, c.ACME.DNSProvider, c.AliasStyle = hostconfig.DNS01, "rfc2136", hostconfig.AliasFlat
		},
		"compat and tuning": func(c *hostconfig.Config) {
			c.Compat.BootstrapKey = true
			c.Nginx.ProxyTimeout = 1500e6 // 1.5 s rounds up
			c.Nginx.ClientMaxBodySize = "2g"
		},
		"limits and protection": func(c *hostconfig.Config) {
			c.Limits = limits.Limits{MemoryMax: "1G", TasksMax: 2048}
		},
	}
	for name, change := range variants {
		t.Run(name, func(t *testing.T) {
			tmp := t.TempDir()
			cfg := testConfig(tmp)
			change(cfg)
			if name == "hostile paths" {
				cfg = testConfig(tmp + `/we"ird ${x} ''dir\`)
			}
			cs := containers(t, 7)
			if strings.HasPrefix(name, "ipv6") {
				for i, c := range cs {
					if i != 3 {
						c.Address6 = netip.MustParseAddr(fmt.Sprintf("fd00:dead:beef::%x", 0xfff0+i))
					}
				}
			}
			if name == "limits and protection" {
				cs[0].Limits = limits.Limits{MemoryMax: "50%", CPUWeight: 10000, CPUQuota: "200%"}
				cs[1].Limits = limits.Limits{TasksMax: 1}
				cs[1].ProtectUser = "customer"
			}
			set, err := Generate(cfg, cs, loadTemplates(t))
			require.NoError(t, err)
			require.NoError(t, Write(cfg.GeneratedDir, set))
			require.NoError(t, Check(context.Background(), nix, cfg.GeneratedDir))

			out, err := Eval(context.Background(), nix, cfg.GeneratedDir)
			require.NoError(t, err)
			var got map[string]any
			require.NoError(t, json.Unmarshal(out, &got))

			timeout := int(cfg.Nginx.ProxyTimeout.Seconds() + 0.999)
			for host, v := range got["virtualHosts"].(map[string]any) {
				loc := v.(map[string]any)["locations"].(map[string]any)["/"].(map[string]any)
				if host == cfg.PublicAddress {
					continue
				}
				ec, _ := loc["extraConfig"].(string)
				lines := strings.Split(ec, "\n")
				for _, want := range []string{
					"proxy_ssl_verify off;",
					"proxy_ssl_server_name on;",
					"proxy_ssl_name $host;",
					"proxy_read_timeout " + strconv.Itoa(timeout) + "s;",
					"proxy_send_timeout " + strconv.Itoa(timeout) + "s;",
					"client_max_body_size " + cfg.Nginx.ClientMaxBodySize + ";",
				} {
					assert.Contains(t, lines, want, "extraConfig of %s", host)
				}
				assert.NotContains(t, ec, "proxy_set_header", "headers come from recommendedProxySettings, never twice")
				loc["extraConfig"] = "(checked separately)"
			}
			assert.Equal(t, expected(cfg, cs), got)

			protected := 0
			for _, c := range cs {
				if c.ProtectUser != "" {
					protected++
				}
			}
			assert.Equal(t, protected, strings.Count(string(set.Files[StatusFile]), "(protected)"), "the status page marks protected containers")
			for _, c := range cs {
				conf := string(set.Files[ConfigurationFile(c.Name)])
				assert.Equal(t, cfg.Compat.BootstrapKey, strings.Contains(conf, BootstrapKey), "bootstrap key in %s", c.Name)
			}
		})
	}
}

// TestEmptyRegistry: a host without containers still gets an index that
// evaluates (the status page only).
func TestEmptyRegistry(t *testing.T) {
	nix := nixInstantiate(t)
	cfg := testConfig(t.TempDir())
	set, err := Generate(cfg, nil, loadTemplates(t))
	require.NoError(t, err)
	assert.Equal(t, []string{IndexFile, StatusFile}, set.Paths())
	require.NoError(t, Write(cfg.GeneratedDir, set))
	out, err := Eval(context.Background(), nix, cfg.GeneratedDir)
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(out, &got))
	assert.Equal(t, expected(cfg, nil), got)
}

func TestDeterministic(t *testing.T) {
	cfg := testConfig("/x")
	tmpl := loadTemplates(t)
	cs := containers(t, 50)
	a, err := Generate(cfg, cs, tmpl)
	require.NoError(t, err)
	b, err := Generate(cfg, cs, tmpl)
	require.NoError(t, err)
	assert.Equal(t, a.Files, b.Files)

	shuffled := slices.Clone(cs)
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	require.NotEqual(t, cs[0].Name, shuffled[0].Name)
	c, err := Generate(cfg, shuffled, tmpl)
	require.NoError(t, err)
	assert.Equal(t, a.Files, c.Files)
	assert.Equal(t, a.Digest(), c.Digest())
	assert.Len(t, a.Digest(), 64)

	// Generate leaves its input alone.
	assert.NotEqual(t, cs[0].Name, shuffled[0].Name)
}

// TestDigests: the host digest changes only with what the host evaluates;
// what a container holds (keys, users, labels, deployment times) only
// changes its container digest or the status page.
func TestDigests(t *testing.T) {
	cfg := testConfig("/x")
	tmpl := loadTemplates(t)
	gen := func(cs []*registry.Container) *Set {
		s, err := Generate(cfg, cs, tmpl)
		require.NoError(t, err)
		return s
	}
	base := gen(containers(t, 5))
	assert.Empty(t, base.ContainerDigest("nope"))

	inner := containers(t, 5)
	inner[1].SSHKeys = append(inner[1].SSHKeys, sshKey(t, 99))
	inner[1].ServiceUser = "s-other"
	inner[1].Labels = map[string]string{"x": "y"}
	inner[1].LastError = "failed"
	inner[2].Deployed = inner[2].Deployed.Add(3600e9)
	s := gen(inner)
	assert.Equal(t, base.HostDigest(), s.HostDigest(), "the host needs no rebuild")
	assert.NotEqual(t, base.Digest(), s.Digest())
	assert.NotEqual(t, base.ContainerDigest("c1"), s.ContainerDigest("c1"))
	assert.Equal(t, base.ContainerDigest("c0"), s.ContainerDigest("c0"))

	for what, change := range map[string]func([]*registry.Container){
		"state":   func(cs []*registry.Container) { cs[0].State = registry.Stopped },
		"aliases": func(cs []*registry.Container) { cs[0].Aliases = []string{"new"} },
		"address": func(cs []*registry.Container) { cs[0].Address = netip.MustParseAddr("10.233.9.9") },
		"removed": func(cs []*registry.Container) { cs[4] = cs[3] },
	} {
		cs := containers(t, 5)
		change(cs)
		if what == "removed" {
			cs = cs[:4]
		}
		assert.NotEqual(t, base.HostDigest(), gen(cs).HostDigest(), what)
	}

	// Host-side files never carry what only the container needs.
	for p, b := range base.Files {
		if IsHostFile(p) {
			assert.NotContains(t, string(b), "ssh-ed25519", p)
			assert.NotContains(t, string(b), "s-dev", p)
			assert.NotContains(t, string(b), "provision", p)
		}
	}
}

func TestInvalidInput(t *testing.T) {
	cfg := testConfig("/x")
	cfg.Addresses.Network6 = netip.MustParsePrefix("fd00::/64")
	cfg.Addresses.HostAddress6 = netip.MustParseAddr("fd00::1")
	tmpl := loadTemplates(t)
	tests := map[string]struct {
		change func([]*registry.Container) []*registry.Container
		want   string
	}{
		"duplicate name": {func(cs []*registry.Container) []*registry.Container { cs[1].Name = "c0"; return cs }, "Container name used twice"},
		"duplicate addr": {func(cs []*registry.Container) []*registry.Container { cs[1].Address = cs[0].Address; return cs }, "Address used twice"},
		"host address": {func(cs []*registry.Container) []*registry.Container {
			cs[0].Address = cfg.Addresses.HostAddress
			return cs
		}, "host address"},
		"duplicate addr6": {func(cs []*registry.Container) []*registry.Container {
			cs[0].Address6 = netip.MustParseAddr("fd00::2")
			cs[1].Address6 = netip.MustParseAddr("fd00::2")
			return cs
		}, "Address used twice"},
		"host address6": {func(cs []*registry.Container) []*registry.Container {
			cs[0].Address6 = cfg.Addresses.HostAddress6
			return cs
		}, "host address"},
		"bad address6": {func(cs []*registry.Container) []*registry.Container {
			cs[0].Address6 = netip.MustParseAddr("fe80::2")
			return cs
		}, "Invalid address6"},
		"bad alias":       {func(cs []*registry.Container) []*registry.Container { cs[0].Aliases = []string{"a.b"}; return cs }, "Invalid alias"},
		"bad name":        {func(cs []*registry.Container) []*registry.Container { cs[0].Name = "Shop_1"; return cs }, "Invalid container name"},
		"nil entry":       {func(cs []*registry.Container) []*registry.Container { return append(cs, nil) }, "Missing container"},
		"NUL in an error": {func(cs []*registry.Container) []*registry.Container { cs[0].LastError = "a\x00"; return cs }, "last_error"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Generate(cfg, tt.change(containers(t, 3)), tmpl)
			var de *diag.Error
			require.ErrorAs(t, err, &de)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	bad := testConfig("relative")
	_, err := Generate(bad, nil, tmpl)
	require.ErrorContains(t, err, "absolute")
	bad = testConfig("/x")
	bad.Nginx.ClientMaxBodySize = "1m; evil"
	_, err = Generate(bad, nil, tmpl)
	require.ErrorContains(t, err, "client_max_body_size")
}

// TestBadOverrideTemplate: an admin template that pastes a value unescaped
// makes Generate fail; nothing is produced.
func TestBadOverrideTemplate(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "vhost.nix.tmpl"), []byte(`{ serverName = "{{ .FQDN }}"; }`), 0o644))
	tmpl, err := loadOverride(dir)
	require.NoError(t, err)
	set, err := Generate(testConfig("/x"), containers(t, 2), tmpl)
	require.Error(t, err)
	assert.Nil(t, set)
	assert.Contains(t, err.Error(), "escaping function")
	assert.False(t, errors.Is(err, os.ErrNotExist))
}

// TestStatusPage renders the public status page from a registry whose
// entries carry owners, environments, deployment roots, labels and last
// errors, parses the HTML, and finds each container's name, state and URLs
// in it, and none of the private values, in text or attributes.
func TestStatusPage(t *testing.T) {
	cfg := testConfig("/x")
	cs := containers(t, 4)
	for i, c := range cs {
		c.Owner = fmt.Sprintf("owner%dsecret", i)
		c.Environment = fmt.Sprintf("env%dsecret", i)
		c.LastError = fmt.Sprintf("error: /etc/shadow line%d root:$6$hash <b>x</b>", i)
		c.Labels["private"] = fmt.Sprintf("label%dsecret", i)
	}
	set, err := Generate(cfg, cs, loadTemplates(t))
	require.NoError(t, err)
	texts, attrs := parseHTML(t, set.Files[StatusFile])
	page := strings.Join(texts, "\n") + "\n" + strings.Join(attrs, "\n")
	for _, c := range cs {
		assert.Contains(t, texts, c.Name)
		assert.Contains(t, texts, string(c.State))
		assert.Contains(t, attrs, "https://"+c.Name+".dev.example.com/")
		for _, a := range c.Aliases {
			assert.Contains(t, texts, "https://"+a+"."+c.Name+".dev.example.com/")
		}
		for what, private := range map[string]string{
			"owner": c.Owner, "environment": c.Environment, "root": c.Root, "last error": c.LastError,
			"label": c.Labels["private"], "ssh key": c.SSHKeys[0], "channel": c.Channel, "address": c.Address.String(),
		} {
			assert.NotContains(t, page, private, "the public status page shows %s's %s", c.Name, what)
		}
		assert.NotContains(t, page, "/etc/shadow")
	}
	raw := string(set.Files[StatusFile])
	assert.NotContains(t, raw, "secret")
	assert.NotContains(t, raw, "<script>")
}

// parseHTML parses an HTML page (encoding/xml in its lenient HTML mode)
// and returns its text nodes (trimmed, non-empty) and attribute values.
func parseHTML(t *testing.T, page []byte) (texts, attrs []string) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(page))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	elements := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		switch tok := tok.(type) {
		case xml.StartElement:
			elements++
			for _, a := range tok.Attr {
				attrs = append(attrs, a.Value)
			}
		case xml.CharData:
			if s := strings.TrimSpace(string(tok)); s != "" {
				texts = append(texts, s)
			}
		}
	}
	require.Greater(t, elements, 10, "not an HTML page")
	return texts, attrs
}

func TestCheckReportsFile(t *testing.T) {
	nix := nixInstantiate(t)
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "containers"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "default.nix"), []byte("{ }"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "containers", "bad.nix"), []byte("{ a = ; }"), 0o644))
	err := Check(context.Background(), nix, dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join(dir, "containers", "bad.nix"))
	require.NoError(t, os.Remove(filepath.Join(dir, "containers", "bad.nix")))
	require.NoError(t, Check(context.Background(), nix, dir))
}

// TestCompiledTemplatesGiveTheSameSet generates a set of 1,000 containers
// (hostile roots, labels and errors; aliases, stopped containers; every
// third with resource limits, every fifth protected) under several host
// configurations with the compiled template executor and with
// text/template alone (templates.Set.Reference): every file is the same
// byte for byte.
func TestCompiledTemplatesGiveTheSameSet(t *testing.T) {
	tmpl := loadTemplates(t)
	cs := containers(t, 1000)
	for i, c := range cs {
		if i%3 == 0 {
			c.Limits = limits.Limits{MemoryMax: "50%", CPUWeight: 100 + i, CPUQuota: "200%"}
		}
		if i%5 == 0 {
			c.ProtectUser = "customer"
		}
	}
	for name, change := range map[string]func(*hostconfig.Config) *hostconfig.Config{
		"defaults":      func(c *hostconfig.Config) *hostconfig.Config { return c },
		"no acme":       func(c *hostconfig.Config) *hostconfig.Config { c.ACME.Enable = false; return c },
		"hostile paths": func(*hostconfig.Config) *hostconfig.Config { return testConfig(`/we"ird ${x} ''dir\`) },
		"compat, no alias proxy, host limits": func(c *hostconfig.Config) *hostconfig.Config {
			c.Compat.BootstrapKey = true
			c.AliasProxy = false
			c.Cleanup.Enable = false
			c.Limits = limits.Limits{MemoryMax: "1G", TasksMax: 2048}
			return c
		},
		"dns-01 flat": func(c *hostconfig.Config) *hostconfig.Config {
			c.ACME.Challenge, c.ACME.DNSProvider, c.AliasStyle = hostconfig.DNS01, "rfc2136", hostconfig.AliasFlat
			return c
		},
		"dns-01 nested": func(c *hostconfig.Config) *hostconfig.Config {
			c.ACME.Challenge, c.ACME.DNSProvider, c.ACME.Shards = hostconfig.DNS01, "rfc2136", 3
			return c
		},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := change(testConfig("/x"))
			got, err := Generate(cfg, cs, tmpl)
			require.NoError(t, err)
			want, err := Generate(cfg, cs, tmpl.Reference())
			require.NoError(t, err)
			require.Equal(t, want.Paths(), got.Paths())
			for _, p := range want.Paths() {
				if !bytes.Equal(want.Files[p], got.Files[p]) {
					require.Equal(t, string(want.Files[p]), string(got.Files[p]), p)
				}
			}
		})
	}
}
