package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/atomicfile"
	"github.com/flyingcircusio/devhost/internal/diag"
	"github.com/flyingcircusio/devhost/internal/hostconfig"
	"github.com/flyingcircusio/devhost/internal/registry"
	"github.com/flyingcircusio/devhost/internal/runner"
	"github.com/flyingcircusio/devhost/templates"
)

// fakeRunner answers external commands instantly, emulating what the
// lifecycle relies on: nix-build prints a store path, nix-env --set moves
// the profile link, systemctl is-active says active. It records argv.
type fakeRunner struct {
	mu    sync.Mutex
	store string
	calls [][]string
	fail  map[string]error // by argv[0]
	// onBuild, when set, runs at the start of every nix-build (outside
	// the runner's mutex).
	onBuild func()
	// before, when set, runs before every command (outside the mutex).
	before func(argv []string)
	// releases is the NixOS release nix-instantiate evaluates for a
	// channel (by its search path entry nixpkgs=…); "24.11" when absent.
	releases map[string]string
	// stdout, when set, answers a command with this output (by argv
	// without argv[0], joined by spaces).
	stdout map[string]string
}

func (f *fakeRunner) Run(ctx context.Context, c runner.Cmd) (runner.Result, error) {
	if c.Argv[0] == "nix-build" && f.onBuild != nil {
		f.onBuild()
	}
	if f.before != nil {
		f.before(c.Argv)
	}
	if err := ctx.Err(); err != nil {
		// As exec.CommandContext: an ended context starts nothing.
		return runner.Result{ExitCode: -1}, &runner.Error{Argv: c.Argv, ExitCode: -1, Err: err}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c.Argv)
	if err := f.fail[c.Argv[0]]; err != nil {
		return runner.Result{ExitCode: 1}, err
	}
	if out, ok := f.stdout[strings.Join(c.Argv[1:], " ")]; ok {
		return runner.Result{Stdout: []byte(out)}, nil
	}
	switch c.Argv[0] {
	case "nix-instantiate":
		rel := "24.11"
		for _, a := range c.Argv {
			if ch, ok := strings.CutPrefix(a, "nixpkgs="); ok && f.releases[ch] != "" {
				rel = f.releases[ch]
			}
		}
		return runner.Result{Stdout: []byte(strconv.Quote(rel) + "\n")}, nil
	case "nix-build":
		p := filepath.Join(f.store, fmt.Sprintf("%d-system", len(f.calls)))
		if err := os.MkdirAll(p, 0o755); err != nil {
			return runner.Result{}, err
		}
		if c.Log != nil { // as runner.Exec: the output as it comes
			fmt.Fprintf(c.Log, "building '%s.drv'...\n%s\n", p, p)
		}
		return runner.Result{Stdout: []byte(p + "\n")}, nil
	case "nix-env":
		prof := c.Argv[2]
		if c.Argv[3] == "--set" {
			n := 1
			for {
				if _, err := os.Lstat(fmt.Sprintf("%s-%d-link", prof, n)); err != nil {
					break
				}
				n++
			}
			link := fmt.Sprintf("%s-%d-link", prof, n)
			if err := os.MkdirAll(filepath.Dir(prof), 0o755); err != nil {
				return runner.Result{}, err
			}
			if err := os.Symlink(c.Argv[4], link); err != nil {
				return runner.Result{}, err
			}
			_ = os.Remove(prof)
			return runner.Result{}, os.Symlink(filepath.Base(link), prof)
		}
		if c.Argv[3] == "--switch-generation" {
			link := fmt.Sprintf("%s-%s-link", prof, c.Argv[4])
			if _, err := os.Lstat(link); err != nil {
				return runner.Result{ExitCode: 1}, err
			}
			_ = os.Remove(prof)
			return runner.Result{}, os.Symlink(filepath.Base(link), prof)
		}
	}
	return runner.Result{}, nil
}

func (f *fakeRunner) count(prog string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c[0] == prog {
			n++
		}
	}
	return n
}

func testHost(t testing.TB) (*Host, *fakeRunner) {
	t.Helper()
	return testHostAt(t, t.TempDir())
}

// testHostAt is testHost keeping its state under dir, which processes
// running at the same time can share.
func testHostAt(t testing.TB, dir string) (*Host, *fakeRunner) {
	t.Helper()
	cfg := hostconfig.Default("dev.example.com")
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.GeneratedDir = filepath.Join(dir, "generated")
	cfg.ProfileDir = filepath.Join(dir, "profiles")
	cfg.ContainersDir = filepath.Join(dir, "containers")
	cfg.SystemProfile = filepath.Join(dir, "system")
	cfg.ACME.CertDir = filepath.Join(dir, "acme")
	cfg.Commands.Rebuild = []string{"nixos-rebuild", "switch"}
	cfg.Commands.RebuildBatchWindow = 0
	tmpl, err := templates.Load("")
	require.NoError(t, err)
	fr := &fakeRunner{store: filepath.Join(dir, "store")}
	h := New(cfg, registry.Open(cfg.StateDir), fr, &Renderer{Cfg: cfg, Templates: tmpl})
	return h, fr
}

var alice = Caller{User: "alice", Groups: []string{"users"}}

func TestEnsureThenNoChange(t *testing.T) {
	h, fr := testHost(t)
	ctx := context.Background()
	req := EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Aliases: []string{"www"}, Caller: alice}
	res, err := h.Ensure(ctx, req)
	require.NoError(t, err)
	assert.True(t, res.Created)
	assert.True(t, res.Built)
	assert.True(t, res.Apply.Rebuilt)
	assert.Equal(t, 1, fr.count("nixos-rebuild"))

	res, err = h.Ensure(ctx, req)
	require.NoError(t, err)
	assert.False(t, res.Created)
	assert.False(t, res.Built)
	assert.False(t, res.Apply.Rebuilt)
	assert.Equal(t, "unchanged", res.Unit)
	assert.Equal(t, 1, fr.count("nix-build"))
	assert.Equal(t, 1, fr.count("nixos-rebuild"))
}

func TestRebuildFailureReportedToEveryCoveredRequest(t *testing.T) {
	h, fr := testHost(t)
	ctx := context.Background()
	fr.fail = map[string]error{"nixos-rebuild": errors.New("evaluation failed")}
	_, err := h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice})
	var re *RebuildError
	require.ErrorAs(t, err, &re)
	assert.Contains(t, re.Error(), "evaluation failed")
	_, err = h.Reg.Get("shop")
	assert.ErrorIs(t, err, registry.ErrNotFound)
	// The failure stays recorded for the generation it covered.
	f, err := h.failureCovering(re.Failure.To)
	require.NoError(t, err)
	require.NotNil(t, f)
	fr.fail = nil
	_, err = h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
}

