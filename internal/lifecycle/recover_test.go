package lifecycle

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
