package tests

import (
	"encoding/json"
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
	"github.com/flyingcircusio/devhost/internal/channel/channeltest"
	"github.com/flyingcircusio/devhost/internal/registry"
	"github.com/flyingcircusio/devhost/tests/doubles/double"
)

func TestEnsureStatusDestroy(t *testing.T) {
	t.Parallel()
	needNix(t)
	s := newSandbox(t, sandboxOpts{})
	prov := s.path("provision.nix")
	require.NoError(t, os.WriteFile(prov, []byte("{ pkgs, ... }:\n{\n  environment.systemPackages = [ pkgs.hello ];\n}\n"), 0o644))

	r := s.ok("alice", "ensure", "shop", "--channel", channel, "--alias", "www", "--alias", "admin",
		"--environment", "dev", "--provision-nix", prov, "--service-user", "s-shop", "--json")
	var out ensureJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	assert.True(t, out.Created)
	assert.True(t, out.Built)
	assert.True(t, out.HostRebuilt)
	assert.Equal(t, "alice", out.Owner)
	assert.Equal(t, "started", out.Unit)
	assert.Equal(t, "running", out.State)
	assert.Equal(t, 1, out.Generation)
	assert.Equal(t, "10.100.0.2", out.Address)
	assert.Equal(t, []string{"https://shop.dev.example.com/", "https://www.shop.dev.example.com/", "https://admin.shop.dev.example.com/"}, out.URLs)
	assert.Empty(t, out.HostKey, "no host key before the container's sshd made one")
	// The host key, as the container's sshd creates it on first start.
	keyPath := s.path("containers", "shop", "etc", "ssh", "ssh_host_ed25519_key.pub")
	require.NoError(t, os.MkdirAll(filepath.Dir(keyPath), 0o755))
	require.NoError(t, os.WriteFile(keyPath, []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLEEX root@shop\n"), 0o644))

	// nix-build was asked for a restricted build of the container's own
	// system from its channel, with its provision.nix allowed.
	builds := s.records("nix-build")
	require.Len(t, builds, 1)
	argv := builds[0].Argv
	assert.Equal(t, []string{"<nixpkgs/nixos>", "-A", "system"}, argv[:3])
	assert.Contains(t, strings.Join(argv, " "), "-I nixpkgs="+channel)
	assert.Contains(t, strings.Join(argv, " "), "--option restrict-eval true")
	assert.Contains(t, strings.Join(argv, " "), "--option allowed-uris "+channel)
	assert.Contains(t, argv, "devhost-provision="+generator.ProvisionNixPath(s.config(), "shop"))
	// The double had the real nix-instantiate parse what it was given: the
	// generated configuration.nix and the provision.nix.
	parsed, _ := builds[0].Extra["parsed"].([]any)
	assert.Len(t, parsed, 2, "configuration.nix and provision.nix parsed by Nix")
	envs := s.records("nix-env")
	require.Len(t, envs, 1)
	assert.Equal(t, []string{"-p", generator.ProfilePath(s.config(), "shop"), "--set", builds[0].Extra["out"].(string)}, envs[0].Argv)
	rebuilds := s.records("nixos-rebuild")
	require.Len(t, rebuilds, 1)
	assert.Equal(t, []string{"switch"}, rebuilds[0].Argv)
	assert.True(t, setNames(rebuilds[0])["shop"], "the rebuild did not see the container")
	if _, ok := rebuilds[0].Extra["parsed"]; !ok {
		t.Log("nix-instantiate not found: the generated set was not parsed by real Nix")
	}
	sc := s.records("systemctl")
	require.Len(t, sc, 2)
	assert.Equal(t, []string{"is-active", "--quiet", "container@shop.service"}, sc[0].Argv)
	assert.Equal(t, []string{"start", "container@shop.service"}, sc[1].Argv)
	provCopy, err := os.ReadFile(generator.ProvisionNixPath(s.config(), "shop"))
	require.NoError(t, err)
	assert.Contains(t, string(provCopy), "pkgs.hello")
	s.checkConsistent()

	// The same again: nothing is built or rebuilt, only the deployment time moves.
	before := s.entry("shop")
	r = s.ok("alice", "ensure", "shop", "--channel", channel, "--alias", "www", "--alias", "admin",
		"--environment", "dev", "--provision-nix", prov, "--service-user", "s-shop", "--json")
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	assert.False(t, out.Created)
	assert.False(t, out.Built)
	assert.False(t, out.HostRebuilt)
	assert.Equal(t, "unchanged", out.Unit)
	assert.Contains(t, out.HostKey, "root@shop")
	assert.Len(t, s.records("nix-build"), 1)
	assert.Len(t, s.records("nixos-rebuild"), 1)
	after := s.entry("shop")
	assert.False(t, after.Deployed.Before(before.Deployed))
	after.Deployed = before.Deployed
	assert.Equal(t, before, after)

	// A changed provision.nix rebuilds the container's system and switches
	// the running container; the host's declarations did not change.
	require.NoError(t, os.WriteFile(prov, []byte("{ ... }:\n{ services.nginx.enable = true; }\n"), 0o644))
	r = s.ok("alice", "ensure", "shop", "--channel", channel, "--alias", "www", "--alias", "admin",
		"--environment", "dev", "--provision-nix", prov, "--service-user", "s-shop", "--json")
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	assert.True(t, out.Built)
	assert.False(t, out.HostRebuilt)
	assert.Equal(t, "switched", out.Unit)
	assert.Equal(t, 2, out.Generation)
	assert.Len(t, s.records("nixos-rebuild"), 1)
	sc = s.records("systemctl")
	assert.Equal(t, []string{"reload", "container@shop.service"}, sc[len(sc)-1].Argv)

	// status
	r = s.ok("bob", "status", "shop", "--json")
	var st map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st))
	assert.Equal(t, "running", st["state"])
	assert.Equal(t, "active", st["active"])
	assert.Equal(t, "10.100.0.2", st["address"])
	assert.Equal(t, "10.100.0.1", st["host_address"])
	assert.EqualValues(t, 2, st["profile_generation"])
	assert.Equal(t, false, st["pending"])
	r = s.ok("bob", "status", "shop")
	assert.Contains(t, r.stdout, "https://admin.shop.dev.example.com/")
	s.checkConsistent()

	// destroy: one rebuild without the container, then its remains go.
	s.ok("alice", "destroy", "shop")
	assert.Nil(t, s.entry("shop"))
	rebuilds = s.records("nixos-rebuild")
	require.Len(t, rebuilds, 2)
	assert.False(t, setNames(rebuilds[1])["shop"])
	_, err = os.Stat(filepath.Dir(generator.ProfilePath(s.config(), "shop")))
	assert.True(t, os.IsNotExist(err), "profile left behind")
	_, err = os.Stat(s.path("containers", "shop"))
	assert.True(t, os.IsNotExist(err), "container root left behind")
	_, err = os.Stat(generator.ProvisionNixPath(s.config(), "shop"))
	assert.True(t, os.IsNotExist(err), "provision.nix left behind")
	s.checkConsistent()
	assert.Equal(t, 1, s.runAs("alice", "destroy", "shop").code, "destroying an unknown container")
	assert.Equal(t, 1, s.runAs("alice", "status", "shop").code)
}

