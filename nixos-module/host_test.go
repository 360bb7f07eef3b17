package nixosmodule_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/generator"
	"github.com/flyingcircusio/devhost/internal/hostconfig"
	"github.com/flyingcircusio/devhost/internal/registry"
	"github.com/flyingcircusio/devhost/templates"
)

// needNixOS returns nix-instantiate and a real NixOS tree: NIXOS_NIXPKGS,
// else ../shared/nixpkgs-20.09 beside the checkout (where CI and the
// development machines keep it; README.devhost.md there says what it is).
func needNixOS(t testing.TB) (nix, nixpkgs string) {
	t.Helper()
	nix, err := exec.LookPath("nix-instantiate")
	if err != nil {
		t.Skip("nix-instantiate not found: install Nix (Debian: nix-bin) to evaluate a NixOS host")
	}
	nixpkgs = os.Getenv("NIXOS_NIXPKGS")
	if nixpkgs == "" {
		nixpkgs = filepath.Join("..", "..", "shared", "nixpkgs-20.09")
	}
	if _, err := os.Stat(filepath.Join(nixpkgs, "nixos", "lib", "eval-config.nix")); err != nil {
		t.Skipf("no NixOS tree at %s (set NIXOS_NIXPKGS to a nixpkgs checkout of NixOS 20.09): the whole-host evaluation needs one", nixpkgs)
	}
	abs, err := filepath.Abs(nixpkgs)
	require.NoError(t, err)
	return nix, abs
}

// hostResult mirrors what testdata/nixos-host.nix returns.
type hostResult struct {
	DrvPath          string   `json:"drvPath"`
	FailedAssertions []string `json:"failedAssertions"`
	// NixOS' declarative containers: none, devhost's run as instances
	// (hostResult.instances).
	Containers         []string            `json:"containers"`
	Etc                map[string]string   `json:"etc"`
	SystemdPackages    []systemdPackage    `json:"systemdPackages"`
	MachinesWants      []string            `json:"machinesWants"`
	ContainerUnits     map[string]unitDeps `json:"containerUnits"`
	ContainerUnitFiles []string            `json:"containerUnitFiles"`
	NginxUnit          unitDeps            `json:"nginxUnit"`
	VirtualHosts       map[string]struct {
		ServerAliases []string `json:"serverAliases"`
		EnableACME    bool     `json:"enableACME"`
		UseACMEHost   *string  `json:"useACMEHost"`
		ForceSSL      bool     `json:"forceSSL"`
		ProxyPass     string   `json:"proxyPass"`
	} `json:"virtualHosts"`
	Certs map[string]struct {
		Domain       string   `json:"domain"`
		ExtraDomains []string `json:"extraDomains"`
		Email        string   `json:"email"`
		DNSProvider  *string  `json:"dnsProvider"`
		Group        string   `json:"group"`
	} `json:"certs"`
	ACMEUnits      []string            `json:"acmeUnits"`
	Hosts          map[string][]string `json:"hosts"`
	IPv6Forwarding *int                `json:"ipv6Forwarding"`
	NAT            struct {
		Enable             bool     `json:"enable"`
		InternalInterfaces []string `json:"internalInterfaces"`
		EnableIPv6         bool     `json:"enableIPv6"`
		InternalIPv6s      []string `json:"internalIPv6s"`
	} `json:"nat"`
	FirewallCommands string `json:"firewallCommands"`
	CleanupTimer     struct {
		WantedBy    []string       `json:"wantedBy"`
		TimerConfig map[string]any `json:"timerConfig"`
	} `json:"cleanupTimer"`
	CleanupService string `json:"cleanupService"`
	ContainersDir  string `json:"containersDir"`
	ContainerRoot  string `json:"containerRoot"`
}

// instances are devhost's containers as the host's systemd runs them, in
// /etc/containers (the harness' state version is 20.09).
func (r *hostResult) instances(t testing.TB) map[string]instance {
	return instances(t, r.Etc, "containers", r.SystemdPackages)
}