func TestPlanCleanup(t *testing.T) {
	now := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	mk := func(name string, idle time.Duration, state registry.State, keep bool, neverDeployed bool) *registry.Container {
		c := &registry.Container{Name: name, Owner: "alice", State: state, Keep: keep, Created: now.Add(-idle)}
		if !neverDeployed {
			c.Deployed = now.Add(-idle)
		}
		return c
	}
	policy := hostconfig.Cleanup{StopAfter: 7 * day, DestroyAfter: 30 * day}
	tests := []struct {
		name string
		c    *registry.Container
		want string
	}{
		{"fresh", mk("a", 6*day, registry.Running, false, false), ""},
		{"exactly 7 days", mk("b", 7*day, registry.Running, false, false), ActionStop},
		{"stopped already", mk("c", 8*day, registry.Stopped, false, false), ""},
		{"exactly 30 days", mk("d", 30*day, registry.Stopped, false, false), ActionDestroy},
		{"kept", mk("e", 40*day, registry.Running, true, false), ActionKeep},
		{"never deployed: created counts", mk("f", 10*day, registry.Running, false, true), ActionStop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := PlanCleanup([]*registry.Container{tt.c}, policy, now)
			if tt.want == "" {
				assert.Empty(t, p.Items)
				return
			}
			require.Len(t, p.Items, 1)
			assert.Equal(t, tt.want, p.Items[0].Action)
		})
	}
	// An expired container is destroyed whatever its deployment time or
	// keep flag; one not yet expired follows the idle policy.
	exp := mk("h", 1*day, registry.Running, true, false)
	exp.ExpiresAt = now
	notYet := mk("i", 1*day, registry.Running, false, false)
	notYet.ExpiresAt = now.Add(time.Second)
	p := PlanCleanup([]*registry.Container{exp, notYet}, policy, now)
	require.Len(t, p.Items, 1)
	assert.Equal(t, CleanupItem{Name: "h", Owner: "alice", Action: ActionDestroy, Deployed: exp.Deployed, Idle: day,
		Reason: ReasonExpired, ExpiresAt: &exp.ExpiresAt}, p.Items[0])
	// A disabled stage does nothing.
	p = PlanCleanup([]*registry.Container{mk("g", 100*day, registry.Running, false, false)}, hostconfig.Cleanup{}, now)
	assert.Empty(t, p.Items)
}

