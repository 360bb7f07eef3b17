// Package nixchecks_test checks devhost's Nix files on machines without
// nixpkgs: every .nix file parses, the flake's outputs evaluate with
// stand-in inputs (nixpkgs' lib from NIXPKGS_LIB and a recording `pkgs`,
// standin.nix) to the expected attributes for both systems, the flake's
// module examples and the VM test's node pass the module's assertions
// against the typed option stubs, and nix/vendor-hash.txt matches
// `go mod vendor`. What needs nixpkgs itself or KVM (building the package,
// evaluating real NixOS systems, the VM test) runs in `nix flake check`.
package nixchecks_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/hostconfig"
)

var systems = []string{"x86_64-linux", "aarch64-linux"}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	if _, err := os.Stat(filepath.Join(root, "flake.nix")); err != nil {
		// The Nix package's source leaves out the packaging itself; there
		// `nix flake check` evaluates the real flake instead.
		t.Skipf("flake.nix not in %s (a Nix build's source): the flake checks run in a checkout", root)
	}
	return root
}

func nixInstantiate(t *testing.T) string {
	t.Helper()
	nix, err := exec.LookPath("nix-instantiate")
	if err != nil {
		t.Skip("nix-instantiate not found: install Nix (Debian: nix-bin) to check the Nix files")
	}
	return nix
}

func nixpkgsLib(t *testing.T) string {
	t.Helper()
	lib := os.Getenv("NIXPKGS_LIB")
	if lib == "" {
		t.Skip("NIXPKGS_LIB not set: point it at nixpkgs' lib directory (e.g. a checkout of github:nix-community/nixpkgs.lib, NIXPKGS_LIB=<dir>/lib) to evaluate the flake's outputs with stand-in inputs")
	}
	return lib
}

func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// nixFiles lists the repository's .nix files, skipping .git, build output,
// and files meant to be broken: directories named "broken" (the bundled
// example's failing environment) and other packages' testdata (their own
// tests decide what must parse there).
func nixFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			switch {
			case d.Name() == ".git" || d.Name() == "result" || d.Name() == "vendor" || d.Name() == "broken":
				t.Logf("not parsed (build output or broken on purpose): %s/", rel)
				return filepath.SkipDir
			case d.Name() == "testdata" && rel != filepath.Join("nixos-module", "testdata"):
				t.Logf("not parsed (another package's test data): %s/", rel)
				return filepath.SkipDir
			}
		}
		if !d.IsDir() && strings.HasSuffix(path, ".nix") {
			files = append(files, path)
		}
		return nil
	})
	require.NoError(t, err)
	return files
}

func TestEveryNixFileParses(t *testing.T) {
	nix := nixInstantiate(t)
	root := repoRoot(t)
	files := nixFiles(t, root)
	for _, want := range []string{"flake.nix", "nix/package.nix", "nix/checks.nix", "nix/vm-test.nix", "nixos-module/module.nix"} {
		assert.Contains(t, files, filepath.Join(root, want))
	}
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		t.Run(rel, func(t *testing.T) {
			_, err := run(t, nix, "--parse", f)
			assert.NoError(t, err)
		})
	}
}

// outputs mirrors what flake-outputs.nix returns.
type outputs struct {
	Outputs     []string            `json:"outputs"`
	NixosModule []string            `json:"nixosModules"`
	Overlays    []string            `json:"overlays"`
	Packages    map[string][]string `json:"packages"`
	DevShells   map[string][]string `json:"devShells"`
	Formatter   map[string]string   `json:"formatter"`
	Checks      map[string][]string `json:"checks"`
	Package     map[string]struct {
		Name, Builder, System, Path string
		Pname, Version, VendorHash  string
		SubPackages, Ldflags        []string
		PostInstall                 string
	} `json:"package"`
	OverlayPackage string `json:"overlayPackage"`
	GoTests        map[string]struct {
		Pname       string   `json:"pname"`
		DoCheck     bool     `json:"doCheck"`
		SubPackages []string `json:"subPackages"`
		NixpkgsLib  string   `json:"NIXPKGS_LIB"`
		CheckInputs []string `json:"checkInputs"`
	} `json:"goTests"`
	ModuleEval         map[string]map[string]string `json:"moduleEval"`
	FlakeModulePackage []string                     `json:"flakeModulePackage"`
	// VM is the VM tests' nodes per system and check.
	VM map[string]map[string]vmTest `json:"vm"`
}

