package registry

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	require.NoError(t, err)
	return fi.Mode() & (os.ModePerm | os.ModeSetgid | os.ModeSticky)
}

// TestEntriesArePrivate: Put writes entries 0640 into a 0750 directory;
// an entry and a directory an older devhost left world-readable are
// tightened by the next Put, also when the entry's content is unchanged;
// a setgid directory (the module's, for the admin group) keeps its bit.
func TestEntriesArePrivate(t *testing.T) {
	r := Open(t.TempDir())
	c := testContainer("web", "10.233.0.2")
	require.NoError(t, r.Put(c))
	assert.Equal(t, EntryPerm, mode(t, r.Path("web")))
	assert.Equal(t, DirPerm, mode(t, r.Dir()))

	t.Run("looser entry and directory of an older version", func(t *testing.T) {
		require.NoError(t, os.Chmod(r.Path("web"), 0o644))
		require.NoError(t, os.Chmod(r.Dir(), 0o755))
		require.NoError(t, r.Put(c)) // same content
		assert.Equal(t, EntryPerm, mode(t, r.Path("web")))
		assert.Equal(t, DirPerm, mode(t, r.Dir()))
	})
	t.Run("new entry in a setgid directory", func(t *testing.T) {
		require.NoError(t, os.Chmod(r.Dir(), os.ModeSetgid|0o777))
		require.NoError(t, r.Put(testContainer("shop", "10.233.0.3")))
		assert.Equal(t, EntryPerm, mode(t, r.Path("shop")))
		assert.Equal(t, os.ModeSetgid|DirPerm, mode(t, r.Dir()))
	})
	t.Run("WriteEntry", func(t *testing.T) {
		src, err := os.ReadFile(r.Path("web"))
		require.NoError(t, err)
		require.NoError(t, os.Chmod(r.Path("web"), 0o666))
		require.NoError(t, r.WriteEntry("web", src))
		assert.Equal(t, EntryPerm, mode(t, r.Path("web")))
		got, err := r.Get("web")
		require.NoError(t, err)
		assert.Equal(t, c.Name, got.Name)
		assert.Error(t, r.WriteEntry("../x", src))
	})
}
