package lifecycle

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/generator"
	"github.com/flyingcircusio/devhost/internal/hostconfig"
)

// fullRender is the set generator.Generate makes of the whole registry.
func fullRender(t *testing.T, h *Host) *generator.Set {
	t.Helper()
	cs, err := h.Reg.LoadAll()
	require.NoError(t, err)
	s, err := generator.Generate(h.Cfg, cs, h.Render.Templates)
	require.NoError(t, err)
	return s
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Stat(p)
	require.NoError(t, err)
	return fi.Sys().(*syscall.Stat_t).Ino
}

// Changes applied one by one leave exactly the set a full render of the
// registry gives, byte for byte, and `apply --full` changes nothing then.
// A change rewrites only the files it changes: the other containers'
// files keep their inodes (the whole set used to be rewritten and swapped).
func TestIncrementalSetIsTheFullRender(t *testing.T) {
	h, fr := testHost(t)
	ctx := context.Background()
	for _, n := range []string{"shop", "blog", "wiki"} {
		_, err := h.Ensure(ctx, EnsureRequest{Name: n, Channel: "https://example.org/c.tar.xz", Caller: alice})
		require.NoError(t, err)
	}
	blog := inode(t, filepath.Join(h.Cfg.GeneratedDir, generator.HostFile("blog")))
	blogConf := inode(t, filepath.Join(h.Cfg.GeneratedDir, generator.ConfigurationFile("blog")))

	_, err := h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Aliases: []string{"www"}, Caller: alice})
	require.NoError(t, err)
	_, err = h.Keep(ctx, "wiki", true, alice)
	require.NoError(t, err)
	_, err = h.Destroy(ctx, "wiki", alice)
	require.NoError(t, err)

	assert.Equal(t, blog, inode(t, filepath.Join(h.Cfg.GeneratedDir, generator.HostFile("blog"))), "an unchanged container's file was rewritten")
	assert.Equal(t, blogConf, inode(t, filepath.Join(h.Cfg.GeneratedDir, generator.ConfigurationFile("blog"))))
	live, err := ReadSet(h.Cfg.GeneratedDir)
	require.NoError(t, err)
	want := fullRender(t, h)
	assert.Equal(t, want.Paths(), live.Paths())
	for _, p := range want.Paths() {
		assert.Equal(t, string(want.Files[p]), string(live.Files[p]), p)
	}
	checkSetEvaluates(t, h)

	rebuilds := fr.count("nixos-rebuild")
	st, err := h.SyncFull(ctx, Caller{User: "root", Root: true})
	require.NoError(t, err)
	assert.False(t, st.Wrote, "a full render found differences")
	assert.Equal(t, rebuilds, fr.count("nixos-rebuild"))
}

// `apply --full` repairs a set changed by hand: a changed file is written
// again, a stray file removed; plain apply (incremental) does not look.
func TestSyncFullRepairsTheSet(t *testing.T) {
	h, _ := testHost(t)
	ctx := context.Background()
	root := Caller{User: "root", Root: true}
	_, err := h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	hostFile := filepath.Join(h.Cfg.GeneratedDir, generator.HostFile("shop"))
	stray := filepath.Join(h.Cfg.GeneratedDir, "containers", "gone.nix")
	require.NoError(t, os.WriteFile(hostFile, []byte("{ }\n"), 0o644))
	require.NoError(t, os.WriteFile(stray, []byte("{ }\n"), 0o644))

	_, err = h.Sync(ctx, root)
	require.NoError(t, err)
	b, err := os.ReadFile(hostFile)
	require.NoError(t, err)
	assert.Equal(t, "{ }\n", string(b), "plain apply renders only changed entries")

	st, err := h.SyncFull(ctx, root)
	require.NoError(t, err)
	assert.True(t, st.Wrote)
	assert.True(t, st.Rebuilt)
	live, err := ReadSet(h.Cfg.GeneratedDir)
	require.NoError(t, err)
	assert.Equal(t, fullRender(t, h).Files, live.Files)
	assert.NoFileExists(t, stray)
}

// A template or host configuration change makes the next rebuild render
// everything (the set index records the render key).
func TestRenderKeyChangeRendersEverything(t *testing.T) {
	h, _ := testHost(t)
	ctx := context.Background()
	for _, n := range []string{"shop", "blog"} {
		_, err := h.Ensure(ctx, EnsureRequest{Name: n, Channel: "https://example.org/c.tar.xz", Caller: alice})
		require.NoError(t, err)
	}
	h.Cfg.Nginx.ClientMaxBodySize = "7m"
	st, err := h.Sync(ctx, Caller{User: "root", Root: true})
	require.NoError(t, err)
	assert.True(t, st.Rebuilt)
	live, err := ReadSet(h.Cfg.GeneratedDir)
	require.NoError(t, err)
	assert.Contains(t, string(live.Files[generator.HostFile("blog")]), "client_max_body_size 7m;")
	assert.Equal(t, fullRender(t, h).Files, live.Files)
}