type unitDeps struct {
	WantedBy []string `json:"wantedBy"`
	After    []string `json:"after"`
	Wants    []string `json:"wants"`
}

// renderSet writes the generated set of cs for cfg into a new directory.
func renderSet(t testing.TB, cfg *hostconfig.Config, cs []*registry.Container) string {
	t.Helper()
	tmpl, err := templates.Load("")
	require.NoError(t, err)
	set, err := generator.Generate(cfg, cs, tmpl)
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "generated")
	require.NoError(t, generator.Write(dir, set))
	return dir
}

// evalHost evaluates testdata/nixos-host.nix with an empty NIX_PATH and
// returns its output and its stderr, which ends with Nix's evaluation
// statistics (NIX_SHOW_STATS).
func evalHost(t testing.TB, nix, nixpkgs, gen string, extra ...string) ([]byte, []byte) {
	t.Helper()
	harness, err := filepath.Abs(filepath.Join("testdata", "nixos-host.nix"))
	require.NoError(t, err)
	args := append([]string{"--eval", "--strict", "--json", harness,
		"--arg", "nixpkgsPath", nixpkgs, "--argstr", "generatedDir", gen}, extra...)
	cmd := exec.Command(nix, args...)
	cmd.Env = append(os.Environ(), "NIX_PATH=", "NIX_SHOW_STATS=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "nix-instantiate: %s", stderr.String())
	return stdout.Bytes(), stderr.Bytes()
}

// TestWholeNixOSHost evaluates a whole NixOS 20.09 host importing the
// devhost module and the set the generator renders from the bundled example
// registry: the real nixos-containers, nginx, ACME, networking and systemd
// modules must accept what the set declares, and the system's derivation
// must instantiate with no failed assertion.
func TestWholeNixOSHost(t *testing.T) {
	nix, nixpkgs := needNixOS(t)
	cfg, err := hostconfig.Load(filepath.Join("..", "examples", "devhost.hcl"))
	require.NoError(t, err)
	cs, err := registry.Open(cfg.StateDir).LoadAll()
	require.NoError(t, err)
	require.NotEmpty(t, cs)
	out, _ := evalHost(t, nix, nixpkgs, renderSet(t, cfg, cs), "--argstr", "publicAddress", cfg.PublicAddress)
	var r hostResult
	require.NoError(t, json.Unmarshal(out, &r))

	assert.Empty(t, r.FailedAssertions)
	assert.True(t, strings.HasPrefix(r.DrvPath, "/nix/store/") && strings.HasSuffix(r.DrvPath, ".drv"), r.DrvPath)
	// NixOS 20.09 keeps containers in /var/lib/containers, and so does
	// devhost on a host of that state version.
	assert.Equal(t, "/var/lib/containers/%i", r.ContainerRoot)
	assert.Equal(t, "/var/lib/containers", r.ContainersDir)

	// The containers run as instances of NixOS' template: no unit of
	// their own, only the template's.
	assert.Empty(t, r.Containers)
	assert.Equal(t, []string{"container@"}, slices.Collect(maps.Keys(r.ContainerUnits)))
	assert.Equal(t, []string{"container@.service"}, r.ContainerUnitFiles)
	inst := r.instances(t)
	wantHosts := map[string][]string{}
	var autoStart []string
	for _, c := range cs {
		got, ok := inst[c.Name]
		require.True(t, ok, c.Name)
		assert.Equal(t, generator.ProfilePath(cfg, c.Name), got.Conf["SYSTEM_PATH"], c.Name)
		assert.Equal(t, "1", got.Conf["PRIVATE_NETWORK"], c.Name)
		assert.Equal(t, c.Address.String(), got.Conf["LOCAL_ADDRESS"], c.Name)
		assert.Equal(t, cfg.Addresses.HostAddress.String(), got.Conf["HOST_ADDRESS"], c.Name)
		assert.Equal(t, "2min", got.DropIn["Service.TimeoutStartSec"], c.Name)
		if c.State == registry.Running {
			autoStart = append(autoStart, "container@"+c.Name+".service")
			assert.Equal(t, "1", got.Conf["AUTO_START"], c.Name)
		} else {
			assert.NotContains(t, got.Conf, "AUTO_START", c.Name)
		}
		wantHosts[c.Address.String()] = []string{c.Name}

		fqdn := c.Name + "." + cfg.PublicAddress
		vh, ok := r.VirtualHosts[fqdn]
		require.True(t, ok, fqdn)
		var aliases []string
		for _, a := range c.Aliases {
			aliases = append(aliases, a+"."+fqdn)
		}
		assert.Equal(t, aliases, nilIfEmpty(vh.ServerAliases), fqdn)
		assert.True(t, vh.EnableACME && vh.ForceSSL, fqdn)
		assert.Equal(t, "https://"+c.Name, vh.ProxyPass, fqdn)
		cert, ok := r.Certs[fqdn]
		require.True(t, ok, "an ACME certificate for %s", fqdn)
		assert.Equal(t, fqdn, cert.Domain)
		assert.ElementsMatch(t, aliases, cert.ExtraDomains, fqdn)
		assert.Equal(t, "admin@example.com", cert.Email)
	}
	assert.Len(t, inst, len(cs))
	assert.ElementsMatch(t, autoStart, r.MachinesWants, "machines.target starts the running containers at boot")
	for addr, names := range wantHosts {
		assert.Equal(t, names, r.Hosts[addr], addr)
	}
	for _, u := range autoStart {
		assert.Contains(t, r.NginxUnit.After, u, "nginx starts after the running containers")
		assert.Contains(t, r.NginxUnit.Wants, u)
	}
	assert.Contains(t, r.VirtualHosts, cfg.PublicAddress, "the status page")
	assert.Equal(t, []string{"timers.target"}, r.CleanupTimer.WantedBy)
	assert.Equal(t, "*-*-* "+cfg.Cleanup.At+":00", r.CleanupTimer.TimerConfig["OnCalendar"])
	assert.True(t, strings.HasSuffix(r.CleanupService, "/bin/devhost cleanup"), r.CleanupService)

	// No network6: no IPv6 anywhere.
	assert.Nil(t, r.IPv6Forwarding)
	assert.False(t, r.NAT.EnableIPv6)
	for n, c := range inst {
		assert.Empty(t, c.Conf["LOCAL_ADDRESS6"]+c.Conf["HOST_ADDRESS6"], n)
	}
}

// ipv6Config is the bundled example's host configuration with IPv6
// containers in fd00:dead:beef::/64.
func ipv6Config(t testing.TB) *hostconfig.Config {
	t.Helper()
	cfg, err := hostconfig.Load(filepath.Join("..", "examples", "devhost.hcl"))
	require.NoError(t, err)
	cfg.Addresses.Network6 = netip.MustParsePrefix("fd00:dead:beef::/64")
	cfg.Addresses.HostAddress6 = netip.MustParseAddr("fd00:dead:beef::1")
	require.NoError(t, cfg.Validate())
	return cfg
}

// TestWholeNixOSHostIPv6 evaluates the NixOS 20.09 host with IPv6
// containers in both outbound modes: the real nixos-containers module
// takes each container's hostAddress6/localAddress6, the host resolves
// each name to both addresses, forwards IPv6, and with NAT66 masquerades
// the /64 (20.09's NAT is IPv4-only: compat-20.09.nix maps NixOS 23.05's
// internalIPv6s onto its extraCommands, and the test checks that the rule
// reaches the firewall script).
func TestWholeNixOSHostIPv6(t *testing.T) {
	nix, nixpkgs := needNixOS(t)
	cfg := ipv6Config(t)
	cs, err := registry.Open(cfg.StateDir).LoadAll()
	require.NoError(t, err)
	require.Greater(t, len(cs), 1)
	a6 := cfg.Addresses.IPv6().First()
	for _, c := range cs[1:] { // cs[0] is from before network6
		c.Address6 = a6
		a6 = cfg.Addresses.IPv6().Next(a6)
	}
	gen := renderSet(t, cfg, cs)
	const masquerade = "ip6tables -w -t nat -A nixos-nat-post -s fd00:dead:beef::/64 -j MASQUERADE"

	for _, outbound := range []string{"nat66", "routed", "none"} {
		t.Run(outbound, func(t *testing.T) {
			out, _ := evalHost(t, nix, nixpkgs, gen, "--argstr", "publicAddress", cfg.PublicAddress,
				"--argstr", "network6", cfg.Addresses.Network6.String(), "--argstr", "outbound", outbound)
			var r hostResult
			require.NoError(t, json.Unmarshal(out, &r))
			assert.Empty(t, r.FailedAssertions)
			assert.True(t, strings.HasSuffix(r.DrvPath, ".drv"), r.DrvPath)

			inst := r.instances(t)
			for _, c := range cs {
				got := inst[c.Name].Conf
				assert.Equal(t, c.Address.String(), got["LOCAL_ADDRESS"], c.Name)
				assert.Equal(t, []string{c.Name}, r.Hosts[c.Address.String()], c.Name)
				if !c.Address6.IsValid() {
					assert.Empty(t, got["LOCAL_ADDRESS6"]+got["HOST_ADDRESS6"], "%s has no IPv6 address yet", c.Name)
					continue
				}
				assert.Equal(t, c.Address6.String(), got["LOCAL_ADDRESS6"], c.Name)
				assert.Equal(t, "fd00:dead:beef::1", got["HOST_ADDRESS6"], c.Name)
				assert.Equal(t, []string{c.Name}, r.Hosts[c.Address6.String()], c.Name)
			}
			assert.True(t, r.NAT.Enable, "IPv4 NAT as before")
			assert.Equal(t, []string{"ve-+"}, r.NAT.InternalInterfaces)
			switch outbound {
			case "nat66":
				require.NotNil(t, r.IPv6Forwarding)
				assert.Equal(t, 1, *r.IPv6Forwarding)
				assert.True(t, r.NAT.EnableIPv6)
				assert.Equal(t, []string{"fd00:dead:beef::/64"}, r.NAT.InternalIPv6s)
				assert.Contains(t, r.FirewallCommands, masquerade)
			case "routed":
				require.NotNil(t, r.IPv6Forwarding)
				assert.Equal(t, 1, *r.IPv6Forwarding)
				assert.False(t, r.NAT.EnableIPv6)
				assert.NotContains(t, r.FirewallCommands, "ip6tables -w -t nat -A nixos-nat-post -s")
			case "none":
				assert.Nil(t, r.IPv6Forwarding)
				assert.False(t, r.NAT.EnableIPv6)
			}
		})
	}
}

// TestWholeNixOSHostDNS01 evaluates a real NixOS 20.09 host in dns-01 mode
// with 300 containers: NixOS' ACME module gets the main wildcard and the
// shards and nothing else (no certificate per container), every virtual
// host names one of them (useACMEHost) whose names cover it, and the
// system's derivation instantiates.
func TestWholeNixOSHostDNS01(t *testing.T) {
	nix, nixpkgs := needNixOS(t)
	cfg, err := hostconfig.Load(filepath.Join("..", "examples", "devhost.hcl"))
	require.NoError(t, err)
	cfg.ACME.Challenge, cfg.ACME.DNSProvider, cfg.ACME.Shards = hostconfig.DNS01, "rfc2136", 3
	cs := manyContainers(300)
	out, _ := evalHost(t, nix, nixpkgs, renderSet(t, cfg, cs), "--argstr", "publicAddress", cfg.PublicAddress,
		"--argstr", "challenge", "dns-01")
	var r hostResult
	require.NoError(t, json.Unmarshal(out, &r))
	assert.Empty(t, r.FailedAssertions)
	assert.True(t, strings.HasSuffix(r.DrvPath, ".drv"), r.DrvPath)

	pub := cfg.PublicAddress
	require.Len(t, r.Certs, 1+3, "one wildcard and three shards for 150 containers with aliases")
	for n, c := range r.Certs {
		require.NotNil(t, c.DNSProvider, n)
		assert.Equal(t, "rfc2136", *c.DNSProvider, n)
		assert.Equal(t, "nginx", c.Group, n)
		assert.Equal(t, "admin@example.com", c.Email, n)
		assert.LessOrEqual(t, 1+len(c.ExtraDomains), generator.MaxCertNames, n)
		assert.Contains(t, r.ACMEUnits, "acme-"+n, n)
	}
	assert.Equal(t, pub, r.Certs[pub].Domain)
	assert.Equal(t, []string{"*." + pub}, r.Certs[pub].ExtraDomains)
	wildcards := 0
	for _, c := range cs {
		fqdn := c.Name + "." + pub
		vh, ok := r.VirtualHosts[fqdn]
		require.True(t, ok, fqdn)
		assert.False(t, vh.EnableACME, fqdn)
		require.NotNil(t, vh.UseACMEHost, fqdn)
		cert := r.Certs[*vh.UseACMEHost]
		if len(c.Aliases) == 0 {
			assert.Equal(t, pub, *vh.UseACMEHost, fqdn)
			continue
		}
		wildcards++
		assert.Equal(t, "*."+pub, cert.Domain, fqdn)
		assert.Contains(t, cert.ExtraDomains, "*."+fqdn, "%s's aliases are covered by its shard", fqdn)
	}
	assert.Equal(t, pub, *r.VirtualHosts[pub].UseACMEHost, "the status page")
	total := 0
	for n, c := range r.Certs {
		if n != pub {
			total += len(c.ExtraDomains)
		}
	}
	assert.Equal(t, wildcards, total, "every shard name belongs to a container with aliases")
}

func nilIfEmpty(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return l
}

// manyContainers is n registry entries, every third stopped, every other
// one with two aliases.
func manyContainers(n int) []*registry.Container {
	cs := make([]*registry.Container, n)
	addr := netip.MustParseAddr("10.233.0.2")
	for i := range cs {
		c := &registry.Container{Name: fmt.Sprintf("c%d", i), Owner: "alice", Channel: "https://hydra.example.org/c.tar.xz",
			StateVersion: "20.09", Address: addr, State: registry.Running, Created: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
		if i%2 == 1 {
			c.Aliases = []string{"www", "api"}
		}
		if i%3 == 2 {
			c.State = registry.Stopped
		}
		cs[i] = c
		addr = addr.Next()
	}
	return cs
}

// BenchmarkWholeNixOSHost measures instantiating the system's derivation
// of a NixOS 20.09 host with n devhost containers: wall time per
// evaluation, and Nix's own figures (NIX_SHOW_STATS) as metrics.
func BenchmarkWholeNixOSHost(b *testing.B) {
	nix, nixpkgs := needNixOS(b)
	cfg, err := hostconfig.Load(filepath.Join("..", "examples", "devhost.hcl"))
	require.NoError(b, err)
	dns := *cfg
	dns.ACME.Challenge, dns.ACME.DNSProvider = hostconfig.DNS01, "rfc2136"
	for _, mode := range []struct {
		challenge string
		cfg       *hostconfig.Config
	}{{"http-01", cfg}, {"dns-01", &dns}} {
		for _, n := range []int{10, 100, 1000} {
			b.Run(fmt.Sprintf("%s/%d", mode.challenge, n), func(b *testing.B) {
				benchHost(b, nix, nixpkgs, mode.cfg, mode.challenge, n)
			})
		}
	}
}

// benchHost is one BenchmarkWholeNixOSHost case: n containers, the
// challenge, a capacity of n and so the module's default shards (one per
// 100 of capacity). It also reports the number of certificates NixOS' ACME
// module gets.
func benchHost(b *testing.B, nix, nixpkgs string, cfg *hostconfig.Config, challenge string, n int) {
	c := *cfg
	c.ACME.Shards = max(1, (n+99)/100)
	gen := renderSet(b, &c, manyContainers(n))
	var res struct {
		DrvPath string `json:"drvPath"`
		Certs   int    `json:"certs"`
	}
	var stats struct {
		CPUTime float64 `json:"cpuTime"`
		// Deterministic, unlike the times on a shared machine.
		FunctionCalls float64 `json:"nrFunctionCalls"`
		GC            struct {
			HeapSize   float64 `json:"heapSize"`
			TotalBytes float64 `json:"totalBytes"`
		} `json:"gc"`
	}
	for b.Loop() {
		out, errOut := evalHost(b, nix, nixpkgs, gen, "--arg", "drvOnly", "true", "--argstr", "challenge", challenge,
			"--arg", "capacity", fmt.Sprint(n))
		require.NoError(b, json.Unmarshal(out, &res))
		require.True(b, strings.HasSuffix(res.DrvPath, ".drv"), res.DrvPath)
		if i := bytes.IndexByte(errOut, '{'); i >= 0 {
			require.NoError(b, json.Unmarshal(errOut[i:], &stats))
		}
	}
	b.ReportMetric(stats.CPUTime, "nix-cpu-s")
	b.ReportMetric(stats.FunctionCalls/1e6, "nix-Mcalls")
	b.ReportMetric(stats.GC.HeapSize/(1<<20), "nix-heap-MiB")
	b.ReportMetric(stats.GC.TotalBytes/(1<<20), "nix-alloc-MiB")
	b.ReportMetric(float64(res.Certs), "certs")
}

// TestProtectedVhostInNixOSNginx evaluates a NixOS 20.09 host with one
// protected container and one public one, and reads nginx.conf as the
// real nginx module writes it: the protected container's HTTPS server
// asks for basic auth with the password file in the state directory
// (never a copy in the world-readable store), its ACME challenge location
// stays open, and nothing else asks for a password.
func TestProtectedVhostInNixOSNginx(t *testing.T) {
	nix, nixpkgs := needNixOS(t)
	cfg := hostconfig.Default("dev.example.com")
	cs := manyContainers(2)
	cs[0].ProtectUser = "preview"
	out, _ := evalHost(t, nix, nixpkgs, renderSet(t, cfg, cs), "--arg", "nginxConfig", "true")
	var r struct {
		FailedAssertions []string `json:"failedAssertions"`
		NginxConfig      string   `json:"nginxConfig"`
	}
	require.NoError(t, json.Unmarshal(out, &r))
	require.Empty(t, r.FailedAssertions)
	require.NotEmpty(t, r.NginxConfig)

	file := generator.BasicAuthPath(cfg, "c0")
	servers := nginxServers(r.NginxConfig)
	checked := 0
	for _, s := range servers {
		protected := strings.Contains(s, "server_name c0.dev.example.com")
		https := strings.Contains(s, "443 ssl")
		acme := nginxBlock(s, "location /.well-known/acme-challenge {")
		if protected {
			require.NotEmpty(t, acme, "c0's servers answer ACME challenges:\n%s", s)
			assert.Contains(t, acme, "auth_basic off;", "the challenge path stays open:\n%s", s)
		}
		if protected && https {
			assert.Contains(t, s, "auth_basic secured;")
			assert.Contains(t, s, "auth_basic_user_file "+file+";")
			checked++
			continue
		}
		assert.NotContains(t, s, "auth_basic secured", "only c0's HTTPS server asks for a password:\n%s", s)
	}
	assert.Equal(t, 1, checked, "c0's HTTPS server")
	assert.NotContains(t, r.NginxConfig, ".htpasswd", "no password file in the store")
}

// nginxServers returns the text of every top-level-in-http "server {…}"
// block of an nginx configuration.
func nginxServers(conf string) []string {
	var out []string
	for rest := conf; ; {
		b := nginxBlock(rest, "server {")
		if b == "" {
			return out
		}
		out = append(out, b)
		rest = rest[strings.Index(rest, b)+len(b):]
	}
}

// nginxBlock returns the first block of conf that starts with head, up
// to its matching closing brace, or "".
func nginxBlock(conf, head string) string {
	i := strings.Index(conf, head)
	if i < 0 {
		return ""
	}
	depth := 0
	for j := i; j < len(conf); j++ {
		switch conf[j] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return conf[i : j+1]
			}
		}
	}
	return ""
}

