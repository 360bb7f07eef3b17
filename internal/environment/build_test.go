package environment

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/limits"
	"github.com/flyingcircusio/devhost/internal/names"
	"github.com/flyingcircusio/devhost/internal/rawconfig"
)

// build parses cfg (and hostmap.json text, "" for none) and builds the model.
func build(t *testing.T, cfg, hostmap string) (*Environment, hcl.Diagnostics) {
	t.Helper()
	f, err := rawconfig.Parse("environment.cfg", []byte(cfg))
	require.NoError(t, err)
	var hm *HostMap
	if hostmap != "" {
		hm = &HostMap{Name: "hostmap.json"}
		require.Empty(t, hm.parse([]byte(hostmap)))
	}
	return Build("dev", f, hm)
}

// diagStrings renders diagnostics as "file:line:col severity: summary".
func diagStrings(diags hcl.Diagnostics) []string {
	out := []string{}
	for _, d := range diags {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		pos := "-"
		if d.Subject != nil {
			pos = fmt.Sprintf("%s:%d:%d", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		out = append(out, fmt.Sprintf("%s %s: %s", pos, sev, d.Summary))
	}
	return out
}

const provDefault = `[provisioner:default]
method = fc-nixos-dev-container
host = dev.example.com
channel = https://hydra.flyingcircus.io/build/1/download/1/nixexprs.tar.xz
`

// TestBuildDiagnostics: every case lists the diagnostics expected, each as a
// position plus a substring of the summary, in order.
func TestBuildDiagnostics(t *testing.T) {
	cases := []struct {
		name, cfg, hostmap string
		want               []string
	}{
		{name: "valid", cfg: provDefault + "[host:web]\ncomponents = nginx\nprovision-aliases = shop admin\n"},
		{name: "missing provisioner section",
			cfg:  provDefault + "[host:web]\ncomponents = a\nprovisioner = other\n",
			want: []string{`environment.cfg:7:15 error: host "web" uses provisioner "other", but there is no [provisioner:other] section`}},
		{name: "dynamic hostname not a boolean",
			cfg: provDefault + "[host:web]\ncomponents = a\nprovision-dynamic-hostname = true\n" +
				"[host:db]\ncomponents = a\nprovision-dynamic-hostname = 1\n",
			want: []string{
				`environment.cfg:7:30 error: provision-dynamic-hostname must be True or False, not "true"`,
				`environment.cfg:10:30 error: provision-dynamic-hostname must be True or False, not "1"`,
			}},
		{name: "unknown method",
			cfg:  "[provisioner:default]\nmethod = fc-nixos-dev-vm\nhost = x.example.com\n",
			want: []string{`environment.cfg:2:10 error: unknown provisioner method "fc-nixos-dev-vm"`}},
		{name: "devhost method, missing host and channel",
			cfg: "[provisioner:default]\nmethod = devhost\n[provisioner:other]\nhost = a.b\n",
			want: []string{
				`environment.cfg:1:1 error: [provisioner:default] has no host`,
				`environment.cfg:1:1 error: [provisioner:default] has no channel`,
				`environment.cfg:3:1 error: [provisioner:other] has no method`,
				`environment.cfg:3:1 error: [provisioner:other] has no channel`,
			}},
		{name: "every mistake of a provisioner section at once",
			cfg: "[provisioner:default]\nmethod = devhots\nhost = Dev_Host\nchannel = http://x.org/a b\n" +
				"[provisioner:vm]\nmethod = fc-nixos-dev-vm\n",
			want: []string{
				`environment.cfg:2:10 error: unknown provisioner method "devhots"`,
				`environment.cfg:3:8 error: invalid domain "Dev_Host"`,
				`environment.cfg:4:11 error: invalid channel URL`,
				`environment.cfg:6:10 error: unknown provisioner method "fc-nixos-dev-vm"`,
			}},
		{name: "host names that ssh_config would read as patterns",
			cfg: provDefault + "[hosts]\n* = a\nweb,db = a\n[host:a?b]\ncomponents = a\nprovision-dynamic-hostname = True\n" +
				"[host:!neg]\ncomponents = a\nprovision-dynamic-hostname = True\n" +
				"[host:not provisioned]\ncomponents = a\nprovisioner = none\n",
			hostmap: `{"a?b": "abc", "!neg": "def"}`,
			want: []string{
				`environment.cfg:6:1 error: invalid host name "*": it contains '*'`,
				`environment.cfg:6:1 error: invalid container name "*"`,
				`environment.cfg:7:1 error: invalid host name "web,db": it contains ','`,
				`environment.cfg:7:1 error: invalid container name "web,db"`,
				`environment.cfg:8:7 error: invalid host name "a?b"`,
				`environment.cfg:11:7 error: invalid host name "!neg"`,
			}},
		{name: "a real name from hostmap.json that ssh_config would read as a pattern",
			cfg:     provDefault + "[host:web]\ncomponents = a\nprovision-dynamic-hostname = True\n",
			hostmap: `{"web": "*"}`,
			want:    []string{`hostmap.json:1:9 error: invalid container name "*"`}},
		{name: "component attributes up cannot export",
			cfg: "[DEFAULT]\ndata-team = web\n" + provDefault + "[host:web]\ncomponents = a\n" +
				"[component:a]\nfoo-bar = 1\nok = fine\nnul = a\x00b\n[component:my-app]\nx = 1\n",
			want: []string{
				`environment.cfg:10:1 error: attribute "foo-bar" of component "a" cannot be passed to provision.sh`,
				`environment.cfg:12:7 error: value of attribute "nul" of component "a" contains a NUL byte`,
				`environment.cfg:14:1 error: attribute "x" of component "my-app" cannot be passed to provision.sh`,
			}},
		{name: "bad channel and devhost",
			cfg:  "[provisioner:default]\nmethod = devhost\nhost = Dev_Host\nchannel = http://x.org/c\n",
			want: []string{`environment.cfg:3:8 error: invalid domain "Dev_Host"`, `environment.cfg:4:11 error: invalid channel URL "http://x.org/c"`}},
		{name: "channel with URL delimiters or shell operators",
			cfg: "[provisioner:default]\nmethod = fc-nixos-dev-container\nhost = a.example.com\nchannel = https://x.org/c?a=1&b=2\n" +
				"[provisioner:semi]\nmethod = fc-nixos-dev-container\nhost = a.example.com\nchannel = https://x.org/c;v=1\n" +
				"[provisioner:plugin]\nmethod = devhost\nhost = a.example.com\nchannel = https://x.org/c?a=1&b=2\n",
			want: []string{
				`environment.cfg:4:11 error: invalid channel URL "https://x.org/c?a=1&b=2": its path contains '?'`,
				`environment.cfg:8:11 error: invalid channel URL "https://x.org/c;v=1": its path contains ';'`,
				`environment.cfg:12:11 error: invalid channel URL "https://x.org/c?a=1&b=2": its path contains '?'`,
			}},
		{name: "service user of provisioned hosts only",
			cfg: "[environment]\nservice_user = S-Shop\n" + provDefault +
				"[host:web]\ncomponents = a\n[host:ok]\ncomponents = a\nservice_user = s-ok\n" +
				"[host:other]\ncomponents = a\nprovisioner = none\nservice_user = Not Checked\n",
			want: []string{`environment.cfg:2:16 error: invalid user name "S-Shop"`}},
		{name: "reserved service users",
			cfg: "[environment]\nservice_user = developer\n" + provDefault +
				"[host:web]\ncomponents = a\n[host:db]\ncomponents = a\nservice_user = root\n",
			want: []string{
				`environment.cfg:2:16 error: service user "developer" is reserved`,
				`environment.cfg:11:16 error: service user "root" is reserved`,
			}},
		{name: "aliases: invalid, duplicate, too long",
			cfg: strings.Replace(provDefault, "dev.example.com", strings.Repeat("d", 60)+"."+strings.Repeat("e", 60)+"."+strings.Repeat("f", 60)+".com", 1) +
				"[host:web]\ncomponents = a\nprovision-aliases =\n\tok Bad\n\tok\n  " + strings.Repeat("a", 63) + "\n",
			want: []string{
				`environment.cfg:8:5 error: invalid alias "Bad"`,
				`environment.cfg:9:2 error: duplicate alias "ok" of host "web"`,
				`environment.cfg:10:3 error: invalid alias "` + strings.Repeat("a", 63) + `"`,
			}},
		{name: "container name of a static host",
			cfg:  provDefault + "[host:web_1]\ncomponents = a\n",
			want: []string{`environment.cfg:5:7 error: invalid container name "web_1"`}},
		{name: "container name from hostmap.json",
			cfg:     provDefault + "[host:web]\ncomponents = a\nprovision-dynamic-hostname = True\n",
			hostmap: "{\"web\": \"12345\"}",
			want:    []string{`hostmap.json:1:9 error: invalid container name "12345"`}},
		{name: "empty name in hostmap.json is not an unassigned one",
			cfg:     provDefault + "[host:web]\ncomponents = a\nprovision-dynamic-hostname = True\n",
			hostmap: "{\"web\": \"\"}",
			want:    []string{`hostmap.json:1:9 error: hostmap.json gives host "web" an empty name`}},
		{name: "duplicate host",
			cfg:  "[hosts]\na = x\n!b = y\n[host:a]\ncomponents = z\n[host:b]\ncomponents = z\n",
			want: []string{`environment.cfg:4:7 error: duplicate host "a"`, `environment.cfg:6:7 error: duplicate host "b"`}},
		{name: "duplicate real names through hostmap.json",
			cfg: provDefault + "[host:web]\ncomponents = a\nprovision-dynamic-hostname = True\n" +
				"[host:db]\ncomponents = a\nprovision-dynamic-hostname = True\n",
			hostmap: `{"web": "abc", "db": "abc"}`,
			want:    []string{`environment.cfg:8:7 error: duplicate host "abc"`}},
		{name: "dynamic host without provisioner",
			cfg:  "[host:web]\ncomponents = a\nprovision-dynamic-hostname = True\n",
			want: []string{`environment.cfg:3:30 error: host "web" has a dynamic name but is not provisioned (no [provisioner:default] section)`}},
		{name: "stale hostmap entry of a static host",
			cfg:     provDefault + "[host:web]\ncomponents = a\n",
			hostmap: `{"web": "abc"}`,
			want:    []string{`hostmap.json:1:9 warning: hostmap.json maps "web" to "abc", but that host's name is "web"`}},
		{name: "batou-only problems are warnings",
			cfg: "[environment]\ntimeout = soon\njobs = 2.5\nrequire_v4 = maybe\n[hosts]\na = x,\n[vfs]\n[resolver]\na = 10.0.0.1\n  nonsense\n[extra]\n[host:b]\nplatform = nixos\n",
			want: []string{
				`environment.cfg:2:11 warning: timeout "soon" is not a whole number`,
				`environment.cfg:3:8 warning: jobs "2.5" is not a whole number`,
				`environment.cfg:4:14 warning: "maybe" is not True, False or optional`,
				`environment.cfg:6:6 warning: empty component name`,
				`environment.cfg:12:1 warning: host "b" has no components option`,
				`environment.cfg:10:3 warning: "nonsense" is not an IP address`,
				`environment.cfg:7:1 warning: [vfs] has no sandbox option`,
				`environment.cfg:11:2 warning: unknown section [extra]`,
			}},
		{name: "aliases of a host that is not provisioned",
			cfg:  "[host:a]\ncomponents = x\nprovision-aliases = www\n",
			want: []string{`environment.cfg:3:1 warning: provision-aliases of host "a" have no effect: it is not provisioned (no [provisioner:default] section)`}},
		{name: "ignore option of a host section",
			cfg:  "[host:a]\ncomponents = x\nignore = yes\n",
			want: []string{`environment.cfg:3:10 error: ignore must be True or False, not "yes"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, diags := build(t, c.cfg, c.hostmap)
			got := diagStrings(diags)
			require.Len(t, got, len(c.want), "diagnostics: %q", got)
			for i, w := range c.want {
				assert.Contains(t, got[i], w)
			}
			for _, d := range diags {
				assert.NotEmpty(t, d.Detail, "every diagnostic says what to do: %s", d.Summary)
			}
		})
	}
}

func TestBuildModel(t *testing.T) {
	cfg := `[environment]
service_user = s-shop
host_domain = example.org

[DEFAULT]
data-team = web

[hosts]
plain = a, b:x
!gone = c

` + provDefault + `
[provisioner:other]
method = devhost
host = other.example.com
channel = file:///nix/store/channel
memory = 2048

[host:web]
provision-dynamic-hostname = True
provision-aliases =
    shop
	admin api
components =
    nginx
    shop:debug
    !shop:trace
data-role = frontend

[host:db]
provisioner = other
components = postgres
platform = nixos
service_user = s-db

[host:legacy]
provisioner = none
components = mailer

[component:shop]
admin_email = dev@example.com
`
	env, diags := build(t, cfg, `{"web": "c0ffee12345", "old": "f00"}`)
	require.Empty(t, diagStrings(diags))

	s := env.Settings
	assert.Equal(t, "s-shop", s.ServiceUser.Value)
	assert.Equal(t, "example.org", s.Platform.Value, "platform defaults to host_domain")
	assert.False(t, s.Platform.Set)
	assert.Equal(t, "rsync", s.UpdateMethod.Value)
	assert.Equal(t, "ssh", s.ConnectMethod.Value)
	assert.Equal(t, "~/deployment", s.TargetDirectory.Value)
	assert.Equal(t, 3, s.TimeoutSeconds)
	// [DEFAULT] options appear in [environment] as in batou, kept as Other.
	require.Len(t, s.Other, 1)
	assert.Equal(t, "data-team", s.Other[0].Name())

	var hostNames []string
	for _, h := range env.Hosts {
		hostNames = append(hostNames, h.Name)
	}
	// batou: [hosts] entries first (DEFAULT's options become hosts too),
	// then [host:NAME] sections in file order.
	assert.Equal(t, []string{"plain", "gone", "data-team", "web", "db", "legacy"}, hostNames)

	plain := env.Host("plain")
	assert.False(t, plain.Ignore)
	assert.True(t, env.Host("gone").Ignore)
	assert.Equal(t, "default", plain.Provisioner.Name, "[hosts] entries use the default provisioner, as in batou")
	assert.Equal(t, "plain", plain.RealName)
	assert.Equal(t, []Component{{Name: "a", Range: plain.Components[0].Range}, {Name: "b", Features: []string{"x"}, Range: plain.Components[1].Range}}, plain.Components)

	web := env.Host("web")
	assert.True(t, web.Dynamic)
	assert.Equal(t, "c0ffee12345", web.RealName)
	assert.Equal(t, "hostmap.json", web.RealNameRange.Filename)
	rn, ok := env.RealName("web")
	assert.True(t, ok)
	assert.Equal(t, "c0ffee12345", rn)
	var aliases []string
	for _, a := range web.Aliases {
		aliases = append(aliases, fmt.Sprintf("%s@%d:%d-%d", a.Name, a.Range.Start.Line, a.Range.Start.Column, a.Range.End.Column))
	}
	assert.Equal(t, []string{"shop@26:5-9", "admin@27:2-7", "api@27:8-11"}, aliases)
	require.Len(t, web.Components, 2)
	assert.Equal(t, "nginx", web.Components[0].String())
	assert.Equal(t, Component{Name: "shop", Features: []string{"debug", "trace"}, Ignore: true, Range: web.Components[1].Range}, web.Components[1])
	assert.Equal(t, 30, web.Components[1].Range.Start.Line)
	assert.Equal(t, []Data{{Name: "role", Value: web.Data[0].Value}, {Name: "team", Value: web.Data[1].Value}}, web.Data)
	assert.Equal(t, "frontend", web.Data[0].Value.Value)
	assert.Equal(t, "s-shop", web.ServiceUser.Value)

	db := env.Host("db")
	assert.Equal(t, "other", db.Provisioner.Name)
	assert.Equal(t, "nixos", db.Platform.Value)
	assert.Equal(t, "s-db", db.ServiceUser.Value)
	assert.Equal(t, "db", db.RealName)

	legacy := env.Host("legacy")
	assert.False(t, legacy.Provisioned())
	assert.Equal(t, "provisioner = none", legacy.NotProvisioned)
	assert.Empty(t, legacy.Aliases)

	require.Len(t, env.Provisioners, 2)
	other := env.Provisioners[1]
	assert.Equal(t, "devhost", other.Method.Value)
	assert.Equal(t, "file:///nix/store/channel", other.Channel.Value)
	require.Len(t, other.Other, 2)
	assert.Equal(t, "memory", other.Other[0].Name())

	require.Len(t, env.Overrides, 1)
	assert.Equal(t, "shop", env.Overrides[0].Component)
	assert.Equal(t, "admin_email", env.Overrides[0].Options[0].Name())

	var provisioned []string
	for _, h := range env.Provisioned() {
		provisioned = append(provisioned, h.Name)
	}
	assert.Equal(t, []string{"plain", "gone", "data-team", "web", "db"}, provisioned)
	_, ok = env.RealName("nonexistent")
	assert.False(t, ok)
}

// TestBuildUpperCaseHost: a host name that is no container name is an
// error, and the real name stays the host's.
func TestBuildUpperCaseHost(t *testing.T) {
	f, err := rawconfig.Parse("x.cfg", []byte("[provisioner:default]\nmethod = devhost\nhost = dev.example.com\nchannel = https://example.com/c\n[host:Web]\ncomponents = a\n"))
	require.NoError(t, err)
	env, diags := Build("x", f, nil)
	got := diagStrings(diags)
	require.Len(t, got, 1)
	assert.Contains(t, got[0], `invalid container name "Web"`)
	assert.Equal(t, "Web", env.Hosts[0].RealName)
}

// TestDefaultSection: [DEFAULT] fills every existing section (so its
// options become [hosts] entries, as in batou), but a missing [environment]
// stays empty, as batou's config.get("environment", {}) does.
func TestDefaultSection(t *testing.T) {
	env, diags := build(t, "[DEFAULT]\nservice_user = s-x\nprovisioner = none\n"+provDefault+"[host:web]\ncomponents = a\n", "")
	require.Empty(t, diagStrings(diags))
	assert.False(t, env.Settings.ServiceUser.Set)
	assert.Equal(t, "s-x", env.Host("web").ServiceUser.Value)
	assert.False(t, env.Host("web").Provisioned(), "provisioner = none from [DEFAULT]")

	env, diags = build(t, "[DEFAULT]\nservice_user = s-x\n[environment]\n[hosts]\na = b\n", "")
	require.Empty(t, diagStrings(diags))
	assert.Equal(t, "s-x", env.Settings.ServiceUser.Value)
	require.Len(t, env.Hosts, 2)
	assert.Equal(t, "service_user", env.Hosts[1].Name)
	assert.Equal(t, "s-x", env.Hosts[0].ServiceUser.Value, "[hosts] entries inherit the environment's service user")
}

func TestUnknownMethodListsKnownOnes(t *testing.T) {
	_, diags := build(t, "[provisioner:default]\nmethod = vagrant\n", "")
	require.Len(t, diags, 1)
	assert.Equal(t, `unknown provisioner method "vagrant"`, diags[0].Summary)
	assert.Contains(t, diags[0].Detail, `"fc-nixos-dev-container", "devhost"`)
	assert.Len(t, placeholderName, names.MaxContainerName)
}

// TestLimitsAndExpiry: the provision-* limit keys of a host, else of its
// provisioner, are read and checked with positions.
func TestLimitsAndExpiry(t *testing.T) {
	env, diags := build(t, provDefault+"provision-memory = 1G\nprovision-expire-after = 2w\n"+
		"[host:web]\ncomponents = a\nprovision-memory = 2G\nprovision-cpu-weight = 50\nprovision-cpu-quota = 200%\nprovision-tasks-max = 4096\nprovision-expire-after = 3d\n"+
		"[host:db]\ncomponents = a\n", "")
	require.Empty(t, diagStrings(diags))
	assert.Equal(t, limits.Limits{MemoryMax: "2G", CPUWeight: 50, CPUQuota: "200%", TasksMax: 4096}, env.Hosts[0].Limits)
	assert.Equal(t, 72*time.Hour, env.Hosts[0].ExpireAfter)
	assert.Equal(t, limits.Limits{MemoryMax: "1G"}, env.Hosts[1].Limits, "the provisioner's value")
	assert.Equal(t, 14*24*time.Hour, env.Hosts[1].ExpireAfter)

	_, diags = build(t, provDefault+"[host:web]\ncomponents = a\nprovision-memory = 2GB\nprovision-cpu-weight = 0\nprovision-cpu-quota = 2\nprovision-tasks-max = +5\nprovision-expire-after = soon\n", "")
	assert.Equal(t, []string{
		`environment.cfg:7:20 error: provision-memory of host "web": write a size like "512M" or "2G" (K, M, G, T: powers of 1024) or a percentage like "50%"`,
		`environment.cfg:9:23 error: provision-cpu-quota of host "web": write a percentage of one CPU, e.g. "50%" or "200%" for two CPUs`,
		`environment.cfg:8:24 error: provision-cpu-weight of host "web": the CPU weight is 1 to 10000 (systemd's default is 100)`,
		`environment.cfg:10:23 error: provision-tasks-max of host "web": write a whole number without sign or spaces`,
		`environment.cfg:11:26 error: provision-expire-after of host "web": "soon": write a whole number and a unit m, h, d or w, e.g. "3d" or "12h" (at most 366d)`,
	}, diagStrings(diags))
}