func TestResolveCaller(t *testing.T) {
	dir := t.TempDir()
	gf := filepath.Join(dir, "group")
	require.NoError(t, os.WriteFile(gf, []byte("users:x:100:alice,bob,jane.doe\nwheel:x:10:carol\n"), 0o644))
	sys := GroupFile{Path: gf}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	current := func() (string, error) { return "dave", nil }
	tests := []struct {
		name    string
		p       Process
		want    Caller
		wantErr string
	}{
		{"root through sudo", Process{EUID: 0, Env: env(map[string]string{"SUDO_USER": "alice"})},
			Caller{User: "alice", Groups: []string{"users"}}, ""},
		{"root itself", Process{EUID: 0, Env: env(nil)}, Caller{User: "root", Root: true}, ""},
		{"sudo -u root by root", Process{EUID: 0, Env: env(map[string]string{"SUDO_USER": "root"})}, Caller{User: "root", Root: true}, ""},
		{"test variables ignored in a real build", Process{EUID: 0, Env: env(map[string]string{EnvTestUser: "carol", EnvTestGroupFile: gf})},
			Caller{User: "root", Root: true}, ""},
		{"test variables ignored under sudo in a real build", Process{EUID: 0, Env: env(map[string]string{"SUDO_USER": "bob", EnvTestUser: "carol"})},
			Caller{User: "bob", Groups: []string{"users"}}, ""},
		{"test build", Process{EUID: 0, TestIdentity: true, Env: env(map[string]string{EnvTestUser: "carol", EnvTestGroupFile: gf})},
			Caller{User: "carol", Groups: []string{"wheel"}}, ""},
		{"unprivileged", Process{EUID: 1000, Env: env(nil), Current: current}, Caller{User: "dave"}, ""},
		{"unprivileged SUDO_USER is not trusted", Process{EUID: 1000, Env: env(map[string]string{"SUDO_USER": "carol"}), Current: current}, Caller{User: "dave"}, ""},
		{"hostile SUDO_USER", Process{EUID: 0, Env: env(map[string]string{"SUDO_USER": "../etc"})}, Caller{}, "SUDO_USER"},
		// A login name with a dot, valid on NixOS.
		{"SUDO_USER with a dot", Process{EUID: 0, Env: env(map[string]string{"SUDO_USER": "jane.doe"})},
			Caller{User: "jane.doe", Groups: []string{"users"}}, ""},
		{"unprivileged with a dot", Process{EUID: 1000, Env: env(nil), Current: func() (string, error) { return "jane.doe", nil }},
			Caller{User: "jane.doe", Groups: []string{"users"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolveCaller(tt.p, sys)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestAccessChecks(t *testing.T) {
	a := hostconfig.Access{Groups: []string{"users", "service"}, AdminGroup: "wheel"}
	member := Caller{User: "alice", Groups: []string{"users"}}
	admin := Caller{User: "carol", Groups: []string{"wheel"}}
	outsider := Caller{User: "mallory", Groups: []string{"nogroup"}}
	assert.NoError(t, member.CheckMember(a, "x"))
	assert.NoError(t, admin.CheckMember(a, "x"))
	assert.ErrorIs(t, outsider.CheckMember(a, "x"), ErrDenied)
	assert.NoError(t, member.CheckOwner(a, "destroy", "shop", "alice"))
	assert.ErrorIs(t, member.CheckOwner(a, "destroy", "shop", "bob"), ErrDenied)
	assert.NoError(t, admin.CheckOwner(a, "destroy", "shop", "bob"))
	assert.NoError(t, Caller{User: "root", Root: true}.CheckOwner(a, "destroy", "shop", "bob"))
}

func TestValidateProvisionPositions(t *testing.T) {
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		t.Skip("nix-instantiate not found: cannot check provision.nix parsing (CI installs nix-bin)")
	}
	h, _ := testHost(t)
	h.Run = &runner.Exec{Timeout: time.Minute}
	src := []byte("{ config, ... }:\n{\n  services.nginx.enable = ;\n}\n")
	req := &EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice, Provision: src}
	err := h.Validate(context.Background(), req, "environments/dev/provision.nix")
	var de *diag.Error
	require.ErrorAs(t, err, &de)
	require.Len(t, de.Diags, 1)
	d := de.Diags[0]
	assert.Equal(t, hcl.DiagError, d.Severity)
	assert.Contains(t, d.Summary, "syntax error")
	require.NotNil(t, d.Subject)
	assert.Equal(t, "environments/dev/provision.nix", d.Subject.Filename)
	assert.Equal(t, 3, d.Subject.Start.Line)
	assert.Equal(t, byte(';'), src[d.Subject.Start.Byte])

	req.Provision = []byte("{ pkgs, ... }: { environment.systemPackages = [ pkgs.hello ]; }\n")
	assert.NoError(t, h.Validate(context.Background(), req, "provision.nix"))
}

func TestValidateNames(t *testing.T) {
	h, fr := testHost(t)
	h.Cfg.Channels.AllowedPrefixes = []string{"https://hydra.example.org/"}
	err := h.Validate(context.Background(), &EnsureRequest{Name: "Bad_Name", Channel: "https://evil.example.com/x",
		Aliases: []string{"ok", "No"}, Caller: alice}, "provision.nix")
	var de *diag.Error
	require.ErrorAs(t, err, &de)
	var sums []string
	for _, d := range de.Diags {
		sums = append(sums, d.Summary)
	}
	assert.Contains(t, sums, "Invalid container name")
	assert.Contains(t, sums, "Invalid alias")
	assert.Contains(t, sums, "Channel not allowed on this devhost")
	assert.Empty(t, fr.calls, "validation ran a command")
}

func TestRangeAt(t *testing.T) {
	src := []byte("ab\ncde\nf")
	r := rangeAt("x", src, 2, 2)
	assert.Equal(t, 4, r.Start.Byte)
	assert.Equal(t, byte('d'), src[r.Start.Byte])
	r = rangeAt("x", src, 9, 9)
	assert.Equal(t, len(src), r.Start.Byte)
}

func TestProfileGeneration(t *testing.T) {
	assert.Equal(t, 12, ProfileGeneration("system-12-link"))
	assert.Equal(t, 0, ProfileGeneration(""))
	assert.Equal(t, 0, ProfileGeneration("system"))
}

func TestGroupFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "group")
	require.NoError(t, os.WriteFile(p, []byte("# comment\nusers:x:100:alice,bob\nbroken\nwheel:x:10:\nservice:x:900:bob\n"), 0o644))
	g, err := GroupFile{Path: p}.GroupsOf("bob")
	require.NoError(t, err)
	assert.Equal(t, []string{"users", "service"}, g)
	g, err = GroupFile{Path: p}.GroupsOf("nobody")
	require.NoError(t, err)
	assert.Empty(t, g)
}

// writeEntries fills a registry with n entries quickly: one written by the
// registry, the rest copies with their name and address replaced.
func writeEntries(tb testing.TB, h *Host, n int, deployed time.Time) {
	tb.Helper()
	proto := &registry.Container{Name: "proto", Owner: "alice", Channel: "https://example.org/c.tar.xz",
		Aliases: []string{"www"}, Address: netip.MustParseAddr("10.233.0.2"), State: registry.Running,
		Created: deployed, Deployed: deployed}
	require.NoError(tb, h.Reg.Put(proto))
	src, err := os.ReadFile(h.Reg.Path("proto"))
	require.NoError(tb, err)
	require.NoError(tb, os.Remove(h.Reg.Path("proto")))
	a := netip.MustParseAddr("10.233.100.0") // clear of addresses Allocate hands out first
	for i := range n {
		a = a.Next()
		name := fmt.Sprintf("c%05d", i)
		b := strings.ReplaceAll(strings.ReplaceAll(string(src), `"proto"`, `"`+name+`"`), `"10.233.0.2"`, `"`+a.String()+`"`)
		require.NoError(tb, os.WriteFile(h.Reg.Path(name), []byte(b), 0o644))
	}
}

func TestPlanReadsRegistry(t *testing.T) {
	h, _ := testHost(t)
	deployed := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	writeEntries(t, h, 20, deployed)
	p, err := h.Plan(deployed.Add(8 * 24 * time.Hour))
	require.NoError(t, err)
	require.Len(t, p.Items, 20)
	assert.Equal(t, ActionStop, p.Items[0].Action)
	assert.Equal(t, "c00000", p.Items[0].Name)
}

// BenchmarkCleanupDryRun10k is `devhost cleanup --dry-run` over 10,000
// registry entries: read and decode them all, and plan. Target: < 1 s.
func BenchmarkCleanupDryRun10k(b *testing.B) {
	h, _ := testHost(b)
	deployed := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	writeEntries(b, h, 10000, deployed)
	now := deployed.Add(10 * 24 * time.Hour)
	for b.Loop() {
		p, err := h.Plan(now)
		if err != nil || len(p.Items) != 10000 {
			b.Fatalf("plan: %v, %d items", err, len(p.Items))
		}
	}
}

// BenchmarkEnsureNoChange is the overhead of an ensure that changes
// nothing, with external commands answered instantly, on a devhost with
// 100 other containers. Target: < 50 ms.
func BenchmarkEnsureNoChange(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("containers=%d", n), func(b *testing.B) {
			h, _ := testHost(b)
			ctx := context.Background()
			req := EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Aliases: []string{"www"}, Caller: alice}
			if _, err := h.Ensure(ctx, req); err != nil {
				b.Fatal(err)
			}
			writeEntries(b, h, n, time.Now().UTC().Add(-time.Hour))
			// Make the others part of the applied state.
			if _, err := h.Ensure(ctx, req); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				res, err := h.Ensure(ctx, req)
				if err != nil || res.Built || res.Apply.Rebuilt {
					b.Fatalf("ensure: %v %+v", err, res)
				}
			}
		})
	}
}