// vmTest mirrors what flake-outputs.nix returns of one VM test.
type vmTest struct {
	Name              string   `json:"name"`
	Nodes             []string `json:"nodes"`
	TestScript        string   `json:"testScript"`
	FailedAssertions  []string `json:"failedAssertions"`
	PublicAddress     string   `json:"publicAddress"`
	Package           string   `json:"package"`
	ExtraDependencies []string `json:"extraDependencies"`
	HostConfig        string   `json:"hostConfig"`
	PkgsReadOnly      bool     `json:"pkgsReadOnly"`
	SwitchEnable      bool     `json:"switchEnable"`
	RebuildConfig     string   `json:"rebuildConfig"`
	Nameservers       []string `json:"nameservers"`
	CertificateFiles  []string `json:"certificateFiles"`
	ACMECerts         map[string]struct {
		Domain           string   `json:"domain"`
		ExtraDomainNames []string `json:"extraDomainNames"`
		DNSProvider      *string  `json:"dnsProvider"`
		CredentialsFile  *string  `json:"credentialsFile"`
	} `json:"acmeCerts"`
	VirtualHosts []string `json:"virtualHosts"`
}

func evalFlake(t *testing.T) *outputs {
	t.Helper()
	nix := nixInstantiate(t)
	lib := nixpkgsLib(t)
	root := repoRoot(t)
	out, err := run(t, nix, "--eval", "--strict", "--json", filepath.Join(root, "tests", "nix", "flake-outputs.nix"),
		"--argstr", "libPath", lib, "--argstr", "root", root)
	require.NoError(t, err)
	var o outputs
	require.NoError(t, json.Unmarshal([]byte(out), &o))
	return &o
}

func TestFlakeOutputsWithStandInInputs(t *testing.T) {
	o := evalFlake(t)
	root := repoRoot(t)
	assert.Equal(t, []string{"checks", "devShells", "formatter", "nixosModules", "overlays", "packages"}, o.Outputs)
	assert.Equal(t, []string{"default", "devhost"}, o.NixosModule)
	assert.Equal(t, []string{"default"}, o.Overlays)

	vendorHash, err := os.ReadFile(filepath.Join(root, "nix", "vendor-hash.txt"))
	require.NoError(t, err)
	wantChecks := []string{"devhost-vm", "devhost-vm-dns01", "devhost-vm-http01", "example-generated-set", "go-tests",
		"module-eval-generated-set", "module-eval-minimal", "module-eval-platform", "package"}
	for _, s := range systems {
		t.Run(s, func(t *testing.T) {
			assert.Equal(t, []string{"default", "devhost"}, o.Packages[s])
			assert.Equal(t, []string{"default"}, o.DevShells[s])
			assert.Equal(t, "nixfmt-tree", o.Formatter[s])
			assert.Equal(t, wantChecks, o.Checks[s])

			// The package: Go 1.26, version from the flake's source info,
			// the checked-in vendorHash, the compatibility name, man pages
			// and completions.
			p := o.Package[s]
			assert.Equal(t, s, p.System)
			assert.Equal(t, "buildGo126Module", p.Builder)
			assert.Equal(t, "devhost", p.Pname)
			assert.Equal(t, "20260510-abc1234", p.Version, "lastModifiedDate's day and shortRev")
			assert.Equal(t, strings.TrimSpace(string(vendorHash)), p.VendorHash)
			assert.Equal(t, []string{"cmd/devhost"}, p.SubPackages)
			assert.Contains(t, p.Ldflags, "-X github.com/flyingcircusio/devhost/internal/cli.version=20260510-abc1234")
			assert.Contains(t, p.PostInstall, "ln -s devhost $out/bin/fc-build-dev-container")
			assert.Contains(t, p.PostInstall, "installManPage")
			assert.Contains(t, p.PostInstall, "installShellCompletion")

			g := o.GoTests[s]
			assert.True(t, g.DoCheck)
			assert.Empty(t, g.SubPackages, "all packages' tests")
			assert.Equal(t, "/stand-in/nixpkgs/lib", g.NixpkgsLib)
			assert.ElementsMatch(t, []string{"nix", "python3"}, g.CheckInputs)

			// Each example system evaluated with the module: a failed
			// assertion would have thrown instead of giving the toplevel.
			require.Len(t, o.ModuleEval[s], 3)
			for name, script := range o.ModuleEval[s] {
				assert.Contains(t, script, "-nixos-system.drv", name)
			}
		})
	}
	assert.Equal(t, o.Package["x86_64-linux"].Path, o.OverlayPackage, "overlay and packages share one package expression")
	assert.Equal(t, []string{o.Package["aarch64-linux"].Path}, o.FlakeModulePackage,
		"the flake's module defaults to the flake's package for the host's system")
}

