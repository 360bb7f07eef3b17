// Package nixosmodule_test evaluates the devhost NixOS module with real Nix:
// nixpkgs' lib.evalModules (from NIXPKGS_LIB), the module, and typed stubs of
// the NixOS options it sets (testdata/stubs.nix). The assertions compare the
// resulting configuration with values computed from each case's inputs.
package nixosmodule_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/generator"
	"github.com/flyingcircusio/devhost/internal/channel"
	"github.com/flyingcircusio/devhost/internal/hostconfig"
	"github.com/flyingcircusio/devhost/internal/limits"
	"github.com/flyingcircusio/devhost/internal/names"
	"github.com/flyingcircusio/devhost/internal/registry"
	"github.com/flyingcircusio/devhost/templates"
)

// env is what the tests need from the machine: nix-instantiate and the path
// of nixpkgs' lib. Missing either skips with a message saying which.
type env struct {
	nix string
	lib string
}

func needNix(t *testing.T) env {
	t.Helper()
	nix, err := exec.LookPath("nix-instantiate")
	if err != nil {
		t.Skip("nix-instantiate not found: install Nix (Debian: nix-bin) to evaluate the NixOS module")
	}
	lib := os.Getenv("NIXPKGS_LIB")
	if lib == "" {
		t.Skip("NIXPKGS_LIB not set: point it at nixpkgs' lib directory (e.g. a checkout of github:nix-community/nixpkgs.lib, NIXPKGS_LIB=<dir>/lib) to evaluate the NixOS module")
	}
	if _, err := os.Stat(filepath.Join(lib, "default.nix")); err != nil {
		t.Fatalf("NIXPKGS_LIB=%s is not nixpkgs' lib (no default.nix): %v", lib, err)
	}
	return env{nix: nix, lib: lib}
}

// result mirrors what testdata/eval.nix returns.
type result struct {
	FailedAssertions []string `json:"failedAssertions"`
	Warnings         []string `json:"warnings"`
	// NixOS' declarative containers: none, devhost's run as instances
	// (result.instances).
	Containers      map[string]map[string]any
	SystemdPackages []systemdPackage `json:"systemdPackages"`
	Boot            struct {
		EnableContainers bool `json:"enableContainers"`
		Kernel           struct {
			Sysctl map[string]any `json:"sysctl"`
		} `json:"kernel"`
	} `json:"boot"`
	Environment struct {
		Etc            map[string]struct{ Text, Mode string } `json:"etc"`
		SystemPackages []string                               `json:"systemPackages"`
	} `json:"environment"`
	Networking struct {
		Hosts map[string][]string `json:"hosts"`
		Nat   struct {
			Enable             bool     `json:"enable"`
			InternalInterfaces []string `json:"internalInterfaces"`
			EnableIPv6         bool     `json:"enableIPv6"`
			InternalIPv6s      []string `json:"internalIPv6s"`
		} `json:"nat"`
		Firewall struct {
			AllowedTCPPorts []int `json:"allowedTCPPorts"`
		} `json:"firewall"`
	} `json:"networking"`
	Services struct {
		Nginx struct {
			Enable                    bool                      `json:"enable"`
			RecommendedProxySettings  bool                      `json:"recommendedProxySettings"`
			ServerNamesHashBucketSize *int                      `json:"serverNamesHashBucketSize"`
			ServerNamesHashMaxSize    *int                      `json:"serverNamesHashMaxSize"`
			ProxyTimeout              string                    `json:"proxyTimeout"`
			ClientMaxBodySize         string                    `json:"clientMaxBodySize"`
			VirtualHosts              map[string]map[string]any `json:"virtualHosts"`
		} `json:"nginx"`
	} `json:"services"`
	Security struct {
		Acme struct {
			AcceptTerms bool `json:"acceptTerms"`
			Certs       map[string]struct {
				Domain           string   `json:"domain"`
				ExtraDomainNames []string `json:"extraDomainNames"`
				DNSProvider      string   `json:"dnsProvider"`
				CredentialsFile  string   `json:"credentialsFile"`
				Group            string   `json:"group"`
			} `json:"certs"`
			Defaults struct {
				Email  *string `json:"email"`
				Server *string `json:"server"`
			} `json:"defaults"`
		} `json:"acme"`
		Sudo struct {
			ExtraRules []struct {
				Groups   []string `json:"groups"`
				RunAs    string   `json:"runAs"`
				Commands []struct {
					Command string   `json:"command"`
					Options []string `json:"options"`
				} `json:"commands"`
			} `json:"extraRules"`
		} `json:"sudo"`
	} `json:"security"`
	Systemd struct {
		Services map[string]struct {
			After         []string       `json:"after"`
			Before        []string       `json:"before"`
			Wants         []string       `json:"wants"`
			WantedBy      []string       `json:"wantedBy"`
			Path          []string       `json:"path"`
			Script        string         `json:"script"`
			ServiceConfig map[string]any `json:"serviceConfig"`
		} `json:"services"`
		Timers map[string]struct {
			WantedBy    []string       `json:"wantedBy"`
			TimerConfig map[string]any `json:"timerConfig"`
		} `json:"timers"`
		Targets map[string]struct {
			Wants []string `json:"wants"`
		} `json:"targets"`
		Tmpfiles struct {
			Rules []string `json:"rules"`
		} `json:"tmpfiles"`
	} `json:"systemd"`
	Users struct {
		Groups map[string]any `json:"groups"`
	} `json:"users"`
}

// instances are the containers the module runs as instances of NixOS'
// container@ template, from their conf files in /etc/nixos-containers (the
// stubs' state version is lib's release, newer than 22.05) and the
// drop-ins the module builds.
func (r *result) instances(t testing.TB) map[string]instance {
	etc := map[string]string{}
	for k, f := range r.Environment.Etc {
		etc[k] = f.Text
	}
	return instances(t, etc, "nixos-containers", r.SystemdPackages)
}

// evalModule writes cfg (the config of one NixOS module, as JSON) next to a
// case module that reads it, evaluates testdata/eval.nix and decodes the
// result. A failing evaluation returns nix-instantiate's stderr as error.
func evalModule(t *testing.T, e env, cfg map[string]any, extraArgs ...string) (*result, error) {
	t.Helper()
	return evalCase(t, e, writeCase(t, t.TempDir(), cfg), extraArgs...)
}

// evalCase evaluates testdata/eval.nix with the case module at casePath.
func evalCase(t *testing.T, e env, casePath string, extraArgs ...string) (*result, error) {
	t.Helper()
	harness, err := filepath.Abs(filepath.Join("testdata", "eval.nix"))
	require.NoError(t, err)
	args := append([]string{"--eval", "--strict", "--json", harness,
		"--argstr", "libPath", e.lib,
		"--argstr", "casePath", casePath}, extraArgs...)
	cmd := exec.Command(e.nix, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("nix-instantiate: %w\n%s", err, stderr.String())
	}
	var r result
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &r), "output: %s", stdout.String())
	return &r, nil
}

// writeCase writes cfg as case.json in dir with a case.nix module that
// reads it, and returns the path of case.nix.
func writeCase(t testing.TB, dir string, cfg map[string]any) string {
	t.Helper()
	js, err := json.Marshal(cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "case.json"), js, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "case.nix"),
		[]byte("builtins.fromJSON (builtins.readFile ./case.json)\n"), 0o644))
	return filepath.Join(dir, "case.nix")
}

// role returns a config with flyingcircus.roles.devhost set to opts.
func role(opts map[string]any, other ...map[string]any) map[string]any {
	cfg := map[string]any{"flyingcircus": map[string]any{"roles": map[string]any{"devhost": opts}}}
	for _, o := range other {
		for k, v := range o {
			cfg[k] = v
		}
	}
	return cfg
}

// base is an enabled role that passes every assertion and reads its
// generated set from gen (a directory that may not exist).
func base(gen string) map[string]any {
	return map[string]any{
		"enable":        true,
		"publicAddress": "dev.example.com",
		"generatedDir":  gen,
		"acme":          map[string]any{"acceptTerms": true, "email": "admin@example.com"},
	}
}

const standInPackage = "/nix/store/00000000000000000000000000000000-devhost-stand-in"

func TestDisabledRoleSetsNothing(t *testing.T) {
	e := needNix(t)
	r, err := evalModule(t, e, role(map[string]any{"publicAddress": "dev.example.com"}))
	require.NoError(t, err)
	assert.Empty(t, r.FailedAssertions)
	assert.Empty(t, r.Containers)
	assert.False(t, r.Services.Nginx.Enable)
	assert.Empty(t, r.Environment.Etc)
	assert.Empty(t, r.Environment.SystemPackages)
	assert.Empty(t, r.Security.Sudo.ExtraRules)
	assert.Empty(t, r.Systemd.Timers)
	assert.Empty(t, r.Boot.Kernel.Sysctl)
}