func TestSyncAppliesHandEdits(t *testing.T) {
	h, fr := testHost(t)
	ctx := context.Background()
	_, err := h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	root := Caller{User: "root", Root: true}
	st, err := h.Sync(ctx, root)
	require.NoError(t, err)
	assert.False(t, st.Rebuilt, "nothing changed")

	// An admin adds an alias by hand.
	c, err := h.Reg.Get("shop")
	require.NoError(t, err)
	c.Aliases = []string{"www"}
	require.NoError(t, h.Reg.Put(c))
	_, err = h.Sync(ctx, alice)
	assert.ErrorIs(t, err, ErrDenied)
	st, err = h.Sync(ctx, root)
	require.NoError(t, err)
	assert.True(t, st.Rebuilt)
	assert.Equal(t, 2, fr.count("nixos-rebuild"))
	live, err := ReadSet(h.Cfg.GeneratedDir)
	require.NoError(t, err)
	assert.Contains(t, string(live.Files["containers/shop.nix"]), "www.shop.dev.example.com")
}

// A hand-edit that breaks an entry is refused as the admin's input (a
// *diag.Error naming the file and line), and neither the live set nor the
// lifecycle's record of the applied set changes.
func TestSyncRefusesBrokenEntry(t *testing.T) {
	h, fr := testHost(t)
	ctx := context.Background()
	_, err := h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	before, err := ReadSet(h.Cfg.GeneratedDir)
	require.NoError(t, err)
	applied, err := os.ReadFile(h.paths().applied())
	require.NoError(t, err)

	path := h.Reg.Path("shop")
	src, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, append(src, []byte("aliases = [\"WWW\"]\n")...), 0o644))

	_, err = h.Sync(ctx, Caller{User: "root", Root: true})
	var de *diag.Error
	require.ErrorAs(t, err, &de)
	require.NotEmpty(t, de.Diags)
	require.NotNil(t, de.Diags[0].Subject)
	assert.Equal(t, path, de.Diags[0].Subject.Filename)
	assert.Positive(t, de.Diags[0].Subject.Start.Line)
	assert.Contains(t, de.Files, path, "the entry's bytes, for the snippet")
	assert.Equal(t, 1, fr.count("nixos-rebuild"), "no rebuild")
	after, err := ReadSet(h.Cfg.GeneratedDir)
	require.NoError(t, err)
	assert.Equal(t, before.Digest(), after.Digest(), "the live set is untouched")
	applied2, err := os.ReadFile(h.paths().applied())
	require.NoError(t, err)
	assert.Equal(t, string(applied), string(applied2))
}

func TestOthersFailureDoesNotFailUnchangedEnsure(t *testing.T) {
	h, fr := testHost(t)
	ctx := context.Background()
	shop := EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice}
	_, err := h.Ensure(ctx, shop)
	require.NoError(t, err)
	_, err = h.Ensure(ctx, EnsureRequest{Name: "other", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)

	// A request's change of "other" is pending (committed and counted,
	// not applied).
	require.NoError(t, h.withRegistry(ctx, func() error {
		c, err := h.Reg.Get("other")
		if err != nil {
			return err
		}
		prev, err := h.entryBytes("other")
		if err != nil {
			return err
		}
		c.Aliases = []string{"broken"}
		if err := h.Reg.Put(c); err != nil {
			return err
		}
		gen, err := h.bump()
		if err != nil {
			return err
		}
		return h.recordRequest("ensure", "other", gen, prev, nil)
	}))
	fr.fail = map[string]error{"nixos-rebuild": errors.New("boom")}
	// shop's ensure changes nothing of its own: it runs the pending
	// rebuild, which fails, but that is other's failure.
	res, err := h.Ensure(ctx, shop)
	require.NoError(t, err)
	assert.True(t, res.Apply.Rebuilt)
	c, err := h.Reg.Get("other")
	require.NoError(t, err)
	assert.Empty(t, c.Aliases, "other's failed change was rolled back")
	s, err := h.Reg.Get("shop")
	require.NoError(t, err)
	assert.Empty(t, s.LastError)
}

// A keep flag set while an ensure of the same container builds must
// survive the ensure's commit (which writes back the entry it read before
// the build).
func TestKeepDuringEnsureIsNotLost(t *testing.T) {
	h, fr := testHost(t)
	ctx := context.Background()
	req := EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice}
	_, err := h.Ensure(ctx, req)
	require.NoError(t, err)

	keepDone := make(chan error, 1)
	fr.onBuild = func() {
		go func() {
			_, err := h.Keep(ctx, "shop", true, alice)
			keepDone <- err
		}()
		// Give a Keep that does not wait for the ensure time to finish
		// in the middle of the build.
		select {
		case err := <-keepDone:
			keepDone <- err
		case <-time.After(300 * time.Millisecond):
		}
	}
	req.Force = true
	_, err = h.Ensure(ctx, req)
	require.NoError(t, err)
	require.NoError(t, <-keepDone)
	c, err := h.Reg.Get("shop")
	require.NoError(t, err)
	assert.True(t, c.Keep, "the keep flag set during the ensure was lost")
}

// A destroy killed after its rebuild leaves the container's root and
// profile, which recovery cannot purge while an ensure of the same name
// holds its op lock. Such an ensure (here by another user) must start
// afresh, never on the destroyed container's data; one killed before its
// rebuild has the removal applied first.
func TestEnsureAfterKilledDestroyStartsAfresh(t *testing.T) {
	bob := Caller{User: "bob", Groups: []string{"users"}}
	for _, applied := range []bool{true, false} {
		t.Run(fmt.Sprintf("destroy applied %v", applied), func(t *testing.T) {
			h, fr := testHost(t)
			ctx := context.Background()
			_, err := h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice})
			require.NoError(t, err)
			secret := filepath.Join(h.Cfg.ContainersDir, "shop", "root", "secret")
			require.NoError(t, os.MkdirAll(filepath.Dir(secret), 0o700))
			require.NoError(t, os.WriteFile(secret, []byte("alice's"), 0o600))

			// Destroy, killed before its purge (or before its rebuild): the
			// op lock is held while it runs, so nothing else purges.
			op, err := lock(ctx, h.paths().opLock("shop"))
			require.NoError(t, err)
			var gen uint64
			require.NoError(t, h.withRegistry(ctx, func() error {
				if err := atomicfile.WriteFile(h.paths().purgeMarker("shop"), nil, 0o644); err != nil {
					return err
				}
				if err := h.Reg.Delete("shop"); err != nil {
					return err
				}
				gen, err = h.bump()
				return err
			}))
			if applied {
				_, err = h.Apply(ctx, gen)
				require.NoError(t, err)
			}
			op.unlock()
			rebuilds := fr.count("nixos-rebuild")

			res, err := h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: bob})
			require.NoError(t, err)
			assert.True(t, res.Created)
			assert.True(t, res.Built, "the destroyed container's profile was reused")
			assert.Equal(t, 1, ProfileGeneration(res.Profile))
			assert.Equal(t, "bob", res.Container.Owner)
			assert.NoFileExists(t, secret, "the new container got the destroyed one's root")
			want := rebuilds + 1
			if !applied {
				want++ // the removal is applied before the new container
			}
			assert.Equal(t, want, fr.count("nixos-rebuild"))
			declared, err := h.declared("shop")
			require.NoError(t, err)
			assert.True(t, declared, "the applied set declares the new container")
		})
	}
}

