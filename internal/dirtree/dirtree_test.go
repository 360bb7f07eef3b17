package dirtree

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFilesAndSnapshot(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a", "b", "c.nix"), []byte("c"), 0o644))
	require.NoError(t, os.Symlink("a", filepath.Join(dir, "link")))

	files, err := Files(dir)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"a/b/c.nix": "c"}, files)

	before, err := Snapshot(dir)
	require.NoError(t, err)
	assert.Len(t, before, 5) // ., a, a/b, a/b/c.nix, link

	changes := []func(){
		func() { require.NoError(t, os.WriteFile(filepath.Join(dir, "a", "b", "c.nix"), []byte("C"), 0o644)) },
		func() { require.NoError(t, os.Chmod(filepath.Join(dir, "a", "b", "c.nix"), 0o600)) },
		func() { require.NoError(t, os.Mkdir(filepath.Join(dir, "empty"), 0o755)) },
	}
	for i, change := range changes {
		change()
		after, err := Snapshot(dir)
		require.NoError(t, err)
		assert.NotEqual(t, before, after, "change %d is seen", i)
		before = after
	}
	_, err = Snapshot(filepath.Join(dir, "missing"))
	assert.Error(t, err)
}