// The VM tests' nodes: each devhost node (with the stand-in profiles and
// what the framework gives it from the other nodes) uses only options the
// module and the stubs declare, and passes the module's assertions; each
// script is valid Python and does what issues 7 and 13 ask: ACME off, and
// certificates from pebble over http-01 and dns-01.
func TestVMTestEvaluates(t *testing.T) {
	o := evalFlake(t)
	modes := []struct {
		check, name string
		challenge   hostconfig.Challenge // "" for ACME off
		nodes       []string
		containers  []string
	}{
		{"devhost-vm", "devhost", "", []string{"client", "devhost"}, []string{"web1", "web2"}},
		{"devhost-vm-http01", "devhost-http01", hostconfig.HTTP01, []string{"acme", "client", "devhost", "dnsserver"}, []string{"web1", "web2"}},
		{"devhost-vm-dns01", "devhost-dns01", hostconfig.DNS01, []string{"acme", "client", "devhost", "dnsserver"}, []string{"web1", "web2", "web4"}},
	}
	for _, s := range systems {
		for _, m := range modes {
			t.Run(s+"/"+m.check, func(t *testing.T) {
				vm, ok := o.VM[s][m.check]
				require.True(t, ok, "no VM test %s", m.check)
				assert.Equal(t, m.name, vm.Name)
				assert.Equal(t, m.nodes, vm.Nodes)
				assert.Empty(t, vm.FailedAssertions)
				assert.Equal(t, "dev.test", vm.PublicAddress)
				assert.Equal(t, o.Package[s].Path, vm.Package)
				checkVMRebuild(t, vm, m.containers)
				checkVMScript(t, vm)
				if m.challenge == "" {
					checkVMSelfSigned(t, vm)
				} else {
					checkVMACME(t, vm, m.challenge)
				}
			})
		}
	}
}