// A rebuild that failed and whose process died before rolling back leaves
// its changes in the registry, at a generation answered with that failure.
// `devhost apply` (Sync) and the nightly cleanup must still apply the
// registry, not repeat the old failure forever.
func TestSyncAfterFailureNotRolledBack(t *testing.T) {
	for _, how := range []string{"sync", "cleanup", "ensure"} {
		t.Run(how, func(t *testing.T) { testSyncAfterFailureNotRolledBack(t, how) })
	}
}

func testSyncAfterFailureNotRolledBack(t *testing.T, how string) {
	h, fr := testHost(t)
	ctx := context.Background()
	_, err := h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	// The state the dead rebuilder left: a change counted, its rebuild
	// failed and recorded, nothing rolled back, its intent in place.
	var gen uint64
	require.NoError(t, h.withRegistry(ctx, func() error {
		c, err := h.Reg.Get("shop")
		if err != nil {
			return err
		}
		c.Aliases = []string{"www"}
		if err := h.Reg.Put(c); err != nil {
			return err
		}
		gen, err = h.bump()
		return err
	}))
	a, err := h.readApplied()
	require.NoError(t, err)
	require.NoError(t, h.recordFailure(Failure{From: a.Gen, To: gen, Error: "evaluation failed", Time: h.now()}))
	require.NoError(t, writeJSON(h.paths().rebuildIntent(), RebuildIntent{PID: 1, Gen: gen}, 0o644))

	root := Caller{User: "root", Root: true}
	switch how {
	case "ensure":
		// Its owner retries the very change.
		res, err := h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Aliases: []string{"www"}, Caller: alice})
		require.NoError(t, err)
		assert.True(t, res.Apply.Rebuilt)
		assert.Greater(t, res.Apply.Gen, gen)
	case "cleanup":
		// The nightly cleanup, with nothing to clean up, applies it.
		plan, st, err := h.Cleanup(ctx, h.now(), root)
		require.NoError(t, err)
		assert.Empty(t, plan.Items)
		assert.True(t, st.Rebuilt)
		assert.Greater(t, st.Gen, gen)
	default:
		st, err := h.Sync(ctx, root)
		require.NoError(t, err)
		assert.True(t, st.Rebuilt)
		assert.Greater(t, st.Gen, gen)
	}
	assert.Equal(t, 2, fr.count("nixos-rebuild"))
	live, err := ReadSet(h.Cfg.GeneratedDir)
	require.NoError(t, err)
	assert.Contains(t, string(live.Files["containers/shop.nix"]), "www.shop.dev.example.com")
	hs, err := h.HostStatus()
	require.NoError(t, err)
	assert.False(t, hs.Pending)
	assert.False(t, hs.RebuildInterrupted)
}

// A rebuild that fails because its caller's context ended (a timeout, a
// cancelled request) is still rolled back completely: entry and profile.
func TestRollbackDespiteCancelledContext(t *testing.T) {
	h, fr := testHost(t)
	_, err := h.Ensure(context.Background(), EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	profile := h.profileTarget("shop")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fr.before = func(argv []string) {
		if argv[0] == "nixos-rebuild" {
			cancel()
		}
	}
	_, err = h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Aliases: []string{"www"}, Force: true, Caller: alice})
	var re *RebuildError
	require.ErrorAs(t, err, &re)
	assert.NotContains(t, err.Error(), "rolling back failed")
	c, err := h.Reg.Get("shop")
	require.NoError(t, err)
	assert.Empty(t, c.Aliases, "the failed change stayed in the registry")
	assert.Equal(t, profile, h.profileTarget("shop"), "the profile was not restored")
}

// An ensure killed while building a new container leaves its intent and
// its half-created entry. Re-running ensure of that name at once (as
// anyone does after a Ctrl-C) holds the name's op lock, so recoverOps
// cannot undo it: the ensure itself must, instead of taking the entry for
// an existing container.
func TestEnsureRightAfterKilledEnsureOfSameName(t *testing.T) {
	bob := Caller{User: "bob", Groups: []string{"users"}}
	killed := func(t *testing.T, h *Host) {
		deadEnsureOfShop(t, h, h.paths().intent("shop")).unlock()
	}
	t.Run("another user takes the name", func(t *testing.T) {
		h, _ := testHost(t)
		killed(t, h)
		res, err := h.Ensure(context.Background(), EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice})
		require.NoError(t, err)
		assert.True(t, res.Created)
		assert.Equal(t, "alice", res.Container.Owner)
	})
	t.Run("a failing retry leaves nothing registered", func(t *testing.T) {
		h, fr := testHost(t)
		killed(t, h)
		fr.fail = map[string]error{"nix-build": errors.New("error: syntax error")}
		_, err := h.Ensure(context.Background(), EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: bob})
		var be *BuildError
		require.ErrorAs(t, err, &be)
		_, err = h.Reg.Get("shop")
		assert.ErrorIs(t, err, registry.ErrNotFound, "an entry without a profile stayed registered")
		assert.NoFileExists(t, h.paths().intent("shop"))
	})
	t.Run("destroy", func(t *testing.T) {
		h, fr := testHost(t)
		killed(t, h)
		_, err := h.Destroy(context.Background(), "shop", bob)
		var nf *NotFoundError
		require.ErrorAs(t, err, &nf, "the half-created container is not there to destroy")
		assert.Zero(t, fr.count("nixos-rebuild"))
		assert.NoFileExists(t, h.paths().intent("shop"))
	})
}

