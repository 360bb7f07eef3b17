package lifecycle

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/registry"
)

// The temporary file of an atomic write whose process died is removed by
// the next registry-lock holder: its writer held the registry section, so
// the section marker is left too. Sync removes them in any case.
func TestStaleTempsOfADeadSectionAreRemoved(t *testing.T) {
	h, _ := testHost(t)
	ctx := context.Background()
	req := EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice}
	_, err := h.Ensure(ctx, req)
	require.NoError(t, err)
	stale := func() []string {
		return []string{
			filepath.Join(h.Reg.Dir(), ".shop.hcl.tmp123"),
			filepath.Join(h.paths().opsDir(), ".shop.json.tmp123"),
			filepath.Join(h.paths().root, ".wanted.json.tmp123"),
		}
	}
	for _, p := range stale() {
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte("half"), 0o644))
	}
	require.NoError(t, os.WriteFile(h.paths().section(), []byte("1"), 0o644)) // its writer died in its section
	_, err = h.Ensure(ctx, req)
	require.NoError(t, err)
	for _, p := range stale() {
		assert.NoFileExists(t, p)
	}

	for _, p := range stale() {
		require.NoError(t, os.WriteFile(p, []byte("half"), 0o644))
	}
	_, err = h.Sync(ctx, Caller{User: "root", Root: true})
	require.NoError(t, err)
	for _, p := range stale() {
		assert.NoFileExists(t, p)
	}
}

// An intent an older devhost left in ops/ (where the op locks are, one
// per container) is recovered like one in intents/: by the next command,
// which lists ops/ only when it changed since, and by an ensure of the
// same name, which holds the name's op lock itself. One whose op lock is
// held (its older devhost still runs) stays until its process is gone.
func TestLegacyIntentsAreRecovered(t *testing.T) {
	dead := func(t *testing.T, h *Host) *fileLock {
		return deadEnsureOfShop(t, h, h.paths().legacyIntent("shop"))
	}
	ensure := func(t *testing.T, h *Host, name string) *EnsureResult {
		t.Helper()
		res, err := h.Ensure(context.Background(), EnsureRequest{Name: name, Channel: "https://example.org/c.tar.xz", Caller: alice})
		require.NoError(t, err)
		return res
	}
	t.Run("the next command", func(t *testing.T) {
		h, _ := testHost(t)
		dead(t, h).unlock()
		ensure(t, h, "blog")
		_, err := h.Reg.Get("shop")
		require.ErrorIs(t, err, registry.ErrNotFound, "the half-created entry was not undone")
		assert.NoFileExists(t, h.paths().legacyIntent("shop"))
		assert.NoFileExists(t, h.paths().intent("shop"))
		assert.FileExists(t, h.paths().opsScanned())
	})
	t.Run("an ensure of the same name", func(t *testing.T) {
		h, _ := testHost(t)
		dead(t, h).unlock()
		res := ensure(t, h, "shop")
		assert.True(t, res.Created)
		assert.Equal(t, "alice", res.Container.Owner, "the dead ensure's entry was taken for bob's container")
	})
	t.Run("a live older devhost", func(t *testing.T) {
		h, _ := testHost(t)
		op := dead(t, h)
		ensure(t, h, "blog")
		assert.FileExists(t, h.paths().legacyIntent("shop"), "the intent of a live process was moved")
		c, err := h.Reg.Get("shop")
		require.NoError(t, err)
		assert.Equal(t, "bob", c.Owner)
		op.unlock() // it died
		ensure(t, h, "blog")
		_, err = h.Reg.Get("shop")
		require.ErrorIs(t, err, registry.ErrNotFound)
	})
}

// deadEnsureOfShop leaves what bob's ensure of a new container shop,
// killed after writing its entry, leaves: its intent (at intentPath) and
// the entry. It returns shop's op lock, held: releasing it is the
// process's death.
func deadEnsureOfShop(t *testing.T, h *Host, intentPath string) *fileLock {
	t.Helper()
	ctx := context.Background()
	op, err := lock(ctx, h.paths().opLock("shop"))
	require.NoError(t, err)
	require.NoError(t, h.withRegistry(ctx, func() error {
		in, err := h.newIntent("ensure", "shop", true)
		if err != nil {
			return err
		}
		if err := writeJSON(intentPath, in, 0o644); err != nil {
			return err
		}
		addr, err := h.Reg.Allocate(h.Cfg.Addresses, "shop")
		if err != nil {
			return err
		}
		return h.Reg.Put(&registry.Container{Name: "shop", Owner: "bob", Address: addr, Created: h.now(),
			State: registry.Running, Channel: "https://example.org/c.tar.xz"})
	}))
	return op
}