// checkVMRebuild: devhost's own rebuilds in the VM find nixpkgs, the
// configuration the test installs, and every store path the script hands
// to the VM, and the configuration keeps the node's test addresses.
func checkVMRebuild(t *testing.T, vm vmTest, containers []string) {
	t.Helper()
	hc, err := hostconfig.Parse("/etc/devhost/devhost.hcl", []byte(vm.HostConfig))
	require.NoError(t, err)
	assert.Equal(t, "dev.test", hc.PublicAddress)
	assert.Equal(t, "fd00:dead:beef::/64", hc.Addresses.Network6.String(), "the containers have IPv6")
	assert.Contains(t, hc.Commands.Rebuild, "NIX_PATH=nixpkgs=/stand-in/nixpkgs:nixos-config=/etc/nixos/configuration.nix")
	assert.Equal(t, []string{"nixos-rebuild", "switch"}, hc.Commands.Rebuild[len(hc.Commands.Rebuild)-2:])

	script := vm.TestScript
	deps := []string{"devhost-test-channel", "provision-broken.nix", "configuration.nix"}
	for _, c := range containers {
		deps = append(deps, "provision-"+c+".nix")
	}
	for _, dep := range deps {
		found := false
		for _, d := range vm.ExtraDependencies {
			if strings.HasSuffix(d, "-"+dep) {
				found = true
				assert.Contains(t, script, d, dep)
			}
		}
		assert.True(t, found, "%s not in system.extraDependencies", dep)
	}

	// What nixpkgs' test framework needs from a node that rebuilds
	// itself (as nixpkgs' nixos-rebuild tests do): installation-device.nix
	// sets nixpkgs.overlays, which runNixOSTest's read-only pkgs reject;
	// test nodes default to system.switch.enable = false, so the
	// offline rebuild would have to build switch-to-configuration; and
	// the rebuilt system installs GRUB.
	assert.False(t, vm.PkgsReadOnly, "node.pkgsReadOnly must be false (installation-device.nix sets nixpkgs.overlays)")
	assert.True(t, vm.SwitchEnable, "system.switch.enable must be true on the node")
	found := false
	for _, d := range vm.ExtraDependencies {
		found = found || strings.HasSuffix(d, "-grub2")
	}
	assert.True(t, found, "grub2 not in system.extraDependencies")
	// The configuration the VM switches to is valid Nix and keeps the
	// node's addresses on the test network (the stubs give the node
	// what the framework gives it), or after the switch the client
	// could no longer reach the host.
	got := evalRebuildConfig(t, vm, "c.networking.interfaces")
	assert.JSONEq(t, `{"eth1": {
		"ipv4": {"addresses": [{"address": "192.168.1.2", "prefixLength": 24}]},
		"ipv6": {"addresses": [{"address": "2001:db8:1::2", "prefixLength": 64}]}}}`, got)
	// The subtest that changes a host-wide limit puts a file beside it,
	// which it then imports.
	without := evalRebuildConfig(t, vm, "builtins.length c.imports")
	with := evalRebuildConfigWith(t, vm, "devhost-test-local.nix", "{ }", "builtins.length c.imports")
	assert.Equal(t, fmt.Sprint(mustAtoi(t, without)+1), with)
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(s))
	require.NoError(t, err)
	return n
}

// evalRebuildConfig evaluates expr, an expression of `c` (the
// configuration.nix the VM switches to) and nixpkgs' `lib`.
func evalRebuildConfig(t *testing.T, vm vmTest, expr string) string {
	t.Helper()
	return evalRebuildConfigWith(t, vm, "", "", expr)
}

