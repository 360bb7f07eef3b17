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

// TestUnitChanged: a running container is restarted exactly when what its
// instance of NixOS' container@ template runs with changed (addresses in
// its conf file, limits in its drop-in), which the host's switch does not
// apply to a running instance; its aliases or keys are not that.
func TestUnitChanged(t *testing.T) {
	h, _ := testHost(t)
	ctx := context.Background()
	_, err := h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	b, err := os.ReadFile(h.Reg.Path("shop"))
	require.NoError(t, err)
	prev := string(b)
	cur, err := h.Reg.Get("shop")
	require.NoError(t, err)
	broken := "not = [an entry"

	for _, tt := range []struct {
		name string
		prev *string
		edit func(c *registry.Container)
		want bool
	}{
		{"new container", nil, func(*registry.Container) {}, false},
		{"unchanged", &prev, func(*registry.Container) {}, false},
		{"aliases", &prev, func(c *registry.Container) { c.Aliases = []string{"www"} }, false},
		{"keep", &prev, func(c *registry.Container) { c.Keep = true }, false},
		{"IPv6 address", &prev, func(c *registry.Container) { c.Address6 = netip.MustParseAddr("fd00::2") }, true},
		{"address", &prev, func(c *registry.Container) { c.Address = c.Address.Next() }, true},
		{"limits", &prev, func(c *registry.Container) { c.Limits = limits.Limits{MemoryMax: "1G"} }, true},
		{"unreadable entry", &broken, func(*registry.Container) {}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := *cur
			tt.edit(&c)
			assert.Equal(t, tt.want, h.unitChanged(tt.prev, &c))
		})
	}
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