// ensureJSON mirrors `devhost ensure --json`.
type ensureJSON struct {
	Name        string   `json:"name"`
	Owner       string   `json:"owner"`
	State       string   `json:"state"`
	Created     bool     `json:"created"`
	Built       bool     `json:"built"`
	Generation  int      `json:"profile_generation"`
	Address     string   `json:"address"`
	URLs        []string `json:"urls"`
	Unit        string   `json:"unit"`
	HostRebuilt bool     `json:"host_rebuilt"`
	AppliedGen  uint64   `json:"applied_generation"`
	HostKey     string   `json:"host_key"`
}

func TestEnsureValidation(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, sandboxOpts{prefixes: []string{"https://hydra.example.org/"}})
	broken := s.path("broken.nix")
	require.NoError(t, os.WriteFile(broken, []byte("{ config, ... }:\n{\n  services.nginx.enable = ;\n}\n"), 0o644))
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"bad name", []string{"ensure", "Shop_1", "--channel", channel}, []string{"Invalid container name", "upper-case"}},
		{"long name", []string{"ensure", "abcdefghijkl", "--channel", channel}, []string{"at most 11"}},
		{"bad alias", []string{"ensure", "shop", "--channel", channel, "--alias", "a_b"}, []string{"Invalid alias"}},
		{"duplicate alias", []string{"ensure", "shop", "--channel", channel, "--alias", "www", "--alias", "www"}, []string{"Duplicate alias"}},
		{"channel not allowed", []string{"ensure", "shop", "--channel", "https://evil.example.com/nixexprs.tar.xz"}, []string{"not allowed", "hydra.example.org"}},
		{"channel with quote", []string{"ensure", "shop", "--channel", `https://hydra.example.org/"x`}, []string{"Invalid channel"}},
		{"missing channel", []string{"ensure", "shop"}, []string{"channel"}},
		{"bad service user", []string{"ensure", "shop", "--channel", channel, "--service-user", "Root!"}, []string{"service_user"}},
		{"bad ssh key", []string{"ensure", "shop", "--channel", channel, "--ssh-key", "ssh-rsa nonsense\nsecond line"}, []string{"Invalid SSH key"}},
		{"provision.nix syntax", []string{"ensure", "shop", "--channel", channel, "--provision-nix", broken}, []string{"broken.nix:3:", "syntax error"}},
		{"compat: bad alias", []string{"fc-build-dev-container", "ensure", "shop", channel, "www Bad"}, []string{"Invalid alias"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Contains(tt.name, "provision") && !hasNixInstantiate() {
				t.Skip("nix-instantiate not found: provision.nix cannot be checked (CI installs nix-bin)")
			}
			r := s.runAs("alice", tt.args...)
			assert.Equal(t, 1, r.code, r.stderr)
			for _, w := range tt.want {
				assert.Contains(t, r.stderr, w)
			}
		})
	}
	// Nothing was changed, and no external command ran but the syntax check.
	_, err := os.Stat(s.path("state", "containers"))
	assert.True(t, os.IsNotExist(err), "registry touched")
	var ran []double.Record
	for _, r := range s.records("") {
		if r.Tool != "nix-instantiate" || !slices.Equal(r.Argv, []string{"--parse", "-"}) {
			ran = append(ran, r)
		}
	}
	assert.Empty(t, ran, "external commands ran")
}