// An ensure killed in phase 3 (entry written, intent not yet removed)
// whose change a rebuild applied before recovery undid it: recovery must
// count the undo, or the registry disagrees with the wanted and applied
// state and nobody notices.
func TestRecoveryCountsWhatItPutBack(t *testing.T) {
	h, _ := testHost(t)
	ctx := context.Background()
	for _, n := range []string{"shop", "other"} {
		_, err := h.Ensure(ctx, EnsureRequest{Name: n, Channel: "https://example.org/c.tar.xz", Caller: alice})
		require.NoError(t, err)
	}
	// The dead ensure of shop: intent, changed entry, section marker.
	op, err := lock(ctx, h.paths().opLock("shop"))
	require.NoError(t, err)
	require.NoError(t, h.withRegistry(ctx, func() error {
		in, err := h.newIntent("ensure", "shop", false)
		if err != nil {
			return err
		}
		if err := writeJSON(h.paths().intent("shop"), in, 0o644); err != nil {
			return err
		}
		c, err := h.Reg.Get("shop")
		if err != nil {
			return err
		}
		c.Aliases = []string{"www"}
		return h.Reg.Put(c)
	}))
	require.NoError(t, os.WriteFile(h.paths().section(), []byte("1"), 0o644))
	op.unlock()
	// Another process's rebuild applies it (the marker makes it count it).
	var gen uint64
	require.NoError(t, h.withRegistry(ctx, func() error {
		var err error
		gen, err = h.bump()
		return err
	}))
	_, err = h.Apply(ctx, gen)
	require.NoError(t, err)

	// Then a command that does not bump itself recovers shop.
	_, err = h.Keep(ctx, "other", false, alice)
	require.NoError(t, err)
	c, err := h.Reg.Get("shop")
	require.NoError(t, err)
	require.Empty(t, c.Aliases, "the interrupted change was not undone")
	w, err := h.readWanted()
	require.NoError(t, err)
	assert.Greater(t, w.Gen, gen, "the undo was not counted")
	hs, err := h.HostStatus()
	require.NoError(t, err)
	assert.True(t, hs.Pending, "the host runs the undone change and nothing is pending")
}

// A container's system.stateVersion is its first channel's NixOS release,
// evaluated with the build's restrictions, and stays when the channel moves
// to a newer release: NixOS reads the state on disk with it.
func TestStateVersionRecordedAtCreationAndKept(t *testing.T) {
	h, fr := testHost(t)
	ctx := context.Background()
	const (
		old   = "https://example.org/nixos-20.09/c.tar.xz"
		newer = "https://example.org/nixos-24.11/c.tar.xz"
	)
	fr.releases = map[string]string{old: "20.09", newer: "24.11"}
	var built []string // the configuration.nix of every build
	fr.before = func(argv []string) {
		for _, a := range argv {
			if p, ok := strings.CutPrefix(a, "nixos-config="); ok && argv[0] == "nix-build" {
				b, err := os.ReadFile(p)
				require.NoError(t, err)
				built = append(built, string(b))
			}
		}
	}
	_, err := h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: old, Caller: alice})
	require.NoError(t, err)
	c, err := h.Reg.Get("shop")
	require.NoError(t, err)
	assert.Equal(t, "20.09", c.StateVersion)
	require.Len(t, built, 1)
	assert.Contains(t, built[0], `system.stateVersion = lib.mkDefault "20.09";`)
	assert.Equal(t, [][]string{{"nix-instantiate", "--eval", "--json", "--expr", "(import <nixpkgs/lib>).trivial.release",
		"-I", "nixpkgs=" + old, "-I", old, "--option", "allowed-uris", old,
		"--option", "restrict-eval", "true", "--option", "nix-path", ""}},
		callsOf(fr, "nix-instantiate"), "evaluated like the build: restricted, no inherited search path")

	_, err = h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: newer, Caller: alice})
	require.NoError(t, err)
	c, err = h.Reg.Get("shop")
	require.NoError(t, err)
	assert.Equal(t, newer, c.Channel)
	assert.Equal(t, "20.09", c.StateVersion, "kept across the channel change")
	require.Len(t, built, 2)
	assert.Contains(t, built[1], `system.stateVersion = lib.mkDefault "20.09";`)
	assert.Len(t, callsOf(fr, "nix-instantiate"), 1, "a recorded state version is not evaluated again")
}

// An entry written before devhost recorded state versions gets the release
// of the channel of its next ensure, once.
func TestStateVersionRecordedForOldEntry(t *testing.T) {
	h, fr := testHost(t)
	ctx := context.Background()
	ch := "https://example.org/nixos-22.11/c.tar.xz"
	fr.releases = map[string]string{ch: "22.11"}
	_, err := h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: ch, Caller: alice})
	require.NoError(t, err)
	c, err := h.Reg.Get("shop")
	require.NoError(t, err)
	c.StateVersion = ""
	require.NoError(t, h.Reg.Put(c))

	_, err = h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: ch, Aliases: []string{"www"}, Caller: alice})
	require.NoError(t, err)
	c, err = h.Reg.Get("shop")
	require.NoError(t, err)
	assert.Equal(t, "22.11", c.StateVersion)
	assert.Len(t, callsOf(fr, "nix-instantiate"), 2)
}

// A channel whose evaluation fails or prints no release creates nothing.
func TestStateVersionUnknownCreatesNothing(t *testing.T) {
	for _, tt := range []struct {
		name    string
		release string
		fail    error
		want    string
	}{
		{name: "evaluation fails", fail: errors.New("error: file 'nixpkgs/lib' was not found"), want: "was not found"},
		{name: "not a release", release: `20.09"; evil = "`, want: "not a release"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, fr := testHost(t)
			ch := "https://example.org/c.tar.xz"
			fr.releases = map[string]string{ch: tt.release}
			if tt.fail != nil {
				fr.fail = map[string]error{"nix-instantiate": tt.fail}
			}
			_, err := h.Ensure(context.Background(), EnsureRequest{Name: "shop", Channel: ch, Caller: alice})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			_, err = h.Reg.Get("shop")
			assert.ErrorIs(t, err, registry.ErrNotFound)
			assert.Zero(t, fr.count("nix-build"))
		})
	}
}

func callsOf(f *fakeRunner, prog string) [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out [][]string
	for _, c := range f.calls {
		if c[0] == prog {
			out = append(out, c)
		}
	}
	return out
}