// evalRebuildConfigWith is evalRebuildConfig with a file named name
// holding content beside the configuration ("": none).
func evalRebuildConfigWith(t *testing.T, vm vmTest, name, content, expr string) string {
	t.Helper()
	dir := t.TempDir()
	if name != "" {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
	conf := filepath.Join(dir, "configuration.nix")
	require.NoError(t, os.WriteFile(conf, []byte(vm.RebuildConfig), 0o644))
	_, err := run(t, nixInstantiate(t), "--parse", conf)
	require.NoError(t, err)
	got, err := run(t, nixInstantiate(t), "--eval", "--strict", "--json", "--expr",
		fmt.Sprintf("let lib = import %s; c = import %s { inherit lib; }; in %s", nixpkgsLib(t), conf, expr))
	require.NoError(t, err)
	return got
}

// checkVMScript: the steps every mode runs, and valid Python.
func checkVMScript(t *testing.T, vm vmTest) {
	t.Helper()
	script := vm.TestScript
	for _, want := range []string{
		"sudo devhost ensure web1 --channel file://",
		"--alias www --alias api",
		"served(\"api.web1.dev.test\", \"hello from web1\")",
		"served(\"www.web2.dev.test\", \"hello from web2\")",
		"sudo devhost ensure web3",
		"sudo devhost destroy web2",
		"devhost cleanup --now $(date -u -d '+8 days'",
		"devhost cleanup --now $(date -u -d '+31 days'",
		"nixos-container run web1 -- ping -6 -c1 -W5 2001:db8:1::c",
		// devhost's containers are instances of NixOS' template, with
		// the module's drop-in (start timeout, limits) and started at boot.
		`assert "FragmentPath=/etc/systemd/system/container@.service" in unit`,
		`assert "/container@web1.service.d/devhost.conf" in unit`,
		`assert "TimeoutStartUSec=5min" in unit`,
		`assert "TasksMax=2048" in unit`,
		`systemctl show -p Wants --value machines.target`,
		// A host-wide limit changed while the VM runs: devhost apply
		// restarts the running containers with the new drop-in.
		"/etc/nixos/devhost-test-local.nix",
		`applied = json.loads(devhost.succeed("devhost apply --json"))`,
		`assert sorted(applied["restarted"]) == ["web1", "web2"], applied`,
		`assert "TasksMax=1024" in unit`,
	} {
		assert.Contains(t, script, want)
	}
	// devhost reads a provision.nix file only when it belongs to the
	// caller (root would otherwise read any file for them); the store
	// paths belong to root, so the script pipes them in.
	assert.NotRegexp(t, `--provision-nix [^-]`, script, "pass store files on stdin: --provision-nix - < FILE")
	assert.Regexp(t, `sudo devhost ensure web1 .*--provision-nix - < /\S+-provision-web1\.nix`, script)
	assert.Regexp(t, `sudo devhost ensure web3 .*--provision-nix - < /\S+-provision-broken\.nix`, script)

	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found: cannot check the test script's syntax")
	}
	cmd := exec.Command(python, "-c", "import ast, sys; ast.parse(sys.stdin.read(), 'testScript')")
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	assert.NoError(t, err, "testScript is not valid Python: %s", out)
}

// checkVMSelfSigned: ACME off, the client does not verify.
func checkVMSelfSigned(t *testing.T, vm vmTest) {
	t.Helper()
	hc, err := hostconfig.Parse("/etc/devhost/devhost.hcl", []byte(vm.HostConfig))
	require.NoError(t, err)
	assert.False(t, hc.ACME.Enable)
	assert.Contains(t, vm.TestScript, `curl = "curl -sk"`)
	assert.Contains(t, vm.TestScript, "start_all()")
	assert.JSONEq(t, `false`, evalRebuildConfig(t, vm, "(lib.last c.imports).flyingcircus.roles.devhost.acme.enable"))
}