// A fresh host has no generated set yet: the role still evaluates, with
// nginx, NAT, sudo rules and the cleanup timer, and no containers.
func TestEnabledWithoutGeneratedSet(t *testing.T) {
	e := needNix(t)
	tests := []struct {
		name                 string
		opts                 map[string]any
		capacity             int
		groups               []string
		cleanup, fcBuild     bool
		rebuild              []string
		onCalendar, timezone string
	}{
		{
			name:     "defaults",
			opts:     map[string]any{},
			capacity: 100, // the default
			groups:   []string{"users", "service"},
			cleanup:  true, fcBuild: true,
			rebuild:    []string{standInEnv, rootPath, "nixos-rebuild", "switch"},
			onCalendar: "*-*-* 03:00:00",
		},
		{
			name: "small host, platform rebuild, no cleanup",
			opts: map[string]any{
				"capacity": 3, "cleanupContainers": false, "groups": []string{"developers"},
				"rebuildCommand": []string{"fc-manage", "switch"},
				"compatibility":  map[string]any{"fcBuildDevContainer": false},
			},
			capacity: 3, // below the old role's limits
			groups:   []string{"developers"},
			cleanup:  false, fcBuild: false,
			rebuild: []string{standInEnv, rootPath, "fc-manage", "switch"},
		},
		{
			name:     "large host, cleanup at 23:30",
			opts:     map[string]any{"capacity": 1000, "cleanup": map[string]any{"at": "23:30"}},
			capacity: 1000,
			groups:   []string{"users", "service"},
			cleanup:  true, fcBuild: true,
			rebuild:    []string{standInEnv, rootPath, "nixos-rebuild", "switch"},
			onCalendar: "*-*-* 23:30:00",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := base(filepath.Join(t.TempDir(), "no-such-dir"))
			for k, v := range tt.opts {
				opts[k] = v
			}
			r, err := evalModule(t, e, role(opts))
			require.NoError(t, err)
			assert.Empty(t, r.FailedAssertions)
			assert.Empty(t, r.Warnings)
			assert.Empty(t, r.Containers)
			assert.Empty(t, r.Services.Nginx.VirtualHosts)
			assert.Empty(t, r.Networking.Hosts)
			assert.True(t, r.Boot.EnableContainers)

			assert.True(t, r.Services.Nginx.Enable)
			assert.True(t, r.Services.Nginx.RecommendedProxySettings)
			require.NotNil(t, r.Services.Nginx.ServerNamesHashBucketSize)
			assert.Equal(t, 128, *r.Services.Nginx.ServerNamesHashBucketSize)
			assert.Equal(t, 4096, *r.Services.Nginx.ServerNamesHashMaxSize)
			assert.Equal(t, "300s", r.Services.Nginx.ProxyTimeout)

			// 16 inotify instances and 4096 watches per container, never
			// below the old role's 512 and 16384.
			assert.Equal(t, map[string]any{
				"net.ipv4.ip_forward":           1.0,
				"fs.inotify.max_user_instances": float64(max(512, 16*tt.capacity)),
				"fs.inotify.max_user_watches":   float64(max(16384, 4096*tt.capacity)),
			}, r.Boot.Kernel.Sysctl)
			assert.True(t, r.Networking.Nat.Enable)
			assert.Equal(t, []string{"ve-+"}, r.Networking.Nat.InternalInterfaces)
			assert.Equal(t, []int{80, 443}, r.Networking.Firewall.AllowedTCPPorts)
			assert.Equal(t, []string{standInPackage}, r.Environment.SystemPackages)

			// sudo: the groups may run the container commands, the admin
			// group everything; all as root without password.
			require.Len(t, r.Security.Sudo.ExtraRules, 2)
			users, admin := r.Security.Sudo.ExtraRules[0], r.Security.Sudo.ExtraRules[1]
			assert.Equal(t, tt.groups, users.Groups)
			assert.Equal(t, "root", users.RunAs)
			var cmds []string
			for _, c := range users.Commands {
				assert.Equal(t, []string{"NOPASSWD"}, c.Options)
				cmds = append(cmds, c.Command)
			}
			var want []string
			for _, sub := range []string{"ensure", "destroy", "keep", "share", "unshare", "protect", "status"} {
				want = append(want, standInPackage+"/bin/devhost "+sub, standInPackage+"/bin/devhost "+sub+" *")
			}
			// reserve exactly as devhost up and the batou plugin run it:
			// its --ssh flag names a program, never to be run as root.
			want = append(want, standInPackage+"/bin/devhost reserve", standInPackage+"/bin/devhost reserve --json")
			if tt.fcBuild {
				// batou 2.3–2.5's two calls, nothing else of the CLI.
				want = append(want, standInPackage+"/bin/fc-build-dev-container ensure *", standInPackage+"/bin/fc-build-dev-container destroy *")
			}
			assert.Equal(t, want, cmds)
			assert.Equal(t, []string{"wheel"}, admin.Groups)
			require.Len(t, admin.Commands, 1)
			assert.Equal(t, standInPackage+"/bin/devhost", admin.Commands[0].Command)

			for _, g := range tt.groups {
				if g != "users" && g != "wheel" {
					assert.Contains(t, r.Users.Groups, g)
				}
			}

			timer, hasTimer := r.Systemd.Timers["devhost-cleanup"]
			svc, hasSvc := r.Systemd.Services["devhost-cleanup"]
			assert.Equal(t, tt.cleanup, hasTimer)
			assert.Equal(t, tt.cleanup, hasSvc)
			if tt.cleanup {
				assert.Equal(t, tt.onCalendar, timer.TimerConfig["OnCalendar"])
				assert.Equal(t, true, timer.TimerConfig["Persistent"])
				assert.Equal(t, []string{"timers.target"}, timer.WantedBy)
				assert.Equal(t, standInPackage+"/bin/devhost cleanup", svc.ServiceConfig["ExecStart"])
				assert.Equal(t, "oneshot", svc.ServiceConfig["Type"])
			}

			// The host configuration devhost reads, as its own parser sees it.
			etc, ok := r.Environment.Etc["devhost/devhost.hcl"]
			require.True(t, ok, "environment.etc.\"devhost/devhost.hcl\" missing")
			hc, err := hostconfig.Parse("/etc/devhost/devhost.hcl", []byte(etc.Text))
			require.NoError(t, err, "module output:\n%s", etc.Text)
			assert.Equal(t, "dev.example.com", hc.PublicAddress)
			assert.Equal(t, opts["generatedDir"], hc.GeneratedDir)
			assert.Equal(t, "/var/lib/devhost", hc.StateDir)
			assert.Equal(t, hostconfig.DefaultContainersDir, hc.ContainersDir, "the module's default is devhost's")
			assert.Equal(t, "10.233.0.0/16", hc.Addresses.Network.String())
			assert.Equal(t, "10.233.0.1", hc.Addresses.HostAddress.String())
			assert.Equal(t, tt.cleanup, hc.Cleanup.Enable)
			assert.Equal(t, tt.rebuild, hc.Commands.Rebuild)
			assert.Equal(t, tt.groups, hc.Access.Groups)
			assert.True(t, hc.ACME.Enable)
			assert.Equal(t, "admin@example.com", hc.ACME.Email)
			assert.True(t, hc.AliasProxy)
		})
	}
}

// Every option that reaches the host configuration arrives there, checked
// by devhost's own parser.
func TestHostConfigCarriesEveryOption(t *testing.T) {
	e := needNix(t)
	opts := map[string]any{
		"enable":                 true,
		"publicAddress":          "dev.example.org",
		"enableAliasProxy":       false,
		"stateDir":               "/srv/devhost",
		"profileDir":             "/nix/var/nix/profiles/per-container",
		"containersDir":          "/srv/nixos-containers",
		"templateDir":            "/etc/devhost/templates",
		"addressPool":            map[string]any{"network": "10.100.0.0/16", "hostAddress": "10.100.255.254"},
		"allowedChannelPrefixes": []string{"https://hydra.example.com/build/", "file:///srv/channels/"},
		"acme":                   map[string]any{"enable": true, "acceptTerms": true, "email": "ops@example.org", "staging": true},
		"cleanup":                map[string]any{"stopAfter": "1d12h", "destroyAfter": "14d", "at": "04:15"},
		"nginx": map[string]any{
			"serverNamesHashBucketSize": 256, "serverNamesHashMaxSize": 8192,
			"proxyTimeout": "600s", "clientMaxBodySize": "1g",
		},
		"compatibility":      map[string]any{"bootstrapKey": true},
		"limits":             map[string]any{"memoryMax": "2G", "cpuWeight": 50, "cpuQuota": "200%", "tasksMax": 4096},
		"groups":             []string{"developers"},
		"adminGroup":         "ops",
		"rebuildCommand":     []string{"nixos-rebuild", "switch", "--flake", "/etc/nixos#devhost", "--impure"},
		"rebuildBatchWindow": "1500ms",
	}
	r, err := evalModule(t, e, role(opts))
	require.NoError(t, err)
	assert.Empty(t, r.FailedAssertions)
	hc, err := hostconfig.Parse("/etc/devhost/devhost.hcl", []byte(r.Environment.Etc["devhost/devhost.hcl"].Text))
	require.NoError(t, err)

	assert.Equal(t, "dev.example.org", hc.PublicAddress)
	assert.False(t, hc.AliasProxy)
	assert.Equal(t, "/srv/devhost", hc.StateDir)
	assert.Equal(t, "/srv/devhost/generated", hc.GeneratedDir, "generatedDir defaults below stateDir")
	assert.Equal(t, "/etc/devhost/templates", hc.TemplateDir)
	assert.Equal(t, "/srv/nixos-containers", hc.ContainersDir)
	assert.Equal(t, "10.100.0.0/16", hc.Addresses.Network.String())
	assert.Equal(t, "10.100.255.254", hc.Addresses.HostAddress.String())
	assert.Equal(t, []string{"https://hydra.example.com/build/", "file:///srv/channels/"}, hc.Channels.AllowedPrefixes)
	assert.True(t, hc.ACME.Staging)
	assert.Equal(t, "ops@example.org", hc.ACME.Email)
	assert.Equal(t, "36h0m0s", hc.Cleanup.StopAfter.String())
	assert.Equal(t, "336h0m0s", hc.Cleanup.DestroyAfter.String())
	assert.Equal(t, "04:15", hc.Cleanup.At)
	assert.Equal(t, 256, hc.Nginx.ServerNamesHashBucketSize)
	assert.Equal(t, 8192, hc.Nginx.ServerNamesHashMaxSize)
	assert.Equal(t, "10m0s", hc.Nginx.ProxyTimeout.String())
	assert.Equal(t, "1g", hc.Nginx.ClientMaxBodySize)
	assert.True(t, hc.Compat.BootstrapKey)
	assert.Equal(t, []string{"developers"}, hc.Access.Groups)
	assert.Equal(t, "ops", hc.Access.AdminGroup)
	assert.Equal(t, limits.Limits{MemoryMax: "2G", CPUWeight: 50, CPUQuota: "200%", TasksMax: 4096}, hc.Limits)
	assert.Equal(t, "nginx", hc.Nginx.Group, "services.nginx.group")
	assert.Contains(t, r.Systemd.Tmpfiles.Rules, "d /srv/devhost/htpasswd 0750 root nginx -")
	assert.Equal(t, append([]string{standInEnv, rootPath}, opts["rebuildCommand"].([]string)...), hc.Commands.Rebuild)
	assert.Equal(t, 1500*time.Millisecond, hc.Commands.RebuildBatchWindow)

	// The same values reach NixOS' own options.
	assert.Equal(t, 256, *r.Services.Nginx.ServerNamesHashBucketSize)
	assert.Equal(t, "600s", r.Services.Nginx.ProxyTimeout)
	assert.Equal(t, "1g", r.Services.Nginx.ClientMaxBodySize)
	require.NotNil(t, r.Security.Acme.Defaults.Server)
	assert.Equal(t, "https://acme-staging-v02.api.letsencrypt.org/directory", *r.Security.Acme.Defaults.Server)
	assert.Equal(t, "*-*-* 04:15:00", r.Systemd.Timers["devhost-cleanup"].TimerConfig["OnCalendar"])
	assert.Equal(t, []string{"ops"}, r.Security.Sudo.ExtraRules[1].Groups)
	assert.Contains(t, r.Systemd.Tmpfiles.Rules, "d /srv/devhost/containers 2750 root ops -")
}