// TestValidateProvisionPositionAfterALongLine: real nix-instantiate quotes
// the 64 KiB line of the syntax error after its position; the position
// still reaches the diagnostic (before, only the last 64 KiB of its output
// were kept, which held the quoted line but not the position).
func TestValidateProvisionPositionAfterALongLine(t *testing.T) {
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		t.Skip("nix-instantiate not found: cannot check provision.nix parsing (CI installs nix-bin)")
	}
	h, _ := testHost(t)
	h.Run = &runner.Exec{Timeout: time.Minute}
	src := []byte("{ config, ... }:\n{\n  environment.etc.x.text = \"" + strings.Repeat("a", 64<<10) + "\"; y = ;\n}\n")
	req := &EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice, Provision: src}
	err := h.Validate(context.Background(), req, "provision.nix")
	var de *diag.Error
	require.ErrorAs(t, err, &de)
	d := de.Diags[0]
	assert.Contains(t, d.Summary, "syntax error")
	require.NotNil(t, d.Subject)
	assert.Equal(t, 3, d.Subject.Start.Line)
	assert.Equal(t, byte(';'), src[d.Subject.Start.Byte])
	assert.Less(t, len(d.Detail)+len(d.Summary), 4<<10)
}

// TestFailedRebuildUndoesOnlyFailedRequests is decision 7: a failed host
// rebuild restores the host (the previously applied live set), undoes the
// requests it covered (an existing container's entry, provision.nix and
// profile go back byte for byte; a new container's entry goes), and keeps
// what an admin wrote (a hand-edited alias, a hand-written entry) as it
// is, marked with the failure. The error names both groups and why. The
// next successful rebuild applies the kept entries and clears the marks.
// The old code rolled the hand edits back as well.
func TestFailedRebuildUndoesOnlyFailedRequests(t *testing.T) {
	h, fr := testHost(t)
	ctx := context.Background()
	root := Caller{User: "root", Root: true}
	shopReq := EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Provision: []byte("{ ... }: { }\n"), Caller: alice}
	_, err := h.Ensure(ctx, shopReq)
	require.NoError(t, err)
	_, err = h.Ensure(ctx, EnsureRequest{Name: "db", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)

	// shop carries a comment an admin wrote, applied.
	shopPath := h.Reg.Path("shop")
	src, err := os.ReadFile(shopPath)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(shopPath, append([]byte("# the shop of the demo, ask carol\n"), src...), 0o644))
	_, err = h.Sync(ctx, root)
	require.NoError(t, err)
	shopBefore, err := os.ReadFile(shopPath)
	require.NoError(t, err)
	provBefore, err := os.ReadFile(h.provisionPath("shop"))
	require.NoError(t, err)
	profileBefore := h.profileTarget("shop")
	liveBefore, err := ReadSet(h.Cfg.GeneratedDir)
	require.NoError(t, err)

	// Not applied yet: an alias added to db by hand, an entry written by
	// hand (as an import writes one).
	dbPath := h.Reg.Path("db")
	dbSrc, err := os.ReadFile(dbPath)
	require.NoError(t, err)
	dbEdited := regexp.MustCompile(`(?m)^(aliases\s*= )\[\]`).ReplaceAllString(string(dbSrc), `$1["admin"] # added by hand`)
	require.NotEqual(t, string(dbSrc), dbEdited, "fixture changed: %s", dbSrc)
	require.NoError(t, os.WriteFile(dbPath, []byte(dbEdited), 0o644))
	require.NoError(t, h.withRegistry(ctx, func() error {
		addr, err := h.Reg.Allocate(h.Cfg.Addresses, "legacy")
		if err != nil {
			return err
		}
		return h.Reg.Put(&registry.Container{Name: "legacy", Owner: "bob", Channel: "https://example.org/c.tar.xz",
			Address: addr, State: registry.Running, Created: h.now(), Deployed: h.now()})
	}))
	legacyBefore, err := os.ReadFile(h.Reg.Path("legacy"))
	require.NoError(t, err)

	// shop's owner changes shop, someone creates fresh: the rebuild fails.
	fr.fail = map[string]error{"nixos-rebuild": errors.New("error: attribute 'admin' missing")}
	shopReq.Aliases, shopReq.Provision = []string{"www"}, []byte("{ ... }: { services.nginx.enable = true; }\n")
	_, err = h.Ensure(ctx, shopReq)
	var re *RebuildError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, []string{"shop"}, re.Failure.RolledBack)
	assert.Equal(t, []string{"db", "legacy"}, re.Failure.Kept)
	assert.Contains(t, err.Error(), "rolled back, as the requests that changed them failed: shop\n")
	assert.Contains(t, err.Error(), "kept in the registry but not applied")
	assert.Contains(t, err.Error(), "db, legacy")
	assert.Contains(t, err.Error(), "attribute 'admin' missing")

	_, err = h.Ensure(ctx, EnsureRequest{Name: "fresh", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.ErrorAs(t, err, &re)
	assert.Equal(t, []string{"fresh"}, re.Failure.RolledBack)
	assert.Equal(t, []string{"db", "legacy"}, re.Failure.Kept)

	// The host: its previous live set.
	live, err := ReadSet(h.Cfg.GeneratedDir)
	require.NoError(t, err)
	assert.Equal(t, liveBefore.HostDigest(), live.HostDigest())
	// The failed requests: undone, byte for byte.
	got, err := os.ReadFile(shopPath)
	require.NoError(t, err)
	assert.Equal(t, string(shopBefore), string(got))
	got, err = os.ReadFile(h.provisionPath("shop"))
	require.NoError(t, err)
	assert.Equal(t, string(provBefore), string(got))
	assert.Equal(t, profileBefore, h.profileTarget("shop"))
	_, err = h.Reg.Get("fresh")
	assert.ErrorIs(t, err, registry.ErrNotFound)
	// What the admin wrote: as written, plus the mark.
	for name, want := range map[string]string{"db": dbEdited, "legacy": string(legacyBefore)} {
		got, err := os.ReadFile(h.Reg.Path(name))
		require.NoError(t, err)
		c, err := h.Reg.Get(name)
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(c.LastError, "host rebuild of "), c.LastError)
		assert.Contains(t, c.LastError, "attribute 'admin' missing")
		assert.Equal(t, withoutLastError(want), withoutLastError(string(got)), "%s: only last_error may differ", name)
	}

	// Fixed: the next apply applies them and clears the marks.
	fr.fail = nil
	st, err := h.Sync(ctx, root)
	require.NoError(t, err)
	assert.True(t, st.Rebuilt)
	live, err = ReadSet(h.Cfg.GeneratedDir)
	require.NoError(t, err)
	assert.Contains(t, string(live.Files["containers/db.nix"]), "admin.db.dev.example.com")
	assert.Contains(t, live.Files, "containers/legacy.nix")
	for _, name := range []string{"db", "legacy"} {
		got, err := os.ReadFile(h.Reg.Path(name))
		require.NoError(t, err)
		c, err := h.Reg.Get(name)
		require.NoError(t, err)
		assert.Empty(t, c.LastError, name)
		if name == "db" {
			assert.Equal(t, dbEdited, string(got), "the mark is gone, the admin's bytes stay")
		}
	}
}