// needNix skips a test whose ensure checks a provision.nix: devhost runs
// the real nix-instantiate --parse for that.
func needNix(t *testing.T) {
	t.Helper()
	if !hasNixInstantiate() {
		t.Skip("nix-instantiate not found: ensure --provision-nix checks provision.nix with it (CI installs nix-bin)")
	}
}

func hasNixInstantiate() bool {
	_, err := exec.LookPath("nix-instantiate")
	return err == nil
}

func TestBuildFailureLeavesEverythingElse(t *testing.T) {
	t.Parallel()
	needNix(t)
	s := newSandbox(t, sandboxOpts{})
	good := s.path("good.nix")
	bad := s.path("bad.nix")
	require.NoError(t, os.WriteFile(good, []byte("{ ... }: { }\n"), 0o644))
	// Parses, but fails to build: the nix-build double fails like Nix.
	require.NoError(t, os.WriteFile(bad, []byte("{ ... }: { environment.etc.marker.text = \"DOUBLE_BUILD_FAIL\"; }\n"), 0o644))
	s.ok("alice", "ensure", "other", "--channel", channel)
	s.ok("alice", "ensure", "shop", "--channel", channel, "--provision-nix", good)
	rebuilds := len(s.records("nixos-rebuild"))

	// A new container whose first build fails is not kept.
	r := s.runAs("alice", "ensure", "fresh", "--channel", channel, "--provision-nix", bad)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "undefined variable 'DOUBLE_BUILD_FAIL'")
	assert.Nil(t, s.entry("fresh"))

	// An existing one keeps its profile and records the error.
	gen := s.entry("shop")
	r = s.runAs("alice", "ensure", "shop", "--channel", channel, "--provision-nix", bad)
	assert.Equal(t, 1, r.code)
	after := s.entry("shop")
	require.NotNil(t, after)
	assert.Contains(t, after.LastError, "DOUBLE_BUILD_FAIL")
	assert.Equal(t, gen.Deployed, after.Deployed)
	prov, err := os.ReadFile(generator.ProvisionNixPath(s.config(), "shop"))
	require.NoError(t, err)
	assert.Equal(t, "{ ... }: { }\n", string(prov), "the previous provision.nix must stay")
	assert.Equal(t, rebuilds, len(s.records("nixos-rebuild")), "the host was rebuilt")
	target, err := os.Readlink(generator.ProfilePath(s.config(), "shop"))
	require.NoError(t, err)
	assert.Equal(t, "system-1-link", target)
	s.checkConsistent()

	// Fixing it clears the error.
	s.ok("alice", "ensure", "shop", "--channel", channel, "--provision-nix", good, "--force-build")
	assert.Empty(t, s.entry("shop").LastError)
}

