package codesync

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// watched runs Watch on a temporary directory with real fsnotify. Every
// sync's batch arrives on the returned channel; the sync returns when
// release yields (nil release: at once).
type watched struct {
	t       *testing.T
	dir     string
	batches chan Batch
	cancel  context.CancelFunc
	done    chan error
	active  atomic.Int32
	overlap atomic.Bool
}

const patience = 20 * time.Second // generous: the machine is shared

func startWatch(t *testing.T, rules string, release <-chan struct{}) *watched {
	t.Helper()
	w := &watched{t: t, dir: t.TempDir(), batches: make(chan Batch, 100), done: make(chan error, 1)}
	require.NoError(t, os.WriteFile(filepath.Join(w.dir, "a.txt"), []byte("1"), 0o644))
	var rs *Rules
	if rules != "" {
		rs = mustRules(t, rules)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	ready := make(chan struct{})
	// Quiet is long enough that one save or burst, a few system calls, is
	// never split on a busy machine; the tests never wait for it to pass
	// without an event to wait for.
	opts := WatchOptions{Quiet: 300 * time.Millisecond, MaxDelay: 5 * time.Second, Rules: rs, Ready: ready}
	go func() {
		w.done <- Watch(ctx, w.dir, opts, func(ctx context.Context, b Batch) error {
			if w.active.Add(1) > 1 {
				w.overlap.Store(true)
			}
			defer w.active.Add(-1)
			w.batches <- b
			if release != nil && !b.Initial {
				select {
				case <-release:
				case <-ctx.Done():
				}
			}
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-w.done:
			assert.NoError(t, err)
		case <-time.After(patience):
			t.Error("Watch did not stop when its context ended")
		}
		assert.False(t, w.overlap.Load(), "two syncs ran at once")
	})
	select {
	case <-ready:
	case err := <-w.done:
		t.Fatalf("Watch: %v", err)
	}
	assert.True(t, w.next().Initial, "the first sync is the initial one")
	return w
}

func (w *watched) next() Batch {
	w.t.Helper()
	select {
	case b := <-w.batches:
		return b
	case err := <-w.done:
		w.t.Fatalf("Watch ended: %v", err)
	case <-time.After(patience):
		w.t.Fatal("no sync within the timeout")
	}
	return Batch{}
}

func (w *watched) write(rel, content string) {
	w.t.Helper()
	p := filepath.Join(w.dir, filepath.FromSlash(rel))
	require.NoError(w.t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(w.t, os.WriteFile(p, []byte(content), 0o644))
}

// sentinel proves that nothing else is pending: the next sync after one
// more change answers that change alone.
func (w *watched) sentinel() {
	w.t.Helper()
	w.write("zz-sentinel", "x")
	assert.Equal(w.t, []string{"zz-sentinel"}, w.next().Paths, "a change left over from before")
}

func TestWatchAtomicSaveIsOneSync(t *testing.T) {
	w := startWatch(t, "", nil)
	// vim/VS Code/JetBrains style: write a temporary file, rename it over.
	w.write(".a.txt.swp", "2")
	require.NoError(t, os.Rename(filepath.Join(w.dir, ".a.txt.swp"), filepath.Join(w.dir, "a.txt")))
	assert.Contains(t, w.next().Paths, "a.txt")
	w.sentinel()

	// Delete, then create again (editors without rename).
	require.NoError(t, os.Remove(filepath.Join(w.dir, "a.txt")))
	w.write("a.txt", "3")
	assert.Equal(t, []string{"a.txt"}, w.next().Paths)
	w.sentinel()
}

func TestWatchBurstIsOneSync(t *testing.T) {
	w := startWatch(t, "", nil)
	var want []string
	for i := range 50 {
		name := "f" + string(rune('a'+i/26)) + string(rune('a'+i%26))
		w.write(name, "x")
		want = append(want, name)
	}
	assert.Equal(t, want, w.next().Paths)
	w.sentinel()
}

func TestWatchNewDirectoryIsWatched(t *testing.T) {
	w := startWatch(t, "", nil)
	// The file may be written before the new directory's watch exists;
	// the walk of the new directory finds it.
	w.write("sub/deeper/f", "x")
	assert.Equal(t, []string{"sub", "sub/deeper", "sub/deeper/f"}, w.next().Paths)
	w.write("sub/deeper/g", "x")
	assert.Equal(t, []string{"sub/deeper/g"}, w.next().Paths)
	// A directory renamed into the tree.
	outside := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(outside, "moved"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(outside, "moved", "m"), nil, 0o644))
	require.NoError(t, os.Rename(filepath.Join(outside, "moved"), filepath.Join(w.dir, "moved")))
	assert.Equal(t, []string{"moved", "moved/m"}, w.next().Paths)
	w.write("moved/n", "x")
	assert.Equal(t, []string{"moved/n"}, w.next().Paths)
}

func TestWatchIgnoresExcluded(t *testing.T) {
	w := startWatch(t, "*.pyc\nbuild/\n", nil)
	w.write("x.pyc", "x")
	w.write(".git/index", "x")
	w.write("build/out/o", "x")
	w.write("build/o2", "x")
	w.sentinel()
}

func TestWatchChangesDuringSyncMakeTheNextBatch(t *testing.T) {
	release := make(chan struct{})
	w := startWatch(t, "", release)
	w.write("one", "x")
	assert.Equal(t, []string{"one"}, w.next().Paths)
	// The sync of "one" is still running.
	w.write("two", "x")
	w.write("three", "x")
	release <- struct{}{}
	assert.Equal(t, []string{"three", "two"}, w.next().Paths)
	release <- struct{}{}
}

func TestWatchReportsSyncError(t *testing.T) {
	dir := t.TempDir()
	err := Watch(context.Background(), dir, WatchOptions{}, func(context.Context, Batch) error {
		return &Error{Status: 23, Stderr: "permission denied"}
	})
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "exit status 23"), err.Error())
}
