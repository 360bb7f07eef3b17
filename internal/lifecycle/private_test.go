package lifecycle

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// reachable reports whether a user who is neither owner nor in the group
// can read path: it is other-readable and every directory from root down
// to it is other-searchable.
func reachable(t *testing.T, root, path string) bool {
	t.Helper()
	fi, err := os.Lstat(path)
	require.NoError(t, err)
	if fi.Mode().Perm()&0o004 == 0 {
		return false
	}
	for d := filepath.Dir(path); ; d = filepath.Dir(d) {
		fi, err := os.Lstat(d)
		require.NoError(t, err)
		if fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		if d == root {
			return true
		}
	}
}

// TestEnsureKeepsPrivateDataPrivate: after an ensure (and its rebuild) on a
// state directory an older devhost left world-readable, no file under it
// that holds private data (the owner, the deployment root, provision.nix)
// can be read by others, the registry entry is 0640, and provision.nix
// and the staged configuration are 0600 in 0700 directories.
func TestEnsureKeepsPrivateDataPrivate(t *testing.T) {
	h, _ := testHost(t)
	state := h.Cfg.StateDir
	for _, d := range []string{"containers", "lifecycle", "provision", "log"} {
		require.NoError(t, os.MkdirAll(filepath.Join(state, d), 0o755))
	}
	const marker = "# provision-marker-4711"
	req := EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice,
		Environment: "dev", Root: "/home/alice/private-root-4711",
		Provision: []byte("{ ... }: { } " + marker + "\n")}
	_, err := h.Ensure(context.Background(), req)
	require.NoError(t, err)

	perm := func(p string) os.FileMode {
		fi, err := os.Lstat(p)
		require.NoError(t, err)
		return fi.Mode().Perm()
	}
	assert.Equal(t, os.FileMode(0o640), perm(h.Reg.Path("shop")))
	assert.Equal(t, os.FileMode(0o750), perm(h.Reg.Dir()))
	assert.Equal(t, os.FileMode(0o600), perm(h.provisionPath("shop")))
	assert.Equal(t, os.FileMode(0o700), perm(filepath.Dir(h.provisionPath("shop"))))
	assert.Equal(t, os.FileMode(0o700), perm(h.paths().root))
	assert.Equal(t, os.FileMode(0o700), perm(h.paths().logDir()))

	var private []string
	require.NoError(t, filepath.WalkDir(state, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		s := string(b)
		if strings.Contains(s, marker) || strings.Contains(s, "private-root-4711") || strings.Contains(s, `"alice"`) {
			private = append(private, p)
			assert.False(t, reachable(t, state, p), "%s holds private data and others can read it", p)
		}
		return nil
	}))
	// The entry, provision.nix, the intent's and applied.json's copies.
	assert.GreaterOrEqual(t, len(private), 3, "%v", private)

}