func TestRebuildFailureRollsBack(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, sandboxOpts{})
	s.ok("alice", "ensure", "keepme", "--channel", channel, "--alias", "www")
	before := s.entry("keepme")
	s.setControl(map[string]double.Control{"nixos-rebuild": {Fail: true, Message: "error: The option `foo' does not exist (double)"}})

	// A new container: the failed rebuild removes it again.
	r := s.runAs("bob", "ensure", "newone", "--channel", channel)
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "host rebuild failed")
	assert.Contains(t, r.stderr, "The option `foo' does not exist")
	assert.Nil(t, s.entry("newone"))
	_, err := os.Stat(filepath.Dir(generator.ProfilePath(s.config(), "newone")))
	assert.True(t, os.IsNotExist(err), "profile of the rolled back container left behind")
	s.checkConsistent()

	// A change of an existing container: the entry goes back, byte for
	// byte; the error says which container and why.
	entry := registry.Open(s.config().StateDir).Path("keepme")
	src, err := os.ReadFile(entry)
	require.NoError(t, err)
	r = s.runArgv0("alice", "fc-build-dev-container", "ensure", "keepme", channel, "www admin")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "rolled back, as the requests that changed them failed: keepme\n")
	assert.Contains(t, r.stderr, "The option `foo' does not exist")
	got, err := os.ReadFile(entry)
	require.NoError(t, err)
	assert.Equal(t, string(src), string(got))
	after := s.entry("keepme")
	assert.Equal(t, []string{"www"}, after.Aliases)
	assert.Equal(t, before.Address, after.Address)
	// Its system was built with the new aliases, then put back.
	target, err := os.Readlink(generator.ProfilePath(s.config(), "keepme"))
	require.NoError(t, err)
	assert.Equal(t, "system-1-link", target)
	sw := s.records("nix-env")
	assert.Equal(t, []string{"-p", generator.ProfilePath(s.config(), "keepme"), "--switch-generation", "1"}, sw[len(sw)-1].Argv)

	// A destroy: the entry comes back.
	r = s.runAs("alice", "destroy", "keepme")
	assert.Equal(t, 2, r.code)
	require.NotNil(t, s.entry("keepme"))

	st := s.hostStatus()
	require.NotNil(t, st.LastFailure)
	assert.Contains(t, st.LastFailure.Error, "does not exist")
	log, err := os.ReadFile(st.LastFailure.Log)
	require.NoError(t, err)
	assert.Contains(t, string(log), "does not exist")
	assert.True(t, st.SetMatchesApplied)

	// Every failed rebuild saw the change it was asked for.
	for _, rb := range s.records("nixos-rebuild")[1:] {
		assert.Equal(t, 1, rb.Exit)
	}
	s.setControl(nil)
	s.ok("alice", "fc-build-dev-container", "ensure", "keepme", channel, "www admin")
	assert.Equal(t, []string{"www", "admin"}, s.entry("keepme").Aliases)
	s.checkConsistent()
}