// genContainer is one container of a generated set in the generator's
// format: values usable as-is for containers.<name>.
type genContainer struct {
	Path           string `json:"path"`
	PrivateNetwork bool   `json:"privateNetwork"`
	HostAddress    string `json:"hostAddress"`
	LocalAddress   string `json:"localAddress"`
	AutoStart      bool   `json:"autoStart"`
}

// writeGeneratedSet writes <dir>/default.nix, an argument-less expression
// evaluating to set (strings only, as the generator writes it).
func writeGeneratedSet(t *testing.T, dir string, set map[string]any) { writeGeneratedSetB(t, dir, set) }

func writeGeneratedSetB(t testing.TB, dir string, set map[string]any) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	js, err := json.Marshal(set)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "set.json"), js, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "default.nix"),
		[]byte("builtins.fromJSON (builtins.readFile ./set.json)\n"), 0o644))
}

// TestDefaultChannelPrefixes: the role allows the platform's hydra and
// root's channels out of the box, and the host configuration it writes
// accepts them; an empty list means no file:// channels.
func TestDefaultChannelPrefixes(t *testing.T) {
	e := needNix(t)
	for _, tt := range []struct {
		opts map[string]any
		want []string
	}{
		{map[string]any{}, []string{"https://hydra.flyingcircus.io/build/", "file:///nix/var/nix/profiles/per-user/root/channels/"}},
		{map[string]any{"allowedChannelPrefixes": []string{"https://"}}, []string{"https://"}},
		{map[string]any{"allowedChannelPrefixes": []string{}}, []string{}},
	} {
		opts := base(t.TempDir())
		maps.Copy(opts, tt.opts)
		r, err := evalModule(t, e, role(opts))
		require.NoError(t, err)
		hc, err := hostconfig.Parse("/etc/devhost/devhost.hcl", []byte(r.Environment.Etc["devhost/devhost.hcl"].Text))
		require.NoError(t, err)
		assert.Equal(t, tt.want, hc.Channels.AllowedPrefixes)
		pol := hc.Channels.Policy()
		assert.Len(t, pol.Prefixes, len(tt.want), "every prefix parses")
		file, err := channel.Parse("file:///nix/var/nix/profiles/per-user/root/channels/nixos")
		require.NoError(t, err)
		_, err = pol.Check(file)
		if len(tt.want) == 2 { // the default lets it through to the file system checks; "https://" and [] refuse it
			assert.NotContains(t, fmt.Sprint(err), "allows no file:// channels")
		} else {
			assert.ErrorContains(t, err, "allows no file:// channels")
		}
	}
}

// NixOS keeps containers in /var/lib/containers on hosts whose
// system.stateVersion is older than 22.05 and in /var/lib/nixos-containers
// after (nixos-containers.nix). devhost reads host keys from and removes
// the directory it is told: on a migrated old-role host the default must
// be the one NixOS' container units use there.
func TestContainersDirFollowsStateVersion(t *testing.T) {
	e := needNix(t)
	tests := []struct {
		name         string
		stateVersion string // "" leaves NixOS' default (the lib's release)
		containers   string // the option; "" leaves its default
		want         string
	}{
		{name: "old role host", stateVersion: "20.09", want: "/var/lib/containers"},
		{name: "last release before the rename", stateVersion: "21.11", want: "/var/lib/containers"},
		{name: "the rename", stateVersion: "22.05", want: "/var/lib/nixos-containers"},
		{name: "newer", stateVersion: "24.11", want: "/var/lib/nixos-containers"},
		{name: "NixOS' default", want: "/var/lib/nixos-containers"},
		{name: "set explicitly on an old host", stateVersion: "20.09", containers: "/srv/containers", want: "/srv/containers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := base(filepath.Join(t.TempDir(), "no-such-dir"))
			if tt.containers != "" {
				opts["containersDir"] = tt.containers
			}
			var other []map[string]any
			if tt.stateVersion != "" {
				other = append(other, map[string]any{"system": map[string]any{"stateVersion": tt.stateVersion}})
			}
			r, err := evalModule(t, e, role(opts, other...))
			require.NoError(t, err)
			hc, err := hostconfig.Parse("/etc/devhost/devhost.hcl", []byte(r.Environment.Etc["devhost/devhost.hcl"].Text))
			require.NoError(t, err)
			assert.Equal(t, tt.want, hc.ContainersDir)
		})
	}
}

func TestEnabledWithGeneratedSet(t *testing.T) {
	e := needNix(t)
	const public = "dev.example.com"
	containers := map[string]genContainer{
		"shop1": {Path: "/nix/var/nix/profiles/per-container/shop1/system", PrivateNetwork: true,
			HostAddress: "10.233.0.1", LocalAddress: "10.233.0.2", AutoStart: true},
		"shop2": {Path: "/nix/var/nix/profiles/per-container/shop2/system", PrivateNetwork: true,
			HostAddress: "10.233.0.1", LocalAddress: "10.233.0.3", AutoStart: false},
		"blog": {Path: "/nix/var/nix/profiles/per-container/blog/system", PrivateNetwork: true,
			HostAddress: "10.233.0.1", LocalAddress: "10.233.0.4", AutoStart: true},
	}
	aliases := map[string][]string{"shop1": {"www", "api"}, "shop2": {}, "blog": {"www"}}
	vhosts := map[string]any{}
	hosts := map[string][]string{}
	for name, c := range containers {
		var serverAliases []string
		for _, a := range aliases[name] {
			serverAliases = append(serverAliases, a+"."+name+"."+public)
		}
		if serverAliases == nil {
			serverAliases = []string{}
		}
		vhosts[name+"."+public] = map[string]any{
			"serverAliases": serverAliases,
			"forceSSL":      true,
			"enableACME":    true,
			"locations": map[string]any{"/": map[string]any{
				"proxyPass": "https://" + name, "proxyWebsockets": true,
			}},
		}
		hosts[c.LocalAddress] = []string{name}
	}
	vhosts[public] = map[string]any{"forceSSL": true, "enableACME": true, "root": "/var/lib/devhost/generated/status"}
	dir := filepath.Join(t.TempDir(), "generated")
	writeGeneratedSet(t, dir, map[string]any{
		"version": 1, "publicAddress": public,
		"containers": containers, "virtualHosts": vhosts, "hosts": hosts,
	})

	r, err := evalModule(t, e, role(base(dir)))
	require.NoError(t, err)
	assert.Empty(t, r.FailedAssertions)
	assert.Empty(t, r.Warnings)

	// Instances of NixOS' container@ template, not units of their own.
	assert.Empty(t, r.Containers)
	inst := r.instances(t)
	require.Len(t, inst, len(containers))
	for name, c := range containers {
		got := inst[name]
		want := map[string]string{"SYSTEM_PATH": c.Path, "PRIVATE_NETWORK": "1", "HOST_ADDRESS": c.HostAddress,
			"LOCAL_ADDRESS": c.LocalAddress, "INTERFACES": "", "MACVLANS": "", "EXTRA_NSPAWN_FLAGS": ""}
		if c.AutoStart {
			want["AUTO_START"] = "1"
		}
		assert.Equal(t, want, got.Conf, name)
		assert.Equal(t, map[string]string{"Unit.Wants": "network.target", "Unit.After": "network.target",
			"Service.TimeoutStartSec": "2min"}, got.DropIn, name)
		assert.NotContains(t, r.Systemd.Services, "container@"+name, "a unit of its own would shadow the template")
	}
	assert.Equal(t, "-/etc/nixos-containers/%i.conf", r.Systemd.Services["container@"].ServiceConfig["EnvironmentFile"],
		"the stubs' template reads the directory the module writes")
	assert.Equal(t, hosts, r.Networking.Hosts)
	require.Len(t, r.Services.Nginx.VirtualHosts, len(vhosts))
	for host, v := range vhosts {
		want := v.(map[string]any)
		got := r.Services.Nginx.VirtualHosts[host]
		require.NotNil(t, got, host)
		assert.Equal(t, true, got["forceSSL"], host)
		if sa, ok := want["serverAliases"]; ok {
			assert.ElementsMatch(t, sa, got["serverAliases"], host)
		}
		if loc, ok := want["locations"]; ok {
			wantPass := loc.(map[string]any)["/"].(map[string]any)["proxyPass"]
			gotPass := got["locations"].(map[string]any)["/"].(map[string]any)["proxyPass"]
			assert.Equal(t, wantPass, gotPass, host)
		}
	}

	// nginx waits for exactly the containers that start at boot.
	var units []string
	for name, c := range containers {
		if c.AutoStart {
			units = append(units, "container@"+name+".service")
		}
	}
	sort.Strings(units)
	nginx := r.Systemd.Services["nginx"]
	assert.Equal(t, units, nginx.After)
	assert.Equal(t, units, nginx.Wants)
	// Started at boot: machines.target wants them, as it does NixOS'
	// autoStart containers.
	assert.Equal(t, units, r.Systemd.Targets["machines"].Wants)
}