// TestInstancesMatchDeclarativeContainers is the differential test of the
// containers' configuration: the same generated set (IPv4 and IPv6
// containers, running and stopped) declared the way NixOS 20.09 declares
// containers.<name> itself, and as the devhost module runs them, instances
// of the container@ template. The conf file of each must have NixOS' keys
// and values, key by key, and the drop-in what NixOS' own unit sets: the
// start timeout, the network first; machines.target must want exactly the
// units NixOS would start at boot.
func TestInstancesMatchDeclarativeContainers(t *testing.T) {
	nix, nixpkgs := needNixOS(t)
	cfg := ipv6Config(t)
	cs := manyContainers(6)
	a6 := cfg.Addresses.IPv6().First()
	for _, c := range cs[2:] { // c0 and c1 without IPv6
		c.Address6 = a6
		a6 = cfg.Addresses.IPv6().Next(a6)
	}
	gen := renderSet(t, cfg, cs)

	harness, err := filepath.Abs(filepath.Join("testdata", "declarative-containers.nix"))
	require.NoError(t, err)
	cmd := exec.Command(nix, "--eval", "--strict", "--json", harness, "--arg", "nixpkgsPath", nixpkgs, "--argstr", "generatedDir", gen)
	cmd.Env = append(os.Environ(), "NIX_PATH=")
	out, err := cmd.Output()
	require.NoError(t, err)
	var nixos struct {
		Etc   map[string]string `json:"etc"`
		Units map[string]struct {
			WantedBy        []string `json:"wantedBy"`
			Wants           []string `json:"wants"`
			After           []string `json:"after"`
			TimeoutStartSec string   `json:"timeoutStartSec"`
		} `json:"units"`
	}
	require.NoError(t, json.Unmarshal(out, &nixos))

	out, _ = evalHost(t, nix, nixpkgs, gen, "--argstr", "publicAddress", cfg.PublicAddress,
		"--argstr", "network6", cfg.Addresses.Network6.String())
	var r hostResult
	require.NoError(t, json.Unmarshal(out, &r))
	require.Empty(t, r.FailedAssertions)
	inst := r.instances(t)

	require.Len(t, nixos.Etc, len(cs))
	require.Equal(t, slices.Sorted(maps.Keys(nixos.Etc)), slices.Sorted(maps.Keys(r.Etc)), "the same conf files in the same directory")
	var bootWants []string
	for _, c := range cs {
		want := parseEnvFile(t, nixos.Etc["containers/"+c.Name+".conf"])
		assert.Equal(t, want, inst[c.Name].Conf, c.Name)
		u := nixos.Units["container@"+c.Name]
		assert.Equal(t, u.TimeoutStartSec, inst[c.Name].DropIn["Service.TimeoutStartSec"], c.Name)
		if slices.Contains(u.WantedBy, "machines.target") {
			bootWants = append(bootWants, "container@"+c.Name+".service")
			// NixOS orders a container that starts at boot after the network.
			for _, dep := range u.After {
				assert.Contains(t, strings.Fields(inst[c.Name].DropIn["Unit.After"]), dep, c.Name)
			}
			for _, dep := range u.Wants {
				assert.Contains(t, strings.Fields(inst[c.Name].DropIn["Unit.Wants"]), dep, c.Name)
			}
		}
	}
	assert.NotEmpty(t, bootWants)
	assert.ElementsMatch(t, bootWants, r.MachinesWants)
}