func TestKeepAndCleanup(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, sandboxOpts{})
	for _, n := range []string{"aa", "bb", "cc", "dd"} {
		s.ok("alice", "ensure", n, "--channel", channel)
	}
	s.ok("alice", "keep", "cc")
	assert.True(t, s.entry("cc").Keep)
	start := len(s.successfulRebuilds())
	now := s.entry("dd").Deployed

	// Nothing is due after 6 days.
	r := s.ok("root", "cleanup", "--now", now.Add(6*24*time.Hour).Format(time.RFC3339))
	assert.Contains(t, r.stdout, "nothing to clean up")

	// After 8 days: all stopped in one rebuild, the kept one not.
	at8 := now.Add(8 * 24 * time.Hour).Format(time.RFC3339)
	r = s.ok("alice", "cleanup", "--dry-run", "--now", at8)
	assert.Contains(t, r.stdout, "would stop")
	assert.Equal(t, start, len(s.successfulRebuilds()), "dry run changed something")
	assert.Equal(t, 1, s.runAs("alice", "cleanup", "--now", at8).code, "a non-admin cleaned up")
	r = s.ok("carol", "cleanup", "--now", at8, "--json")
	assert.Len(t, s.successfulRebuilds(), start+1)
	for _, n := range []string{"aa", "bb", "dd"} {
		assert.Equal(t, "stopped", string(s.entry(n).State), n)
	}
	assert.Equal(t, "running", string(s.entry("cc").State))
	var stops []string
	for _, rec := range s.records("systemctl") {
		if rec.Argv[0] == "stop" {
			stops = append(stops, rec.Argv[1])
		}
	}
	assert.ElementsMatch(t, []string{"container@aa.service", "container@bb.service", "container@dd.service"}, stops)

	// Deploying again revives one.
	s.ok("alice", "ensure", "bb", "--channel", channel)
	assert.Equal(t, "running", string(s.entry("bb").State))

	// After 31 days: destroyed in one rebuild, the kept one stays.
	at31 := now.Add(31 * 24 * time.Hour).Format(time.RFC3339)
	n := len(s.successfulRebuilds())
	r = s.ok("root", "cleanup", "--now", at31)
	assert.Contains(t, r.stdout, "aa")
	assert.Len(t, s.successfulRebuilds(), n+1)
	for _, gone := range []string{"aa", "bb", "dd"} {
		assert.Nil(t, s.entry(gone), gone)
	}
	require.NotNil(t, s.entry("cc"))
	names := setNames(s.successfulRebuilds()[n])
	assert.False(t, names["aa"])
	assert.True(t, names["cc"])
	s.checkConsistent()

	s.ok("alice", "keep", "cc", "--off")
	assert.False(t, s.entry("cc").Keep)
	r = s.ok("root", "cleanup", "--dry-run", "--now", at31, "--json")
	var plan struct {
		Plan struct {
			Items []struct{ Name, Action string }
		}
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &plan))
	var got []string
	for _, it := range plan.Plan.Items {
		got = append(got, it.Name+":"+it.Action)
	}
	slices.Sort(got)
	assert.Equal(t, []string{"cc:destroy"}, got)
}

// A hanging rebuild is cut off by commands.timeout and treated as failed.
func TestRebuildTimeout(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, sandboxOpts{timeout: "1s"})
	s.setControl(map[string]double.Control{"nixos-rebuild": {SleepMS: 5000}})
	start := time.Now()
	r := s.runAs("alice", "ensure", "slow", "--channel", channel)
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "timed out")
	assert.Less(t, time.Since(start), 4*time.Second, "the rebuild was not killed at its timeout")
	assert.Nil(t, s.entry("slow"))
	s.setControl(nil)
	s.ok("alice", "ensure", "slow", "--channel", channel)
	s.checkConsistent()
}

// A new container's system.stateVersion is its channel's NixOS release,
// evaluated by the real nix-instantiate with the argv devhost builds (the
// double checks its shape and hands a local channel to the real one), and
// it stays when the container moves to a channel of another release.
func TestStateVersionFromTheRealChannel(t *testing.T) {
	t.Parallel()
	needNix(t)
	dir := channeltest.Dir(t) // skips unless running as root
	s := newSandbox(t, sandboxOpts{prefixes: []string{"file://" + dir + "/"}})
	first, second := localChannel(t, dir, "21.05"), localChannel(t, dir, "23.11")

	s.ok("alice", "ensure", "shop", "--channel", first)
	assert.Equal(t, "21.05", s.entry("shop").StateVersion)
	evals := s.records("nix-instantiate")
	require.Len(t, evals, 1)
	assert.Equal(t, true, evals[0].Extra["real"], "evaluated by the real nix-instantiate")
	assert.Contains(t, s.configuration("shop"), `system.stateVersion = lib.mkDefault "21.05";`)

	s.ok("alice", "ensure", "shop", "--channel", second)
	e := s.entry("shop")
	assert.Equal(t, second, e.Channel)
	assert.Equal(t, "21.05", e.StateVersion, "kept when the channel changes")
	assert.Len(t, s.records("nix-instantiate"), 1, "not evaluated again")
	assert.Contains(t, s.configuration("shop"), `system.stateVersion = lib.mkDefault "21.05";`)
}