// TestContainerLimits: the generated set's resource limits become
// settings of the containers' units, and nothing else of its services
// section reaches systemd (another unit, another setting).
func TestContainerLimits(t *testing.T) {
	e := needNix(t)
	dir := filepath.Join(t.TempDir(), "generated")
	writeGeneratedSet(t, dir, map[string]any{
		"version": 1, "publicAddress": "dev.example.com",
		"containers": map[string]genContainer{"shop": {Path: "/nix/var/nix/profiles/per-container/shop/system",
			PrivateNetwork: true, HostAddress: "10.233.0.1", LocalAddress: "10.233.0.2", AutoStart: true}},
		"virtualHosts": map[string]any{}, "hosts": map[string]any{},
		"services": map[string]any{
			"container@shop":  map[string]any{"serviceConfig": map[string]any{"MemoryMax": "2G", "CPUWeight": 50, "CPUQuota": "200%", "TasksMax": 4096, "ExecStartPre": "/bin/evil"}},
			"container@ghost": map[string]any{"serviceConfig": map[string]any{"MemoryMax": "1G"}},
			"sshd":            map[string]any{"serviceConfig": map[string]any{"ExecStart": "/bin/evil"}},
		},
	})
	r, err := evalModule(t, e, role(base(dir)))
	require.NoError(t, err)
	inst := r.instances(t)
	assert.Equal(t, map[string]string{"Unit.Wants": "network.target", "Unit.After": "network.target",
		"Service.TimeoutStartSec": "2min", "Service.MemoryMax": "2G", "Service.CPUWeight": "50",
		"Service.CPUQuota": "200%", "Service.TasksMax": "4096"}, inst["shop"].DropIn)
	assert.NotContains(t, inst, "ghost", "only declared containers")
	for u := range r.Systemd.Services {
		assert.Contains(t, []string{"container@", "nginx", "devhost-cleanup"}, u, "no unit from the set's services")
	}

	// An older set without services still evaluates.
	writeGeneratedSet(t, dir, map[string]any{"version": 1, "publicAddress": "dev.example.com",
		"containers": map[string]any{}, "virtualHosts": map[string]any{}, "hosts": map[string]any{}})
	_, err = evalModule(t, e, role(base(dir)))
	require.NoError(t, err)
}

// The generated set's own timeoutStartSec (an overridden template's) wins
// over the module's default;
// a stale set (rendered for another public address) is a warning.
func TestGeneratedSetDetails(t *testing.T) {
	e := needNix(t)
	dir := filepath.Join(t.TempDir(), "generated")
	writeGeneratedSet(t, dir, map[string]any{
		"version": 1, "publicAddress": "old.example.com",
		"containers": map[string]any{"a1": map[string]any{
			"path": "/nix/var/nix/profiles/per-container/a1/system", "privateNetwork": true,
			"hostAddress": "10.233.0.1", "localAddress": "10.233.0.9", "autoStart": false,
			"timeoutStartSec": "5min",
		}},
		"virtualHosts": map[string]any{}, "hosts": map[string]any{},
	})
	opts := base(dir)
	opts["containerStartTimeout"] = "90s"
	r, err := evalModule(t, e, role(opts))
	require.NoError(t, err)
	assert.Equal(t, "5min", r.instances(t)["a1"].DropIn["Service.TimeoutStartSec"])
	require.Len(t, r.Warnings, 1)
	assert.Contains(t, r.Warnings[0], "rendered for old.example.com, not dev.example.com")
	assert.Empty(t, r.Systemd.Services["nginx"].After)
}

// A container declaration with a value NixOS would reject fails the
// evaluation: the stubs are typed, so the set must be, too.
func TestGeneratedSetWithWrongTypeFails(t *testing.T) {
	e := needNix(t)
	dir := filepath.Join(t.TempDir(), "generated")
	writeGeneratedSet(t, dir, map[string]any{
		"version": 1,
		"containers": map[string]any{"a1": map[string]any{
			"path": "/nix/var/nix/profiles/per-container/a1/system", "autoStart": "yes",
		}},
		"virtualHosts": map[string]any{}, "hosts": map[string]any{},
	})
	_, err := evalModule(t, e, role(base(dir)))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "a Boolean was expected")
}

func TestACMEOff(t *testing.T) {
	e := needNix(t)
	opts := base(filepath.Join(t.TempDir(), "none"))
	opts["acme"] = map[string]any{"enable": false}
	r, err := evalModule(t, e, role(opts))
	require.NoError(t, err)
	assert.Empty(t, r.FailedAssertions, "no email or terms needed without ACME")
	assert.False(t, r.Security.Acme.AcceptTerms)
	assert.Nil(t, r.Security.Acme.Defaults.Email)
	assert.Nil(t, r.Security.Acme.Defaults.Server)
	hc, err := hostconfig.Parse("/etc/devhost/devhost.hcl", []byte(r.Environment.Etc["devhost/devhost.hcl"].Text))
	require.NoError(t, err)
	assert.False(t, hc.ACME.Enable)

	// The self-signed certificate the virtual hosts name is made by a
	// oneshot service that nginx waits for.
	svc, ok := r.Systemd.Services["devhost-selfsigned"]
	require.True(t, ok, "systemd.services.devhost-selfsigned missing")
	assert.Equal(t, "oneshot", svc.ServiceConfig["Type"])
	assert.Equal(t, true, svc.ServiceConfig["RemainAfterExit"])
	assert.Equal(t, []string{"multi-user.target"}, svc.WantedBy)
	assert.Equal(t, []string{"nginx.service"}, svc.Before)
	assert.Contains(t, svc.Path, "/nix/store/00000000000000000000000000000000-openssl-stand-in")
	nginx := r.Systemd.Services["nginx"]
	assert.Equal(t, []string{"devhost-selfsigned.service"}, nginx.After)
	assert.Equal(t, []string{"devhost-selfsigned.service"}, nginx.Wants)
	// The pair lands where the generator points the virtual hosts (run for
	// real in TestSelfSignedScript).
	assert.Contains(t, svc.Script, "dir="+filepath.Dir(generator.SelfSignedCertPath(hc))+"\n")
	assert.Equal(t, filepath.Dir(generator.SelfSignedCertPath(hc)), filepath.Dir(generator.SelfSignedKeyPath(hc)))
	assert.Contains(t, svc.Script, `"$dir/`+filepath.Base(generator.SelfSignedCertPath(hc))+`"`)
	assert.Contains(t, svc.Script, `"$dir/`+filepath.Base(generator.SelfSignedKeyPath(hc))+`"`)

	// With ACME the service does not exist and nginx waits for nothing.
	r, err = evalModule(t, e, role(base(filepath.Join(t.TempDir(), "none"))))
	require.NoError(t, err)
	assert.NotContains(t, r.Systemd.Services, "devhost-selfsigned")
	assert.Empty(t, r.Systemd.Services["nginx"].After)
}