// Dropping network6 is a host configuration change like any other: the
// entries keep their IPv6 addresses, but the next rebuild renders every
// declaration without them (there is no host address for the links).
func TestRenderKeyCoversIPv6(t *testing.T) {
	h, _ := testHost(t)
	ctx := context.Background()
	h.Cfg.Addresses.Network6 = netip.MustParsePrefix("fd00:1::/64")
	h.Cfg.Addresses.HostAddress6 = netip.MustParseAddr("fd00:1::1")
	for _, n := range []string{"shop", "blog"} {
		_, err := h.Ensure(ctx, EnsureRequest{Name: n, Channel: "https://example.org/c.tar.xz", Caller: alice})
		require.NoError(t, err)
	}
	live, err := ReadSet(h.Cfg.GeneratedDir)
	require.NoError(t, err)
	require.Contains(t, string(live.Files[generator.HostFile("blog")]), "localAddress6")

	h.Cfg.Addresses.Network6, h.Cfg.Addresses.HostAddress6 = netip.Prefix{}, netip.Addr{}
	st, err := h.Sync(ctx, Caller{User: "root", Root: true})
	require.NoError(t, err)
	assert.True(t, st.Rebuilt)
	live, err = ReadSet(h.Cfg.GeneratedDir)
	require.NoError(t, err)
	assert.NotContains(t, string(live.Files[generator.HostFile("blog")]), "localAddress6")
	assert.Equal(t, fullRender(t, h).Files, live.Files)
}

// Every host setting the generated set depends on is part of the render
// key: after a change, the live set is the full render again. The first
// list of settings in the key missed these (the set kept the old limits,
// alias spellings and certificate plan).
func TestRenderKeyCoversEveryHostSetting(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change func(*hostconfig.Config)
	}{
		{"default limits", func(c *hostconfig.Config) { c.Limits.MemoryMax = "3G" }},
		{"alias style", func(c *hostconfig.Config) { c.AliasStyle = hostconfig.AliasFlat }},
		{"acme challenge", func(c *hostconfig.Config) {
			c.ACME.Enable, c.ACME.Challenge, c.ACME.DNSProvider = true, hostconfig.DNS01, "rfc2136"
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := testHost(t)
			ctx := context.Background()
			_, err := h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Aliases: []string{"www"}, Caller: alice})
			require.NoError(t, err)
			before, err := ReadSet(h.Cfg.GeneratedDir)
			require.NoError(t, err)
			tt.change(h.Cfg)
			_, err = h.Sync(ctx, Caller{User: "root", Root: true})
			require.NoError(t, err)
			live, err := ReadSet(h.Cfg.GeneratedDir)
			require.NoError(t, err)
			want := fullRender(t, h).Files
			require.NotEqual(t, before.Files, want, "the change shows in the set")
			assert.Equal(t, want, live.Files)
		})
	}
}

