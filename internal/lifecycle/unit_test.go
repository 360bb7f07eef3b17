package lifecycle

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/limits"
	"github.com/flyingcircusio/devhost/internal/registry"
)

// TestUnitRestart: a running container is restarted exactly when what its
// instance of NixOS' container@ template runs with changed (addresses in
// its conf file, limits in its drop-in), which the host's switch does not
// apply to a running instance; its aliases or keys are not that. A change
// of its own is restarted by its ensure; one by the host's configuration
// (default limits, IPv6) by the rebuild that applies it, once, and only
// where the container runs.
func TestUnitRestart(t *testing.T) {
	h, fr := testHost(t)
	ctx := context.Background()
	root := Caller{User: "root", Root: true}
	req := func(mod func(*EnsureRequest)) EnsureRequest {
		r := EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice}
		if mod != nil {
			mod(&r)
		}
		return r
	}
	_, err := h.Ensure(ctx, req(nil))
	require.NoError(t, err)
	_, err = h.Ensure(ctx, EnsureRequest{Name: "halted", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	halted, err := h.Reg.Get("halted")
	require.NoError(t, err)
	halted.State = registry.Stopped
	require.NoError(t, h.Reg.Put(halted)) // as the cleanup's stop leaves it

	for _, tt := range []struct {
		name   string
		host   func() // a change of the host's configuration first
		ensure func(*EnsureRequest)
		apply  bool       // then `devhost apply`
		want   [][]string // restarts, by whom they were asked
		unit   string     // the ensure's unit result
	}{
		{name: "unchanged", unit: "unchanged"},
		{name: "aliases", ensure: func(r *EnsureRequest) { r.Aliases = []string{"www"} }, unit: "switched"},
		{name: "own limits", ensure: func(r *EnsureRequest) { r.SetLimits, r.Limits = true, limits.Limits{MemoryMax: "1G"} },
			want: [][]string{{"restart", "container@shop.service"}}, unit: "restarted"},
		{name: "host's default limits, applied", host: func() { h.Cfg.Limits.TasksMax = 512 }, apply: true,
			want: [][]string{{"try-restart", "container@shop.service"}}},
		{name: "host's default limits with an ensure of its own", host: func() { h.Cfg.Limits.TasksMax = 256 },
			ensure: func(r *EnsureRequest) { r.Aliases = []string{"shop"} },
			want:   [][]string{{"restart", "container@shop.service"}}, unit: "restarted"},
		{name: "IPv6", host: func() {
			h.Cfg.Addresses.Network6 = netip.MustParsePrefix("fd00:d::/64")
			h.Cfg.Addresses.HostAddress6 = netip.MustParseAddr("fd00:d::1")
		}, ensure: func(*EnsureRequest) {}, want: [][]string{{"restart", "container@shop.service"}}, unit: "restarted"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(restarts(fr))
			if tt.host != nil {
				tt.host()
				h.Render = &Renderer{Cfg: h.Cfg, Templates: h.Render.Templates}
			}
			if tt.ensure != nil || !tt.apply {
				res, err := h.Ensure(ctx, req(tt.ensure))
				require.NoError(t, err)
				assert.Equal(t, tt.unit, res.Unit)
			}
			if tt.apply {
				st, err := h.Sync(ctx, root)
				require.NoError(t, err)
				assert.Equal(t, []string{"shop"}, st.Restarted, "halted is stopped")
				assert.Empty(t, st.RestartErr)
			}
			assert.Equal(t, tt.want, restarts(fr)[before:])
		})
	}
}

// TestUnitRestartFailure: a restart that fails leaves the rebuild
// applied and says why.
func TestUnitRestartFailure(t *testing.T) {
	h, fr := testHost(t)
	ctx := context.Background()
	_, err := h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	h.Cfg.Limits.MemoryMax = "4G"
	h.Render = &Renderer{Cfg: h.Cfg, Templates: h.Render.Templates}
	fr.fail = map[string]error{"systemctl": errors.New("Job for container@shop.service failed")}
	st, err := h.Sync(ctx, Caller{User: "root", Root: true})
	require.NoError(t, err)
	assert.Empty(t, st.Restarted)
	assert.Contains(t, st.RestartErr, "Job for container@shop.service failed")
	a, err := h.readApplied()
	require.NoError(t, err)
	assert.Equal(t, st.Gen, a.Gen)
}