// TestSelfSignedScript runs the module's devhost-selfsigned script for
// real (bash and openssl from PATH, the state directory in a sandbox): it
// writes the pair at the paths the generator gives the virtual hosts, for
// the public address and its wildcard, the key readable by nginx' group
// only; it does nothing when the pair exists, and makes a new pair when
// the public address changes.
func TestSelfSignedScript(t *testing.T) {
	e := needNix(t)
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not found: needed to run the module's service script")
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not found: needed to run the module's service script")
	}
	grp, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
	require.NoError(t, err)
	state := filepath.Join(t.TempDir(), "state dir") // a space: the script must quote
	script := func(public string) (string, *hostconfig.Config) {
		opts := base(filepath.Join(t.TempDir(), "none"))
		opts["acme"] = map[string]any{"enable": false}
		opts["stateDir"] = state
		opts["publicAddress"] = public
		r, err := evalModule(t, e, role(opts, map[string]any{"services": map[string]any{"nginx": map[string]any{"group": grp.Name}}}))
		require.NoError(t, err)
		hc, err := hostconfig.Parse("/etc/devhost/devhost.hcl", []byte(r.Environment.Etc["devhost/devhost.hcl"].Text))
		require.NoError(t, err)
		return r.Systemd.Services["devhost-selfsigned"].Script, hc
	}
	run := func(src string) {
		t.Helper()
		cmd := exec.Command(bash, "-e", "-c", src) // systemd runs NixOS scripts with -e
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	check := func(hc *hostconfig.Config, public string) []byte {
		t.Helper()
		certPEM, err := os.ReadFile(generator.SelfSignedCertPath(hc))
		require.NoError(t, err)
		block, _ := pem.Decode(certPEM)
		require.NotNil(t, block, "cert.pem holds a PEM certificate")
		cert, err := x509.ParseCertificate(block.Bytes)
		require.NoError(t, err)
		assert.Equal(t, []string{public, "*." + public}, cert.DNSNames)
		assert.Equal(t, public, cert.Subject.CommonName)
		assert.NoError(t, cert.VerifyHostname("shop."+public))

		fi, err := os.Stat(generator.SelfSignedKeyPath(hc))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm(), "key readable by nginx' group only")
		assert.Equal(t, uint32(os.Getgid()), fi.Sys().(*syscall.Stat_t).Gid)
		keyPEM, err := os.ReadFile(generator.SelfSignedKeyPath(hc))
		require.NoError(t, err)
		_, err = tls.X509KeyPair(certPEM, keyPEM)
		assert.NoError(t, err, "key and certificate belong together")
		return certPEM
	}

	src, hc := script("dev.example.com")
	run(src)
	first := check(hc, "dev.example.com")

	run(src)
	again, err := os.ReadFile(generator.SelfSignedCertPath(hc))
	require.NoError(t, err)
	assert.Equal(t, first, again, "an existing pair is kept")

	src, hc = script("dev.example.org")
	run(src)
	assert.NotEqual(t, first, check(hc, "dev.example.org"), "a new public address gets a new pair")
}

// ACME settings made outside the role satisfy its assertions.
func TestACMEConfiguredElsewhere(t *testing.T) {
	e := needNix(t)
	opts := base(filepath.Join(t.TempDir(), "none"))
	opts["acme"] = map[string]any{}
	r, err := evalModule(t, e, role(opts, map[string]any{"security": map[string]any{"acme": map[string]any{
		"acceptTerms": true, "defaults": map[string]any{"email": "hostmaster@example.com"},
	}}}))
	require.NoError(t, err)
	assert.Empty(t, r.FailedAssertions)
	assert.Equal(t, "hostmaster@example.com", *r.Security.Acme.Defaults.Email)
}

func TestAssertions(t *testing.T) {
	e := needNix(t)
	const p = "flyingcircus.roles.devhost"
	tests := []struct {
		name string
		opts map[string]any // merged into base
		want []string       // substrings, one failed assertion each
	}{
		{"missing publicAddress", map[string]any{"publicAddress": nil},
			[]string{p + ".publicAddress must be set"}},
		{"ACME without terms or email", map[string]any{"acme": map[string]any{}},
			[]string{p + ".acme.acceptTerms = true", p + ".acme.email"}},
		{"host address outside the pool", map[string]any{"addressPool": map[string]any{
			"network": "10.233.0.0/16", "hostAddress": "10.234.0.1"}},
			[]string{p + ".addressPool.hostAddress = \"10.234.0.1\" must be a valid address inside"}},
		{"host address octet out of range", map[string]any{"addressPool": map[string]any{
			"network": "10.233.0.0/16", "hostAddress": "10.233.0.300"}},
			[]string{p + ".addressPool.hostAddress = \"10.233.0.300\" must be a valid address inside"}},
		{"network octet out of range", map[string]any{"addressPool": map[string]any{"network": "10.300.0.0/16"}},
			[]string{p + ".addressPool.network = \"10.300.0.0/16\" is not an IPv4 network"}},
		{"stop after destroy", map[string]any{"cleanup": map[string]any{"stopAfter": "30d", "destroyAfter": "720h"}},
			[]string{p + ".cleanup.stopAfter (30d) must be shorter than " + p + ".cleanup.destroyAfter (720h)"}},
		{"hash bucket size not a power of two", map[string]any{"nginx": map[string]any{"serverNamesHashBucketSize": 100}},
			[]string{p + ".nginx.serverNamesHashBucketSize = 100 must be a power of two"}},
		{"dns-01 without provider or credentials", map[string]any{"acme": map[string]any{"acceptTerms": true, "email": "admin@example.com", "challenge": "dns-01"}},
			[]string{p + ".acme.challenge = \"dns-01\" needs " + p + ".acme.dnsProvider"}},
		{"IPv6 host address without network6", map[string]any{"addressPool": map[string]any{"hostAddress6": "fd00::1"}},
			[]string{p + ".addressPool.hostAddress6 is set but " + p + ".addressPool.network6 is not"}},
		{"pure evaluation cannot read the generated set", map[string]any{"internal": map[string]any{"pureEval": true}},
			[]string{"Rebuild with --impure"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := base(filepath.Join(t.TempDir(), "none"))
			for k, v := range tt.opts {
				if v == nil {
					delete(opts, k)
				} else {
					opts[k] = v
				}
			}
			r, err := evalModule(t, e, role(opts))
			require.NoError(t, err)
			require.Len(t, r.FailedAssertions, len(tt.want), "failed: %q", r.FailedAssertions)
			for i, w := range tt.want {
				assert.Contains(t, r.FailedAssertions[i], w)
			}
		})
	}
}

// A pure evaluation that is given the generated set as a value needs no
// --impure (that is how flake checks evaluate the module).
func TestPureEvaluationWithGeneratedSetValue(t *testing.T) {
	e := needNix(t)
	opts := base("/var/lib/devhost/generated")
	opts["internal"] = map[string]any{"pureEval": true}
	opts["generatedSet"] = map[string]any{"version": 1, "containers": map[string]any{}, "virtualHosts": map[string]any{}, "hosts": map[string]any{"10.233.0.2": []string{"x1"}}}
	r, err := evalModule(t, e, role(opts))
	require.NoError(t, err)
	assert.Empty(t, r.FailedAssertions)
	assert.Equal(t, map[string][]string{"10.233.0.2": {"x1"}}, r.Networking.Hosts)
}

// Values the option types reject fail the evaluation with the option's name.
func TestOptionTypes(t *testing.T) {
	e := needNix(t)
	const p = "flyingcircus.roles.devhost"
	tests := []struct {
		name, option string
		opts         map[string]any
	}{
		{"public address with a space", p + ".publicAddress", map[string]any{"publicAddress": "dev example.com"}},
		{"public address upper case", p + ".publicAddress", map[string]any{"publicAddress": "Dev.Example.com"}},
		{"relative state dir", p + ".stateDir", map[string]any{"stateDir": "var/lib/devhost"}},
		{"cleanup time", p + ".cleanup.at", map[string]any{"cleanup": map[string]any{"at": "3am"}}},
		{"duration without unit", p + ".cleanup.stopAfter", map[string]any{"cleanup": map[string]any{"stopAfter": "7"}}},
		{"empty rebuild command", p + ".rebuildCommand", map[string]any{"rebuildCommand": []string{}}},
		{"batch window over a minute", p + ".rebuildBatchWindow", map[string]any{"rebuildBatchWindow": "61s"}},
		{"batch window in minutes", p + ".rebuildBatchWindow", map[string]any{"rebuildBatchWindow": "1m"}},
		{"batch window without unit", p + ".rebuildBatchWindow", map[string]any{"rebuildBatchWindow": "300"}},
		{"channel prefix scheme", p + ".allowedChannelPrefixes", map[string]any{"allowedChannelPrefixes": []string{"ftp://x/"}}},
		{"capacity zero", p + ".capacity", map[string]any{"capacity": 0}},
		{"memory limit", p + ".limits.memoryMax", map[string]any{"limits": map[string]any{"memoryMax": "2GB"}}},
		{"cpu weight", p + ".limits.cpuWeight", map[string]any{"limits": map[string]any{"cpuWeight": 0}}},
		{"cpu quota", p + ".limits.cpuQuota", map[string]any{"limits": map[string]any{"cpuQuota": "2"}}},
		{"group name", p + ".groups", map[string]any{"groups": []string{"Bad Group"}}},
		{"unknown option", p + ".enableAliasProxies", map[string]any{"enableAliasProxies": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := base(filepath.Join(t.TempDir(), "none"))
			for k, v := range tt.opts {
				opts[k] = v
			}
			_, err := evalModule(t, e, role(opts))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.option)
		})
	}
}

// The flake's form of the module (importApply with the flake's package)
// defaults the package to that package instead of pkgs.devhost.
func TestFlakeModuleDefaultsToFlakePackage(t *testing.T) {
	e := needNix(t)
	dir := t.TempDir()
	mod, err := filepath.Abs("module.nix")
	require.NoError(t, err)
	wrapper := filepath.Join(dir, "flake-module.nix")
	require.NoError(t, os.WriteFile(wrapper, []byte(fmt.Sprintf(`{ lib, ... }: {
  imports = [ (lib.modules.importApply %s {
    defaultPackage = pkgs: { type = "derivation"; name = "devhost-from-flake"; outPath = "/nix/store/11111111111111111111111111111111-devhost-from-flake"; };
  }) ];
}
`, mod)), 0o644))
	r, err := evalModule(t, e, role(base(filepath.Join(dir, "none"))), "--argstr", "modulePath", wrapper)
	require.NoError(t, err)
	assert.Equal(t, []string{"/nix/store/11111111111111111111111111111111-devhost-from-flake"}, r.Environment.SystemPackages)
	assert.True(t, strings.HasPrefix(r.Security.Sudo.ExtraRules[0].Commands[0].Command, "/nix/store/1111"))
}

