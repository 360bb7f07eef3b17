package atomicfile

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "key")
	require.NoError(t, WriteFile(p, []byte("one"), 0o600))
	fi, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	require.NoError(t, WriteFile(p, []byte("two"), 0o644))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "two", string(b))
	left, err := filepath.Glob(filepath.Join(dir, "sub", ".*tmp*"))
	require.NoError(t, err)
	assert.Empty(t, left, "no temporary files stay behind")
}

func TestWriteFileFailureLeavesOldContent(t *testing.T) {
	dir := t.TempDir()
	// A non-empty directory where the file should be: the rename fails,
	// and what was there stays as it was.
	q := filepath.Join(dir, "d")
	require.NoError(t, os.MkdirAll(q, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(q, "x"), []byte("old"), 0o644))
	assert.Error(t, WriteFile(q, []byte("new"), 0o644))
	b, err := os.ReadFile(filepath.Join(q, "x"))
	require.NoError(t, err)
	assert.Equal(t, "old", string(b))
	left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	assert.Empty(t, left, "the temporary file is removed")
}

func TestReadersNeverSeePartialContent(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	a, b := make([]byte, 1<<16), make([]byte, 1<<16)
	for i := range a {
		a[i], b[i] = 'a', 'b'
	}
	require.NoError(t, WriteFile(p, a, 0o644))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 50; i++ {
			data := a
			if i%2 == 1 {
				data = b
			}
			assert.NoError(t, WriteFile(p, data, 0o644))
		}
	}()
	for i := 0; i < 200; i++ {
		got, err := os.ReadFile(p)
		require.NoError(t, err)
		require.Len(t, got, len(a))
		assert.True(t, string(got) == string(a) || string(got) == string(b), "content is one whole version")
	}
	wg.Wait()
}

func TestRemove(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	require.NoError(t, WriteFile(p, []byte("x"), 0o644))
	require.NoError(t, Remove(p))
	require.NoError(t, Remove(p), "removing a missing file is fine")
	_, err := os.Stat(p)
	assert.True(t, os.IsNotExist(err))
}