// A rebuild killed after patching part of the set leaves its journal; the
// next rebuild patches the previous contents back before anything else,
// forces the rebuild, and ends with the registry's set.
func TestInterruptedPatchIsUndone(t *testing.T) {
	h, fr := testHost(t)
	ctx := context.Background()
	_, err := h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	before, err := ReadSet(h.Cfg.GeneratedDir)
	require.NoError(t, err)

	// The dead rebuilder: its intent, its journal, a file it replaced, a
	// file it added, and the temporary file of the write it was in.
	require.NoError(t, writeJSON(h.paths().rebuildIntent(), RebuildIntent{Gen: 99, PID: 1}, 0o644))
	idx := generator.IndexFile
	prev := string(before.Files[idx])
	require.NoError(t, writeJSON(h.paths().setJournal(), setJournal{Prev: map[string]*string{idx: &prev, "containers/half.nix": nil}}, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(h.Cfg.GeneratedDir, idx), []byte("half"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(h.Cfg.GeneratedDir, "containers", "half.nix"), []byte("{ }"), 0o644))
	tmp := filepath.Join(h.Cfg.GeneratedDir, ".default.nix.tmp123")
	require.NoError(t, os.WriteFile(tmp, []byte("x"), 0o644))

	// Meanwhile the applied state is the journal's.
	declared, err := h.declared("half")
	require.NoError(t, err)
	assert.False(t, declared)

	l, err := lock(ctx, h.paths().rebuildLock())
	require.NoError(t, err)
	require.NoError(t, h.recoverRebuild(ctx))
	l.unlock()
	live, err := ReadSet(h.Cfg.GeneratedDir)
	require.NoError(t, err)
	assert.Equal(t, before.Files, live.Files, "the set is the previous one again")
	assert.NoFileExists(t, tmp)
	assert.NoFileExists(t, h.paths().setJournal())
	a, err := h.readApplied()
	require.NoError(t, err)
	assert.True(t, a.Forced)

	rebuilds := fr.count("nixos-rebuild")
	_, err = h.Sync(ctx, Caller{User: "root", Root: true})
	require.NoError(t, err)
	assert.Equal(t, rebuilds+1, fr.count("nixos-rebuild"), "the unknown outcome forces a rebuild")
}

// A failed rebuild patches the live set back from the journal: only the
// files it changed, the others keep their inodes.
func TestFailedRebuildRestoresOnlyChangedFiles(t *testing.T) {
	h, fr := testHost(t)
	ctx := context.Background()
	_, err := h.Ensure(ctx, EnsureRequest{Name: "blog", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	before, err := ReadSet(h.Cfg.GeneratedDir)
	require.NoError(t, err)
	blog := inode(t, filepath.Join(h.Cfg.GeneratedDir, generator.HostFile("blog")))

	fr.mu.Lock()
	fr.fail = map[string]error{"nixos-rebuild": assert.AnError}
	fr.mu.Unlock()
	_, err = h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice})
	var re *RebuildError
	require.ErrorAs(t, err, &re)
	live, err := ReadSet(h.Cfg.GeneratedDir)
	require.NoError(t, err)
	assert.Equal(t, before.Files, live.Files)
	assert.Equal(t, blog, inode(t, filepath.Join(h.Cfg.GeneratedDir, generator.HostFile("blog"))))
	assert.NoFileExists(t, h.paths().setJournal())
}

// checkSetEvaluates has real Nix evaluate the live set's index, which
// imports every container's file: a patched set must be one whole set.
func checkSetEvaluates(t *testing.T, h *Host) {
	t.Helper()
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		t.Skip("nix-instantiate not found (CI installs nix-bin)")
	}
	expr := `builtins.attrNames (import ` + filepath.Join(h.Cfg.GeneratedDir, generator.IndexFile) + `).containers`
	out, err := exec.Command("nix-instantiate", "--eval", "--strict", "--json", "-E", expr).CombinedOutput()
	require.NoError(t, err, "%s", out)
	cs, err := h.Reg.LoadAll()
	require.NoError(t, err)
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = `"` + c.Name + `"`
	}
	assert.Equal(t, "["+strings.Join(names, ",")+"]", strings.TrimSpace(string(out)))
}

// A rebuild starting on an idle host holds the rebuild lock for the batch
// window before it reads the registry: a request committed within it
// shares that rebuild rather than waiting for another.
func TestBatchWindowSharesTheFirstRebuild(t *testing.T) {
	h, fr := testHost(t)
	h.Cfg.Commands.RebuildBatchWindow = time.Minute
	// The window ends once blog is committed: on a loaded machine blog's
	// ensure can take longer than any timer the test could afford.
	windowEnd := make(chan struct{})
	h.batchTick = windowEnd
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		_, err := h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice})
		done <- err
	}()
	waitRebuildLock(t, h) // shop's rebuild is in its window
	blog := ensureAsync(ctx, h, "blog")
	waitWanted(t, h, 2) // blog is committed (shop's generation is 1)
	close(windowEnd)
	r := <-blog
	require.NoError(t, r.err)
	require.NoError(t, <-done)
	assert.False(t, r.res.Apply.Rebuilt, "blog waited for a rebuild of its own")
	assert.Equal(t, 1, fr.count("nixos-rebuild"))
}