// The module's rebuild command runs through env (from the stand-in
// coreutils) with root's PATH.
const (
	standInEnv = "/nix/store/00000000000000000000000000000000-coreutils-stand-in/bin/env"
	rootPath   = "PATH=/run/wrappers/bin:/run/current-system/sw/bin"
)

// devhost runs through sudo, which resets NIX_PATH: the default rebuild
// command passes the host's nix.nixPath explicitly.
func TestRebuildCommandCarriesNixPath(t *testing.T) {
	e := needNix(t)
	nixPath := []string{"nixpkgs=/nix/var/nix/profiles/per-user/root/channels/nixos", "nixos-config=/etc/nixos/configuration.nix"}
	r, err := evalModule(t, e, role(base(filepath.Join(t.TempDir(), "none")),
		map[string]any{"nix": map[string]any{"nixPath": nixPath}}))
	require.NoError(t, err)
	hc, err := hostconfig.Parse("/etc/devhost/devhost.hcl", []byte(r.Environment.Etc["devhost/devhost.hcl"].Text))
	require.NoError(t, err)
	assert.Equal(t, []string{
		standInEnv,
		"NIX_PATH=" + strings.Join(nixPath, ":"),
		rootPath,
		"nixos-rebuild", "switch",
	}, hc.Commands.Rebuild)
}

// rebuildBatchWindow reaches devhost.hcl as commands.rebuild_batch_window,
// "0ms" (no window) included; unset, devhost's own default applies.
func TestRebuildBatchWindowReachesHostConfig(t *testing.T) {
	e := needNix(t)
	for _, tt := range []struct {
		value string // "" leaves the option unset
		want  time.Duration
	}{
		{"", 300 * time.Millisecond},
		{"0ms", 0},
		{"60s", time.Minute},
	} {
		t.Run(tt.value, func(t *testing.T) {
			opts := base(filepath.Join(t.TempDir(), "none"))
			if tt.value != "" {
				opts["rebuildBatchWindow"] = tt.value
			}
			r, err := evalModule(t, e, role(opts))
			require.NoError(t, err)
			hc, err := hostconfig.Parse("/etc/devhost/devhost.hcl", []byte(r.Environment.Etc["devhost/devhost.hcl"].Text))
			require.NoError(t, err)
			assert.Equal(t, tt.want, hc.Commands.RebuildBatchWindow)
		})
	}
}

// The bundled example registry, rendered by devhost's own generator, is
// what the module reads: every container, virtual host and hosts entry
// arrives in the NixOS options, typed as NixOS types them.
func TestBundledExampleThroughGenerator(t *testing.T) {
	e := needNix(t)
	cfg, err := hostconfig.Load(filepath.Join("..", "examples", "devhost.hcl"))
	require.NoError(t, err)
	cs, err := registry.Open(cfg.StateDir).LoadAll()
	require.NoError(t, err)
	require.NotEmpty(t, cs)
	tmpl, err := templates.Load("")
	require.NoError(t, err)

	for _, acme := range []bool{true, false} {
		t.Run(fmt.Sprintf("acme=%v", acme), func(t *testing.T) {
			c := *cfg
			c.ACME.Enable = acme
			set, err := generator.Generate(&c, cs, tmpl)
			require.NoError(t, err)
			dir := filepath.Join(t.TempDir(), "generated")
			require.NoError(t, generator.Write(dir, set))

			opts := base(dir)
			opts["publicAddress"] = c.PublicAddress
			opts["stateDir"] = c.StateDir
			opts["acme"] = map[string]any{"enable": acme, "acceptTerms": true, "email": "admin@example.com"}
			r, err := evalModule(t, e, role(opts))
			require.NoError(t, err)
			assert.Empty(t, r.FailedAssertions)
			assert.Empty(t, r.Warnings)
			// The host configuration the module writes, as devhost reads it.
			hc, err := hostconfig.Parse("/etc/devhost/devhost.hcl", []byte(r.Environment.Etc["devhost/devhost.hcl"].Text))
			require.NoError(t, err)
			selfSigned := r.Systemd.Services["devhost-selfsigned"].Script

			var autoStart []string
			wantHosts := map[string][]string{}
			inst := r.instances(t)
			for _, ct := range cs {
				got, ok := inst[ct.Name]
				require.True(t, ok, ct.Name)
				assert.Equal(t, ct.Address.String(), got.Conf["LOCAL_ADDRESS"], ct.Name)
				assert.Equal(t, c.Addresses.HostAddress.String(), got.Conf["HOST_ADDRESS"], ct.Name)
				assert.Equal(t, "1", got.Conf["PRIVATE_NETWORK"], ct.Name)
				assert.Equal(t, generator.ProfilePath(&c, ct.Name), got.Conf["SYSTEM_PATH"], ct.Name)
				if got.Conf["AUTO_START"] == "1" {
					assert.Equal(t, registry.Running, ct.State, ct.Name)
					autoStart = append(autoStart, "container@"+ct.Name+".service")
				}
				wantHosts[ct.Address.String()] = []string{ct.Name}

				vhost := r.Services.Nginx.VirtualHosts[ct.Name+"."+c.PublicAddress]
				require.NotNil(t, vhost, ct.Name)
				assert.Equal(t, acme, vhost["enableACME"], ct.Name)
				if !acme {
					// The pair devhost-selfsigned makes, for the state
					// directory the module gives devhost.
					assert.Equal(t, generator.SelfSignedCertPath(hc), vhost["sslCertificate"], ct.Name)
					assert.Equal(t, generator.SelfSignedKeyPath(hc), vhost["sslCertificateKey"], ct.Name)
					assert.Contains(t, selfSigned, "dir="+filepath.Dir(generator.SelfSignedCertPath(hc))+"\n")
				}
				var aliases []any
				for _, a := range ct.Aliases {
					aliases = append(aliases, a+"."+ct.Name+"."+c.PublicAddress)
				}
				if len(aliases) > 0 {
					assert.Equal(t, aliases, vhost["serverAliases"], ct.Name)
				}
			}
			assert.Len(t, inst, len(cs))
			assert.Equal(t, wantHosts, r.Networking.Hosts)
			assert.Contains(t, r.Services.Nginx.VirtualHosts, c.PublicAddress, "the status page")
			assert.Len(t, r.Services.Nginx.VirtualHosts, len(cs)+1)
			sort.Strings(autoStart)
			assert.NotEmpty(t, autoStart, "the example has running containers")
			assert.Equal(t, autoStart, r.Systemd.Targets["machines"].Wants)
			if !acme {
				autoStart = append(autoStart, "devhost-selfsigned.service")
			}
			assert.Equal(t, autoStart, r.Systemd.Services["nginx"].After)
			assert.Equal(t, autoStart, r.Systemd.Services["nginx"].Wants)
		})
	}
}

// More containers than the configured capacity: the inotify limits would
// not fit them, which is a warning naming the option.
func TestCapacityWarning(t *testing.T) {
	e := needNix(t)
	containers := map[string]any{}
	for i := range 3 {
		name := fmt.Sprintf("c%d", i)
		containers[name] = map[string]any{"path": "/nix/var/nix/profiles/per-container/" + name + "/system"}
	}
	dir := filepath.Join(t.TempDir(), "generated")
	writeGeneratedSet(t, dir, map[string]any{"version": 1, "containers": containers, "virtualHosts": map[string]any{}, "hosts": map[string]any{}})
	for _, capacity := range []int{2, 3} {
		opts := base(dir)
		opts["capacity"] = capacity
		r, err := evalModule(t, e, role(opts))
		require.NoError(t, err)
		if capacity < len(containers) {
			require.Len(t, r.Warnings, 1)
			assert.Contains(t, r.Warnings[0], "3 containers are declared but flyingcircus.roles.devhost.capacity is 2")
		} else {
			assert.Empty(t, r.Warnings)
		}
	}
}

// Every option is documented for the NixOS manual: a description, a type
// narrower than "anything", a default where one makes sense, and a
// defaultText where the default is computed.
func TestOptionsAreDocumented(t *testing.T) {
	e := needNix(t)
	out, err := exec.Command(e.nix, "--eval", "--strict", "--json", filepath.Join("testdata", "options.nix"),
		"--argstr", "libPath", e.lib).Output()
	require.NoError(t, err)
	var opts []struct {
		Name, Type, Description string
		Visible                 any
		Internal                bool
		HasDefault              bool    `json:"hasDefault"`
		DefaultText             *string `json:"defaultText"`
		HasExample              bool    `json:"hasExample"`
	}
	require.NoError(t, json.Unmarshal(out, &opts))
	names := map[string]bool{}
	for _, o := range opts {
		names[o.Name] = true
		t.Run(o.Name, func(t *testing.T) {
			assert.NotEmpty(t, strings.TrimSpace(o.Description), "description")
			assert.NotContains(t, []string{"unspecified value", "anything"}, o.Type)
			if o.Name != "flyingcircus.roles.devhost.publicAddress" {
				assert.True(t, o.HasDefault, "default")
			}
		})
	}
	// The old role's options and the ones the host configuration needs.
	for _, want := range []string{"enable", "publicAddress", "cleanupContainers", "enableAliasProxy", "package",
		"stateDir", "generatedDir", "addressPool.network", "addressPool.hostAddress", "allowedChannelPrefixes",
		"acme.enable", "acme.email", "acme.staging", "cleanup.stopAfter", "cleanup.destroyAfter", "cleanup.at",
		"nginx.serverNamesHashBucketSize", "nginx.serverNamesHashMaxSize", "compatibility.bootstrapKey",
		"compatibility.fcBuildDevContainer", "groups", "adminGroup", "capacity", "rebuildCommand", "maxContainersPerUser"} {
		assert.True(t, names["flyingcircus.roles.devhost."+want], want)
	}
	for _, o := range opts {
		if o.Name == "flyingcircus.roles.devhost.generatedDir" || o.Name == "flyingcircus.roles.devhost.package" ||
			o.Name == "flyingcircus.roles.devhost.rebuildCommand" || o.Name == "flyingcircus.roles.devhost.containersDir" ||
			o.Name == "flyingcircus.roles.devhost.nginx.serverNamesHashBucketSize" {
			assert.NotNil(t, o.DefaultText, "%s has a computed default and needs defaultText", o.Name)
		}
	}
}