// checkVMACME: the host asks pebble (over the test CA, resolving through
// challtestsrv) with the mode's challenge, also after rebuilding itself;
// the client verifies every name with pebble's root; dns-01 also checks
// HTTPS right after ensure.
func checkVMACME(t *testing.T, vm vmTest, challenge hostconfig.Challenge) {
	t.Helper()
	hc, err := hostconfig.Parse("/etc/devhost/devhost.hcl", []byte(vm.HostConfig))
	require.NoError(t, err)
	assert.True(t, hc.ACME.Enable)
	assert.Equal(t, challenge, hc.ACME.Challenge)
	assert.Equal(t, "https://acme.test/dir", hc.ACME.Server)
	assert.Equal(t, []string{"192.168.1.4"}, vm.Nameservers, "the dnsserver node (challtestsrv) resolves for lego")
	assert.Equal(t, []string{"/stand-in/nixpkgs/nixos/tests/common/acme/server/ca.cert.pem"}, vm.CertificateFiles)
	// The booted host already has the status page's certificate (and
	// so NixOS' ACME units and lego in its store, for the offline rebuild).
	assert.Contains(t, vm.VirtualHosts, "dev.test")

	// The rebuilt configuration keeps the ACME settings (the mode's
	// module is its last import).
	mode := evalRebuildConfig(t, vm, "lib.last c.imports")
	var rebuilt struct {
		FlyingCircus struct {
			Roles struct {
				Devhost struct {
					ACME struct {
						Enable          bool    `json:"enable"`
						Challenge       string  `json:"challenge"`
						Server          string  `json:"server"`
						DNSProvider     *string `json:"dnsProvider"`
						CredentialsFile *string `json:"credentialsFile"`
					} `json:"acme"`
				} `json:"devhost"`
			} `json:"roles"`
		} `json:"flyingcircus"`
		Networking struct {
			Nameservers []string `json:"nameservers"`
			ExtraHosts  string   `json:"extraHosts"`
		} `json:"networking"`
		Security struct {
			PKI struct {
				CertificateFiles []string `json:"certificateFiles"`
			} `json:"pki"`
		} `json:"security"`
	}
	require.NoError(t, json.Unmarshal([]byte(mode), &rebuilt), mode)
	a := rebuilt.FlyingCircus.Roles.Devhost.ACME
	assert.True(t, a.Enable)
	assert.Equal(t, string(challenge), a.Challenge)
	assert.Equal(t, hc.ACME.Server, a.Server)
	assert.Equal(t, vm.Nameservers, rebuilt.Networking.Nameservers)
	assert.Equal(t, "192.168.1.1 acme.test\n", rebuilt.Networking.ExtraHosts)
	assert.Equal(t, vm.CertificateFiles, rebuilt.Security.PKI.CertificateFiles)

	script := vm.TestScript
	assert.Contains(t, script, `curl = "curl -sS --cacert /tmp/pebble.pem"`)
	assert.NotContains(t, script, "curl -sk")
	assert.NotContains(t, script, "start_all()")
	// pebble and challtestsrv answer before the devhost boots, and the
	// client has pebble's root.
	assert.Regexp(t, `(?s)wait_for_unit\("pebble-challtestsrv\.service"\).*wait_for_unit\("pebble\.service"\).*:15000/roots/0 > /tmp/pebble\.pem.*devhost\.start\(\)`, script)
	assert.Contains(t, script, `assert "pebble" in issuer.lower()`)

	if challenge != hostconfig.DNS01 {
		assert.Nil(t, a.DNSProvider)
		assert.NotContains(t, script, "ensure web4")
		return
	}
	require.NotNil(t, a.DNSProvider)
	assert.Equal(t, "exec", *a.DNSProvider)
	require.NotNil(t, a.CredentialsFile)
	assert.Regexp(t, `^/nix/store/\S+-lego-challtestsrv\.env$`, *a.CredentialsFile)
	main, ok := vm.ACMECerts["dev.test"]
	require.True(t, ok, "the main wildcard certificate on the booted host: %v", vm.ACMECerts)
	assert.Equal(t, []string{"*.dev.test"}, main.ExtraDomainNames)
	require.NotNil(t, main.DNSProvider)
	assert.Equal(t, "exec", *main.DNSProvider)
	assert.Equal(t, a.CredentialsFile, main.CredentialsFile)
	// The new container's primary name answers over verified HTTPS at
	// once: the check right after ensure does not retry.
	assert.Regexp(t, `devhost\.succeed\("su - alice -c 'sudo devhost ensure web4 [^\n]*\n(\s*#[^\n]*\n)*\s*client\.succeed\(curl \+ " -o /dev/null https://web4\.dev\.test/"\)`, script)
}

// nix/vendor-hash.txt must be what buildGoModule will compute, or every
// `nix build` fails with a hash mismatch. The script prints the right value.
func TestVendorHashIsCurrent(t *testing.T) {
	if _, err := exec.LookPath("nix"); err != nil {
		t.Skip("nix not found: cannot recompute the vendorHash")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go not found in PATH: cannot run go mod vendor")
	}
	if testing.Short() {
		t.Skip("-short: skipping go mod vendor")
	}
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "vendor")); err == nil {
		t.Skip("the source tree is vendored (a Nix build): the fixed-output vendor derivation already verified the hash")
	}
	out, err := run(t, "bash", filepath.Join(root, "nix", "update-vendor-hash.sh"), "--check")
	require.NoError(t, err, "%s", out)
}