// TestRolledBackContainerIsStopped: a new container whose rebuild failed
// may have been started by the switch (machines.target wants it), and the
// rollback's switch leaves an instance of NixOS' container@ template
// running: its unit is stopped before its remains are removed.
func TestRolledBackContainerIsStopped(t *testing.T) {
	h, fr := testHost(t)
	fr.fail = map[string]error{"nixos-rebuild": errors.New("activation failed")}
	root := filepath.Join(h.containersDir(), "shop")
	fr.before = func(argv []string) {
		if argv[0] == "nixos-rebuild" {
			// As the switch's start of the new container would.
			_ = os.MkdirAll(root, 0o755)
		}
	}
	_, err := h.Ensure(context.Background(), EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice})
	var re *RebuildError
	require.ErrorAs(t, err, &re)
	assert.Contains(t, callsOf(fr, "systemctl"), []string{"systemctl", "stop", "container@shop.service"})
	assert.NoDirExists(t, root)
}

// TestPendingRestarts: the restarts a rebuild owes are recorded before
// the rebuild counts as applied, so that a devhost that dies (or is
// interrupted) between the two leaves them to the next command that
// applies anything, which runs them once and drops the record.
func TestPendingRestarts(t *testing.T) {
	h, fr := testHost(t)
	ctx := context.Background()
	root := Caller{User: "root", Root: true}
	for _, n := range []string{"shop", "blog"} {
		_, err := h.Ensure(ctx, EnsureRequest{Name: n, Channel: "https://example.org/c.tar.xz", Caller: alice})
		require.NoError(t, err)
	}

	// Interrupted while restarting: the record stays.
	h.Cfg.Limits.MemoryMax = "4G"
	h.Render = &Renderer{Cfg: h.Cfg, Templates: h.Render.Templates}
	cctx, cancel := context.WithCancel(ctx)
	fr.before = func(argv []string) {
		if argv[0] == "systemctl" && argv[1] == "try-restart" {
			cancel() // ^C while the restart runs
		}
	}
	st, err := h.Sync(cctx, root)
	require.NoError(t, err, "the rebuild stands")
	assert.Empty(t, st.Restarted)
	assert.NotEmpty(t, st.RestartErr)
	assert.FileExists(t, h.paths().pendingRestarts())
	hs, err := h.HostStatus()
	require.NoError(t, err)
	assert.Equal(t, []string{"blog", "shop"}, hs.RestartsPending)
	fr.before = nil

	// The next command that applies anything restarts them, once.
	n := len(restarts(fr))
	_, err = h.Ensure(ctx, EnsureRequest{Name: "other", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	assert.Equal(t, [][]string{{"try-restart", "container@blog.service", "container@shop.service"}}, restarts(fr)[n:])
	assert.NoFileExists(t, h.paths().pendingRestarts())
	hs, err = h.HostStatus()
	require.NoError(t, err)
	assert.Empty(t, hs.RestartsPending)
	st, err = h.Sync(ctx, root)
	require.NoError(t, err)
	assert.Empty(t, st.Restarted)
	assert.Len(t, restarts(fr), n+1)

	// A leader that died after recording the applied generation (the
	// record as it left it): the next Apply, even one with nothing to
	// rebuild, restarts them.
	require.NoError(t, h.notePendingRestarts([]string{"shop"}))
	st, err = h.Sync(ctx, root)
	require.NoError(t, err)
	assert.Equal(t, []string{"shop"}, st.Restarted)
	assert.Equal(t, []string{"try-restart", "container@shop.service"}, restarts(fr)[n+1])
	assert.NoFileExists(t, h.paths().pendingRestarts())
}

// restarts are the systemctl restarts and try-restarts fr was asked for,
// without argv[0].
func restarts(fr *fakeRunner) [][]string {
	var out [][]string
	for _, c := range callsOf(fr, "systemctl") {
		if c[1] == "restart" || c[1] == "try-restart" {
			out = append(out, c[1:])
		}
	}
	return out
}