// devhost runs as root through sudo, and sudo keeps the caller's PATH
// (NixOS sets no secure_path): every command the host configuration names
// must be absolute and run through env with a PATH only root can change,
// or a member of the groups could put their own nix-build (or a program
// nixos-rebuild or nix-build starts) in front.
func TestCommandsDoNotUseTheCallersPath(t *testing.T) {
	e := needNix(t)
	safe, env := rootPath, standInEnv
	tests := []struct {
		name    string
		opts    map[string]any
		rebuild []string
	}{
		{"default without nix.nixPath", map[string]any{},
			[]string{env, safe, "nixos-rebuild", "switch"}},
		{"a command by name", map[string]any{"rebuildCommand": []string{"fc-manage", "switch"}},
			[]string{env, safe, "fc-manage", "switch"}},
		{"an absolute command", map[string]any{"rebuildCommand": []string{"/run/current-system/sw/bin/fc-manage", "switch"}},
			[]string{env, safe, "/run/current-system/sw/bin/fc-manage", "switch"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := base(filepath.Join(t.TempDir(), "none"))
			maps.Copy(opts, tt.opts)
			r, err := evalModule(t, e, role(opts))
			require.NoError(t, err)
			hc, err := hostconfig.Parse("/etc/devhost/devhost.hcl", []byte(r.Environment.Etc["devhost/devhost.hcl"].Text))
			require.NoError(t, err)
			assert.Equal(t, tt.rebuild, hc.Commands.Rebuild)
			assert.Equal(t, []string{env, safe, "/nix/store/00000000000000000000000000000000-nix-stand-in/bin/nix-build"}, hc.Commands.NixBuild)
			assert.Equal(t, []string{env, safe, "/nix/store/00000000000000000000000000000000-nix-stand-in/bin/nix-env"}, hc.Commands.NixEnv)
			assert.Equal(t, []string{env, safe, "/nix/store/00000000000000000000000000000000-nix-stand-in/bin/nix-instantiate"}, hc.Commands.NixInstantiate)
			assert.Equal(t, []string{env, safe, "/nix/store/00000000000000000000000000000000-systemd-stand-in/bin/systemctl"}, hc.Commands.Systemctl)
			assert.Equal(t, []string{env, safe, "/run/current-system/sw/bin/nixos-container"}, hc.Commands.NixosContainer)
		})
	}
}

// TestBucketSizeDerivedFromPublicAddress: the module's default
// server_names_hash_bucket_size is what devhost computes for the longest
// possible server name, so that every name ensure accepts starts nginx.
func TestBucketSizeDerivedFromPublicAddress(t *testing.T) {
	e := needNix(t)
	for _, public := range []string{"dev.example.com", strings.Repeat("a", 30) + ".com", strings.Repeat("a", 31) + ".com", strings.Repeat("b", 60) + "." + strings.Repeat("c", 60) + ".example.com"} {
		t.Run(fmt.Sprint(len(public)), func(t *testing.T) {
			opts := base(filepath.Join(t.TempDir(), "none"))
			opts["publicAddress"] = public
			r, err := evalModule(t, e, role(opts))
			require.NoError(t, err)
			assert.Empty(t, r.FailedAssertions, "a power of two")
			want := names.NginxBucketSize(names.LongestServerName(public))
			assert.Equal(t, want, *r.Services.Nginx.ServerNamesHashBucketSize)
			hc, err := hostconfig.Parse("/etc/devhost/devhost.hcl", []byte(r.Environment.Etc["devhost/devhost.hcl"].Text))
			require.NoError(t, err)
			assert.Equal(t, want, hc.Nginx.ServerNamesHashBucketSize)
			longest := strings.Repeat("x", names.MaxLabel) + "." + strings.Repeat("y", names.MaxContainerName) + "." + public
			assert.NoError(t, names.ServerName(longest, hc.Nginx.ServerNamesHashBucketSize))
		})
	}
}

// TestQuotaAndReservedNamesReachHostConfig: maxContainersPerUser and the
// host's own names (networking.hostName, networking.hosts other than the
// containers' entries) reach devhost.
func TestQuotaAndReservedNamesReachHostConfig(t *testing.T) {
	e := needNix(t)
	gen := filepath.Join(t.TempDir(), "generated")
	writeGeneratedSet(t, gen, map[string]any{"version": 1, "containers": map[string]any{}, "virtualHosts": map[string]any{},
		"hosts": map[string][]string{"10.233.0.2": {"shop"}}})
	opts := base(gen)
	r, err := evalModule(t, e, role(opts))
	require.NoError(t, err)
	hc, err := hostconfig.Parse("/etc/devhost/devhost.hcl", []byte(r.Environment.Etc["devhost/devhost.hcl"].Text))
	require.NoError(t, err)
	assert.Zero(t, hc.Access.MaxContainersPerUser, "no limit by default")
	assert.Equal(t, []string{"nixos"}, hc.Access.ReservedNames)

	opts["maxContainersPerUser"] = 3
	r, err = evalModule(t, e, role(opts, map[string]any{"networking": map[string]any{
		"hostName": "devhost01",
		"hosts":    map[string][]string{"10.0.0.5": {"db01.internal", "db01"}},
	}}))
	require.NoError(t, err)
	hc, err = hostconfig.Parse("/etc/devhost/devhost.hcl", []byte(r.Environment.Etc["devhost/devhost.hcl"].Text))
	require.NoError(t, err)
	assert.Equal(t, 3, hc.Access.MaxContainersPerUser)
	assert.ElementsMatch(t, []string{"devhost01", "db01.internal", "db01"}, hc.Access.ReservedNames, "the containers' own entries are not reserved")
}

// TestDNS01 renders a registry with the generator in dns-01 mode and
// evaluates the module with it: the set's certificates become
// security.acme.certs with the provider, the credentials file and nginx'
// group; every virtual host uses one of them (useACMEHost) and none issues
// its own; each certificate has at most 100 names and covers every name of
// the virtual hosts that use it; the host configuration carries the mode.
func TestDNS01(t *testing.T) {
	e := needNix(t)
	tmpl, err := templates.Load("")
	require.NoError(t, err)
	cfg, err := hostconfig.Parse("devhost.hcl", []byte(`public_address = "dev.example.com"
acme {
  challenge    = "dns-01"
  dns_provider = "rfc2136"
  shards       = 2
}
`))
	require.NoError(t, err)
	cs := manyContainers(40)
	set, err := generator.Generate(cfg, cs, tmpl)
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "generated")
	require.NoError(t, generator.Write(dir, set))

	opts := base(dir)
	opts["capacity"] = 200
	opts["acme"] = map[string]any{"acceptTerms": true, "email": "admin@example.com", "challenge": "dns-01",
		"dnsProvider": "rfc2136", "credentialsFile": "/run/keys/acme-dns.env", "shards": 2}
	r, err := evalModule(t, e, role(opts))
	require.NoError(t, err)
	assert.Empty(t, r.FailedAssertions)

	certs := r.Security.Acme.Certs
	assert.Len(t, certs, 1+2, "the main certificate and two shards")
	main := certs["dev.example.com"]
	assert.Equal(t, "dev.example.com", main.Domain)
	assert.Equal(t, []string{"*.dev.example.com"}, main.ExtraDomainNames)
	for n, c := range certs {
		assert.Equal(t, "rfc2136", c.DNSProvider, n)
		assert.Equal(t, "/run/keys/acme-dns.env", c.CredentialsFile, n)
		assert.Equal(t, "nginx", c.Group, n)
		assert.LessOrEqual(t, 1+len(c.ExtraDomainNames), generator.MaxCertNames, n)
	}
	covers := func(cert, name string) bool {
		c := certs[cert]
		for _, d := range append([]string{c.Domain}, c.ExtraDomainNames...) {
			if d == name || strings.HasPrefix(d, "*.") && strings.Count(name, ".") == strings.Count(d, ".") && strings.HasSuffix(name, d[1:]) {
				return true
			}
		}
		return false
	}
	assert.Len(t, r.Services.Nginx.VirtualHosts, len(cs)+1)
	for host, v := range r.Services.Nginx.VirtualHosts {
		assert.NotEqual(t, true, v["enableACME"], host)
		cert, _ := v["useACMEHost"].(string)
		require.Contains(t, certs, cert, host)
		assert.True(t, covers(cert, host), "%s covers %s", cert, host)
		aliases, _ := v["serverAliases"].([]any)
		for _, a := range aliases {
			assert.True(t, covers(cert, a.(string)), "%s covers %s", cert, a)
		}
	}
	hc, err := hostconfig.Parse("/etc/devhost/devhost.hcl", []byte(r.Environment.Etc["devhost/devhost.hcl"].Text))
	require.NoError(t, err)
	assert.Equal(t, hostconfig.ACME{Enable: true, Email: "admin@example.com", Challenge: hostconfig.DNS01, DNSProvider: "rfc2136", Shards: 2, CertDir: "/var/lib/acme"}, hc.ACME)
	assert.Equal(t, hostconfig.AliasNested, hc.AliasStyle)

	// The derived number of shards: one per 100 of capacity.
	delete(opts["acme"].(map[string]any), "shards")
	r, err = evalModule(t, e, role(opts))
	require.NoError(t, err)
	hc, err = hostconfig.Parse("/etc/devhost/devhost.hcl", []byte(r.Environment.Etc["devhost/devhost.hcl"].Text))
	require.NoError(t, err)
	assert.Equal(t, 2, hc.ACME.Shards)
}

