package generator

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/dirtree"
)

func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	m, err := dirtree.Files(dir)
	require.NoError(t, err)
	return m
}

func TestWrite(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "deep", "generated")
	first := &Set{Files: map[string][]byte{"default.nix": []byte("1"), "a/b/c.nix": []byte("c"), "gone.txt": []byte("g")}}
	second := &Set{Files: map[string][]byte{"default.nix": []byte("2"), "a/x.nix": []byte("x")}}

	require.NoError(t, Write(dir, first))
	assert.Equal(t, map[string]string{"default.nix": "1", "a/b/c.nix": "c", "gone.txt": "g"}, readTree(t, dir))
	fi, err := os.Stat(filepath.Join(dir, "a/b/c.nix"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
	fi, err = os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm())

	require.NoError(t, Write(dir, second))
	assert.Equal(t, map[string]string{"default.nix": "2", "a/x.nix": "x"}, readTree(t, dir))
	assert.Equal(t, map[string]string{"default.nix": "1", "a/b/c.nix": "c", "gone.txt": "g"}, readTree(t, dir+OldSuffix))

	require.NoError(t, Write(dir, first))
	assert.Equal(t, map[string]string{"default.nix": "2", "a/x.nix": "x"}, readTree(t, dir+OldSuffix))

	entries, err := os.ReadDir(filepath.Dir(dir))
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, []string{"generated", "generated.old", ".generated.lock"}, names, "no temporary directory left behind")
}

// TestWriteIgnoresUmask: the set is readable by everyone (nginx serves the
// status page) even when devhost runs with a strict umask, as it does under
// sudo for a user whose umask is 077. Not parallel: the umask is the
// process'.
func TestWriteIgnoresUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "generated")
	require.NoError(t, Write(dir, &Set{Files: map[string][]byte{
		"default.nix": []byte("{ }"), "www/index.html": []byte("<p>"), "c1/configuration.nix": []byte("{ }"),
	}}))
	for p, want := range map[string]os.FileMode{
		"": 0o755, "www": 0o755, "www/index.html": 0o644, "default.nix": 0o644, "c1": 0o755, "c1/configuration.nix": 0o644,
	} {
		fi, err := os.Stat(filepath.Join(dir, p))
		require.NoError(t, err)
		assert.Equal(t, want, fi.Mode().Perm(), "%q", p)
	}
}

// TestWriteRefusesForeignDirectory: Write replaces only a previous set (or
// an empty directory), and deletes only a previous set as <dir>.old; a
// directory of somebody's files is left exactly as it was.
func TestWriteRefusesForeignDirectory(t *testing.T) {
	set := &Set{Files: map[string][]byte{"default.nix": []byte("{ }")}}
	home := filepath.Join(t.TempDir(), "alice")
	require.NoError(t, os.MkdirAll(filepath.Join(home, "src"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(home, "src", "notes.txt"), []byte("mine"), 0o644))
	err := Write(home, set)
	require.ErrorIs(t, err, ErrNotASet)
	assert.Equal(t, map[string]string{"src/notes.txt": "mine"}, readTree(t, home))
	assert.NoDirExists(t, home+OldSuffix)
	assert.NoFileExists(t, filepath.Join(filepath.Dir(home), ".alice.lock"), "no litter next to it")

	// A file where the set should go.
	file := filepath.Join(t.TempDir(), "generated")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
	require.ErrorContains(t, Write(file, set), "not a directory")

	// A previous set whose <dir>.old is somebody's backup.
	dir := filepath.Join(t.TempDir(), "generated")
	require.NoError(t, Write(dir, set))
	require.NoError(t, os.MkdirAll(dir+OldSuffix, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir+OldSuffix, "backup.tar"), []byte("b"), 0o644))
	require.ErrorContains(t, Write(dir, &Set{Files: map[string][]byte{"default.nix": []byte("2")}}), "not a generated set")
	assert.Equal(t, map[string]string{"backup.tar": "b"}, readTree(t, dir+OldSuffix))
	assert.Equal(t, map[string]string{"default.nix": "{ }"}, readTree(t, dir))

	// An empty directory (mktemp -d) is fine.
	empty := t.TempDir()
	require.NoError(t, Write(empty, set))
	assert.Equal(t, map[string]string{"default.nix": "{ }"}, readTree(t, empty))
}

func TestWriteRejectsBadPaths(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "generated")
	require.NoError(t, Write(dir, &Set{Files: map[string][]byte{"default.nix": []byte("keep")}}))
	for _, bad := range []string{"../escape", "/abs", "a//b", "", ".", "a/../../b", "a\\b", "x/"} {
		err := Write(dir, &Set{Files: map[string][]byte{bad: []byte("x"), "default.nix": []byte("new")}})
		require.Error(t, err, "%q", bad)
	}
	assert.Equal(t, map[string]string{"default.nix": "keep"}, readTree(t, dir))
}

// TestWriteNeverMissing: while sets are swapped in, a reader always finds
// a complete set (default.nix and the file it names agree).
func TestWriteNeverMissing(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	if err := exchange(a, b); errors.Is(err, errNoExchange) {
		t.Skip("no atomic directory exchange here: Write falls back to two renames, with a moment without the set")
	} else {
		require.NoError(t, err)
	}
	dir := filepath.Join(t.TempDir(), "generated")
	set := func(i int) *Set {
		v := []byte{byte('a' + i%26)}
		return &Set{Files: map[string][]byte{"default.nix": v, "containers/x.nix": v}}
	}
	require.NoError(t, Write(dir, set(0)))
	var stop atomic.Bool
	var missing atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			if _, err := os.Stat(filepath.Join(dir, "default.nix")); err != nil {
				missing.Add(1)
			}
		}
	}()
	for i := 1; i < 30; i++ {
		require.NoError(t, Write(dir, set(i)))
	}
	stop.Store(true)
	wg.Wait()
	assert.Zero(t, missing.Load(), "default.nix was missing during a swap")
	assert.Equal(t, map[string]string{"default.nix": "d", "containers/x.nix": "d"}, readTree(t, dir), "the last set (29 = d)")
}

func TestWriteConcurrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "generated")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := []byte{byte('a' + i)}
			assert.NoError(t, Write(dir, &Set{Files: map[string][]byte{"default.nix": v, "containers/x.nix": v}}))
		}()
	}
	wg.Wait()
	tree := readTree(t, dir)
	assert.Equal(t, tree["default.nix"], tree["containers/x.nix"], "one complete set won")
}