// withoutLastError drops the last_error line of a registry entry.
func withoutLastError(src string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(src, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "last_error ") {
			b.WriteString(l)
		}
	}
	return b.String()
}

// A long rebuild error still leaves a mark the next successful rebuild
// recognises and clears (the entry keeps only the end of long errors).
func TestMarkOfLongErrorIsCleared(t *testing.T) {
	h, fr := testHost(t)
	ctx := context.Background()
	root := Caller{User: "root", Root: true}
	_, err := h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	c, err := h.Reg.Get("shop")
	require.NoError(t, err)
	c.Aliases = []string{"www"}
	require.NoError(t, h.Reg.Put(c))

	fr.fail = map[string]error{"nixos-rebuild": errors.New(strings.Repeat("error: while evaluating ü\n", 1000))}
	_, err = h.Sync(ctx, root)
	var re *RebuildError
	require.ErrorAs(t, err, &re)
	c, err = h.Reg.Get("shop")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(c.LastError, "host rebuild of "), c.LastError[:40])
	assert.LessOrEqual(t, len(c.LastError), 4000)

	fr.fail = nil
	_, err = h.Sync(ctx, root)
	require.NoError(t, err)
	c, err = h.Reg.Get("shop")
	require.NoError(t, err)
	assert.Empty(t, c.LastError)
	assert.Equal(t, []string{"www"}, c.Aliases)
}

func TestNameList(t *testing.T) {
	many := make([]string, 25)
	for i := range many {
		many[i] = fmt.Sprintf("c%d", i)
	}
	for _, tt := range []struct {
		in   []string
		want string
	}{
		{[]string{"a"}, "a"},
		{[]string{"a", "b"}, "a, b"},
		{many, strings.Join(many[:20], ", ") + " and 5 more"},
	} {
		assert.Equal(t, tt.want, nameList(tt.in))
	}
}

// TestEnsureGivesIPv6: once the host has network6, a new container gets
// an IPv6 address at ensure, an existing one at its next ensure (which
// changes its host part, so the host is rebuilt), and both keep them;
// the declaration and status carry them.
func TestEnsureGivesIPv6(t *testing.T) {
	h, fr := testHost(t)
	ctx := context.Background()
	old := EnsureRequest{Name: "old", Channel: "https://example.org/c.tar.xz", Caller: alice}
	_, err := h.Ensure(ctx, old)
	require.NoError(t, err)
	c, err := h.Reg.Get("old")
	require.NoError(t, err)
	assert.False(t, c.Address6.IsValid(), "no network6, no IPv6")

	h.Cfg.Addresses.Network6 = netip.MustParsePrefix("fd00:1::/64")
	h.Cfg.Addresses.HostAddress6 = netip.MustParseAddr("fd00:1::1")
	res, err := h.Ensure(ctx, EnsureRequest{Name: "new", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	assert.Equal(t, "fd00:1::2", res.Container.Address6.String())

	rebuilds := fr.count("nixos-rebuild")
	res, err = h.Ensure(ctx, old)
	require.NoError(t, err)
	assert.Equal(t, "fd00:1::3", res.Container.Address6.String())
	assert.Equal(t, "10.233.0.2", res.Container.Address.String(), "the IPv4 address stays")
	assert.Equal(t, rebuilds+1, fr.count("nixos-rebuild"), "the host part changed")
	decl, err := os.ReadFile(filepath.Join(h.Cfg.GeneratedDir, "containers", "old.nix"))
	require.NoError(t, err)
	assert.Contains(t, string(decl), `localAddress6 = "fd00:1::3";`)
	assert.Contains(t, string(decl), `hostAddress6 = "fd00:1::1";`)

	res, err = h.Ensure(ctx, old)
	require.NoError(t, err)
	assert.Equal(t, "fd00:1::3", res.Container.Address6.String(), "stable")
	assert.Equal(t, "unchanged", res.Unit)

	st, err := h.Status(ctx, "old")
	require.NoError(t, err)
	assert.Equal(t, "fd00:1::3", st.Address6)
	assert.Equal(t, "fd00:1::1", st.HostAddress6)
}

// TestFailedEnsureKeepsEntry: an existing container whose ensure fails
// after its IPv6 address was reserved gets its entry back byte for byte;
// the address it was about to get is not handed to anybody else while
// fresh ones remain.
func TestFailedEnsureKeepsEntry(t *testing.T) {
	h, fr := testHost(t)
	ctx := context.Background()
	req := EnsureRequest{Name: "old", Channel: "https://example.org/c.tar.xz", Caller: alice}
	_, err := h.Ensure(ctx, req)
	require.NoError(t, err)
	before, err := os.ReadFile(h.Reg.Path("old"))
	require.NoError(t, err)

	h.Cfg.Addresses.Network6 = netip.MustParsePrefix("fd00:1::/64")
	h.Cfg.Addresses.HostAddress6 = netip.MustParseAddr("fd00:1::1")
	fr.fail = map[string]error{"nix-build": errors.New("build failed")}
	_, err = h.Ensure(ctx, EnsureRequest{Name: "old", Channel: "https://example.org/d.tar.xz", Caller: alice})
	require.Error(t, err)
	c, err := h.Reg.Get("old")
	require.NoError(t, err)
	assert.False(t, c.Address6.IsValid(), "the failed request is undone")
	after, err := os.ReadFile(h.Reg.Path("old"))
	require.NoError(t, err)
	lastError := regexp.MustCompile(`(?m)^last_error .*$`)
	assert.Equal(t, lastError.ReplaceAllString(string(before), ""), lastError.ReplaceAllString(string(after), ""),
		"as before, but for the recorded error")
	assert.Contains(t, string(after), "build failed")

	fr.fail = nil
	res, err := h.Ensure(ctx, EnsureRequest{Name: "new", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	assert.Equal(t, "fd00:1::3", res.Container.Address6.String(), "fd00:1::2 is not reused while fresh addresses remain")
}