// TestIPv6Options: network6 and hostAddress6 reach the host configuration
// devhost reads (which accepts them), and the outbound mode decides
// forwarding and NAT66; without network6 nothing about IPv6 is set.
func TestIPv6Options(t *testing.T) {
	e := needNix(t)
	tests := []struct {
		name        string
		pool        map[string]any
		outbound    string
		wantNet6    string
		wantHost6   string
		forward     bool
		nat66       bool
		wantNATNets []string
	}{
		{"no network6", nil, "", "", "", false, false, nil},
		{"no network6, nat66 named", nil, "nat66", "", "", false, false, nil},
		{"default outbound nat66", map[string]any{"network6": "fd00:dead:beef::/64"}, "", "fd00:dead:beef::/64", "fd00:dead:beef::1", true, true, []string{"fd00:dead:beef::/64"}},
		{"routed with host address", map[string]any{"network6": "2001:db8:1:2::/64", "hostAddress6": "2001:db8:1:2::ffff"}, "routed", "2001:db8:1:2::/64", "2001:db8:1:2::ffff", true, false, nil},
		{"none", map[string]any{"network6": "fd00::/64"}, "none", "fd00::/64", "fd00::1", false, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := base(filepath.Join(t.TempDir(), "none"))
			if tt.pool != nil {
				opts["addressPool"] = tt.pool
			}
			if tt.outbound != "" {
				opts["ipv6"] = map[string]any{"outbound": tt.outbound}
			}
			r, err := evalModule(t, e, role(opts))
			require.NoError(t, err)
			assert.Empty(t, r.FailedAssertions)
			hc, err := hostconfig.Parse("/etc/devhost/devhost.hcl", []byte(r.Environment.Etc["devhost/devhost.hcl"].Text))
			require.NoError(t, err)
			assert.Equal(t, tt.wantNet6 != "", hc.Addresses.HasIPv6())
			if tt.wantNet6 != "" {
				assert.Equal(t, tt.wantNet6, hc.Addresses.Network6.String())
				assert.Equal(t, tt.wantHost6, hc.Addresses.HostAddress6.String())
			}
			fwd, ok := r.Boot.Kernel.Sysctl["net.ipv6.conf.all.forwarding"]
			assert.Equal(t, tt.forward, ok, "IPv6 forwarding set: %v", fwd)
			if tt.forward {
				assert.EqualValues(t, 1, fwd)
			}
			assert.EqualValues(t, 1, r.Boot.Kernel.Sysctl["net.ipv4.ip_forward"], "IPv4 as before")
			assert.True(t, r.Networking.Nat.Enable)
			assert.Equal(t, tt.nat66, r.Networking.Nat.EnableIPv6)
			assert.Equal(t, tt.wantNATNets, nilIfEmpty(r.Networking.Nat.InternalIPv6s))
		})
	}

	// Option types refuse what is not an IPv6 /64.
	for _, bad := range []string{"fd00::/48", "10.0.0.0/64", "fd00::"} {
		opts := base(filepath.Join(t.TempDir(), "none"))
		opts["addressPool"] = map[string]any{"network6": bad}
		_, err := evalModule(t, e, role(opts))
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "network6", bad)
	}
}

// oneContainer is a generated set with the container a1, whose declaration
// is c (merged over a valid one).
func oneContainer(t *testing.T, c map[string]any) string {
	t.Helper()
	decl := map[string]any{"path": "/nix/var/nix/profiles/per-container/a1/system", "privateNetwork": true,
		"hostAddress": "10.233.0.1", "localAddress": "10.233.0.2", "autoStart": true}
	maps.Copy(decl, c)
	dir := filepath.Join(t.TempDir(), "generated")
	writeGeneratedSet(t, dir, map[string]any{"version": 1, "publicAddress": "dev.example.com",
		"containers": map[string]any{"a1": decl}, "virtualHosts": map[string]any{}, "hosts": map[string]any{}})
	return dir
}

// A container setting the module does not pass on to the template (an
// overridden container.nix.tmpl's bind mount, say) fails an assertion
// that names it, instead of being dropped silently.
func TestUnknownContainerSettingRefused(t *testing.T) {
	e := needNix(t)
	r, err := evalModule(t, e, role(base(oneContainer(t, map[string]any{"bindMounts": map[string]any{"/srv": map[string]any{}}}))))
	require.NoError(t, err)
	require.Len(t, r.FailedAssertions, 1)
	assert.Contains(t, r.FailedAssertions[0], "a1.bindMounts")
	assert.Contains(t, r.FailedAssertions[0], "container.nix.tmpl")
}

// A value that could end its line in the conf file (and so add a setting
// of its own, e.g. EXTRA_NSPAWN_FLAGS) or in the drop-in fails the
// evaluation with the container and the setting named.
func TestContainerValuesCannotInjectSettings(t *testing.T) {
	e := needNix(t)
	for _, tt := range []struct {
		name string
		set  map[string]any
		svc  map[string]any
		want string
	}{
		{"address", map[string]any{"localAddress": "10.233.0.2\nEXTRA_NSPAWN_FLAGS=--bind=/:/host"}, nil, "localAddress"},
		{"path", map[string]any{"path": "/x y"}, nil, "path"},
		{"quote", map[string]any{"hostAddress6": "\"fd00::1"}, nil, "hostAddress6"},
		{"timeout", map[string]any{"timeoutStartSec": "1min\nExecStartPre=/bin/evil"}, nil, "timeoutStartSec"},
		{"limit", nil, map[string]any{"MemoryMax": "1G\nExecStartPre=/bin/evil"}, "MemoryMax"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := oneContainer(t, tt.set)
			if tt.svc != nil {
				writeGeneratedSet(t, dir, map[string]any{"version": 1, "publicAddress": "dev.example.com",
					"containers":   map[string]any{"a1": map[string]any{"path": "/p", "privateNetwork": true, "autoStart": true}},
					"virtualHosts": map[string]any{}, "hosts": map[string]any{},
					"services": map[string]any{"container@a1": map[string]any{"serviceConfig": tt.svc}}})
			}
			_, err := evalModule(t, e, role(base(dir)))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "gives container a1 the "+tt.want)
		})
	}
}

// On a NixOS whose declarative containers have copyResolvConf and
// privateUsers (newer than 20.09), the conf file has the keys NixOS then
// writes and its template then reads: without COPY_RESOLV_CONF=1 the
// container would get no resolv.conf.
func TestConfKeysOfNewerNixOS(t *testing.T) {
	e := needNix(t)
	dir := t.TempDir()
	js, err := json.Marshal(role(base(oneContainer(t, nil))))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "case.json"), js, 0o644))
	casePath := filepath.Join(dir, "case.nix")
	require.NoError(t, os.WriteFile(casePath, []byte(`{ lib, ... }: {
  imports = [ (builtins.fromJSON (builtins.readFile ./case.json)) ];
  # nixos-containers.nix of NixOS 22.05 and later (declared as there).
  options.containers = lib.mkOption {
    type = lib.types.attrsOf (lib.types.submodule {
      options.copyResolvConf = lib.mkOption { type = lib.types.bool; default = true; };
      options.privateUsers = lib.mkOption { type = lib.types.str; default = "no"; };
    });
  };
}
`), 0o644))
	r, err := evalCase(t, e, casePath)
	require.NoError(t, err)
	assert.Empty(t, r.FailedAssertions)
	conf := r.instances(t)["a1"].Conf
	assert.Equal(t, "1", conf["COPY_RESOLV_CONF"])
	assert.Equal(t, "no", conf["PRIVATE_USERS"])
}

// The conf files go where NixOS' template reads them, by the host's state
// version as in NixOS; a template that reads another directory (a NixOS
// release the module does not know) fails an assertion.
func TestConfDirFollowsTemplate(t *testing.T) {
	e := needNix(t)
	gen := oneContainer(t, nil)
	r, err := evalModule(t, e, role(base(gen), map[string]any{"system": map[string]any{"stateVersion": "20.09"}}))
	require.NoError(t, err)
	assert.Empty(t, r.FailedAssertions)
	assert.Contains(t, r.Environment.Etc, "containers/a1.conf")
	assert.NotContains(t, r.Environment.Etc, "nixos-containers/a1.conf")

	// mkForce, as JSON.
	other := map[string]any{"systemd": map[string]any{"services": map[string]any{"container@": map[string]any{
		"serviceConfig": map[string]any{"EnvironmentFile": map[string]any{"_type": "override", "priority": 50, "content": "-/etc/elsewhere/%i.conf"}}}}}}
	r, err = evalModule(t, e, role(base(gen), other))
	require.NoError(t, err)
	require.Len(t, r.FailedAssertions, 1)
	assert.Contains(t, r.FailedAssertions[0], "-/etc/elsewhere/%i.conf")
}