// The flake pins a NixOS release and nothing else.
func TestFlakeLockPinsOneNixOSRelease(t *testing.T) {
	root := repoRoot(t)
	raw, err := os.ReadFile(filepath.Join(root, "flake.lock"))
	require.NoError(t, err)
	var lock struct {
		Version int `json:"version"`
		Root    string
		Nodes   map[string]struct {
			Inputs   map[string]string `json:"inputs"`
			Locked   map[string]any    `json:"locked"`
			Original map[string]any    `json:"original"`
		}
	}
	require.NoError(t, json.Unmarshal(raw, &lock))
	assert.Equal(t, 7, lock.Version)
	var names []string
	for n := range lock.Nodes {
		names = append(names, n)
	}
	sort.Strings(names)
	assert.Equal(t, []string{"nixpkgs", "root"}, names)
	assert.Equal(t, map[string]string{"nixpkgs": "nixpkgs"}, lock.Nodes["root"].Inputs)
	n := lock.Nodes["nixpkgs"]
	assert.Regexp(t, `^nixos-\d\d\.\d\d$`, n.Original["ref"])
	assert.Regexp(t, `^[0-9a-f]{40}$`, n.Locked["rev"])
	assert.Regexp(t, `^sha256-[A-Za-z0-9+/]{43}=$`, n.Locked["narHash"])
	flake, err := os.ReadFile(filepath.Join(root, "flake.nix"))
	require.NoError(t, err)
	assert.Contains(t, string(flake), fmt.Sprintf(`"github:NixOS/nixpkgs/%s"`, n.Original["ref"]),
		"flake.nix and flake.lock name the same release")
}

// `nix flake check --no-build` on the flake as git sees it, with nixpkgs
// replaced by a flake made of nixpkgs' lib and the stand-ins: Nix's own
// checks of every output (derivations, module, overlay, formatter, dev
// shell, every check for both systems) run, and the module-eval checks
// evaluate the examples against the stubs. A chroot store in the test's
// directory keeps the machine's store untouched.
func TestNixFlakeCheckWithStandInNixpkgs(t *testing.T) {
	lib := nixpkgsLib(t)
	root := repoRoot(t)
	nix, err := exec.LookPath("nix")
	if err != nil {
		t.Skip("nix not found: cannot run nix flake check")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not found: nix flake check reads the flake through git")
	}
	if _, err := os.Stat(filepath.Join(root, ".git")); err != nil {
		t.Skip("not a git checkout: nix flake check reads the flake through git")
	}
	dir := t.TempDir()
	// The store's files are read-only; make them removable for TempDir's
	// cleanup (which runs after this one).
	t.Cleanup(func() {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(p, 0o755)
			}
			return nil
		})
	})
	standIn := filepath.Join(dir, "nixpkgs")
	require.NoError(t, os.CopyFS(filepath.Join(standIn, "lib"), os.DirFS(lib)))
	for _, f := range []string{"tests/nix/standin.nix", "tests/nix/vm-stubs.nix", "nixos-module/testdata/stubs.nix"} {
		src, err := os.ReadFile(filepath.Join(root, f))
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Join(standIn, filepath.Dir(f)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(standIn, f), src, 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(standIn, "flake.nix"), []byte(
		"{ outputs = { self }: (import ./tests/nix/standin.nix { lib = import ./lib; }).nixpkgs; }\n"), 0o644))

	out, err := run(t, nix, "--extra-experimental-features", "nix-command flakes",
		"--store", "local?root="+filepath.Join(dir, "store"),
		"flake", "check", "--no-build", "--no-write-lock-file",
		"--override-input", "nixpkgs", "path:"+standIn,
		"git+file://"+root)
	require.NoError(t, err, "%s", out)
}