// While requests keep being committed, the leader holds its rebuild back
// for another batch window, at most maxBatchWindows in all: a burst whose
// commits spread over several windows shares one rebuild, and a steady
// stream of requests cannot hold it back for longer.
func TestBatchWindowGrowsWhileRequestsArrive(t *testing.T) {
	h, fr := testHost(t)
	h.Cfg.Commands.RebuildBatchWindow = time.Minute
	tick := make(chan struct{})
	h.batchTick = tick
	ctx := context.Background()
	ensure := func(name string) <-chan error {
		done := make(chan error, 1)
		go func() {
			_, err := h.Ensure(ctx, EnsureRequest{Name: name, Channel: "https://example.org/c.tar.xz", Caller: alice})
			done <- err
		}()
		return done
	}
	dones := []<-chan error{ensure("shop")}
	waitWanted(t, h, 1)
	waitRebuildLock(t, h) // shop's rebuild is in its first window
	// One request committed in each window: the leader takes another
	// window after each, until the last.
	for i, name := range []string{"blog", "wiki", "docs", "news"} {
		dones = append(dones, ensure(name))
		waitWanted(t, h, uint64(i+2))
		select {
		case tick <- struct{}{}:
		case <-time.After(30 * time.Second):
			t.Fatalf("the leader did not wait for window %d, although %s was committed in window %d", i+1, name, i+1)
		}
	}
	for _, done := range dones {
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Fatalf("the leader waited for more than %d windows", maxBatchWindows)
		}
	}
	assert.Equal(t, 1, fr.count("nixos-rebuild"), "the burst shares one rebuild")
}

// A request waiting for the rebuild lock returns as soon as a rebuild has
// applied its generation, even while another process holds the lock (the
// next leader, which took it first and now runs its own rebuild): flock
// grants no order, and a waiter that had to win the lock to learn its
// change was applied would wait through rebuilds that do not concern it.
func TestWaiterReturnsWhenApplied(t *testing.T) {
	h, fr := testHost(t)
	ctx := context.Background()
	// The test plays the other process: it holds the rebuild lock.
	rl, free, err := tryLock(h.paths().rebuildLock())
	require.NoError(t, err)
	require.True(t, free)
	defer rl.unlock()
	shop := ensureAsync(ctx, h, "shop")
	waitWanted(t, h, 1) // shop is committed and waits for the lock
	// The lock holder's rebuild applies shop's generation; the lock stays
	// held, as when the next leader takes it the instant it is released.
	var st ApplyStats
	require.NoError(t, h.rebuildLocked(ctx, 1, &st))
	require.True(t, st.Rebuilt)
	select {
	case r := <-shop:
		require.NoError(t, r.err)
		assert.False(t, r.res.Apply.Rebuilt)
	case <-time.After(30 * time.Second):
		t.Fatal("shop's ensure still waits for the rebuild lock although its generation is applied")
	}
	assert.Equal(t, 1, fr.count("nixos-rebuild"))
}

// ensureResult is what an Ensure run by ensureAsync returned.
type ensureResult struct {
	res *EnsureResult
	err error
}

// ensureAsync runs alice's ensure of a new container name in a goroutine.
func ensureAsync(ctx context.Context, h *Host, name string) <-chan ensureResult {
	out := make(chan ensureResult, 1)
	go func() {
		res, err := h.Ensure(ctx, EnsureRequest{Name: name, Channel: "https://example.org/c.tar.xz", Caller: alice})
		out <- ensureResult{res, err}
	}()
	return out
}

// waitRebuildLock waits until a rebuild holds the rebuild lock.
func waitRebuildLock(t *testing.T, h *Host) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "no rebuild took the lock")
		l, free, err := tryLock(h.paths().rebuildLock())
		require.NoError(t, err)
		if !free {
			return
		}
		l.unlock()
	}
}

// A set journal as a devhost before the base64 journal wrote it (the
// previous contents as strings) is undone all the same: an upgrade may
// find one a killed rebuild left.
func TestUndoSetReadsTheStringJournal(t *testing.T) {
	h, _ := testHost(t)
	ctx := context.Background()
	_, err := h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	prev := "{ containers = { }; }\n"
	j := map[string]any{"prev": map[string]*string{generator.IndexFile: &prev, generator.HostFile("new"): nil}, "names": []string{"shop"}}
	require.NoError(t, writeJSON(h.paths().setJournal(), j, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(h.Cfg.GeneratedDir, generator.HostFile("new")), []byte("{ }\n"), 0o644))

	b, err := h.appliedFile(generator.IndexFile)
	require.NoError(t, err)
	assert.Equal(t, prev, string(b), "the applied index is the journal's previous one")
	require.NoError(t, h.undoSet())
	b, err = os.ReadFile(filepath.Join(h.Cfg.GeneratedDir, generator.IndexFile))
	require.NoError(t, err)
	assert.Equal(t, prev, string(b))
	assert.NoFileExists(t, filepath.Join(h.Cfg.GeneratedDir, generator.HostFile("new")))
	assert.NoFileExists(t, h.paths().setJournal())
}

// waitWanted waits until the wanted generation reaches gen: the request
// counted as gen is committed.
func waitWanted(t *testing.T, h *Host, gen uint64) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "generation %d was never counted", gen)
		w, err := h.readWanted()
		require.NoError(t, err)
		if w.Gen >= gen {
			return
		}
	}
}
