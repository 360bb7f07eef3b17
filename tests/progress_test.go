package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/progress"
)

// TestEnsureProgressJSON runs two `devhost ensure --progress=json --json`
// at once while the test holds the host rebuild's lock (as a long rebuild
// of a third request would): both report their phases in order as JSON
// lines on stderr, say that two requests share the rebuild they wait for,
// and stdout stays the --json result.
func TestEnsureProgressJSON(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, sandboxOpts{})
	lockPath := filepath.Join(s.config().StateDir, "lifecycle", "rebuild.lock")
	require.NoError(t, os.MkdirAll(filepath.Dir(lockPath), 0o755))
	lf, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	defer func() { _ = lf.Close() }()
	require.NoError(t, syscall.Flock(int(lf.Fd()), syscall.LOCK_EX))
	locked := true
	defer func() {
		if locked {
			_ = syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	names := []string{"prog1", "prog2"}
	type run struct {
		events []progress.Event
		other  []string
		stdout string
		err    error
	}
	runs := make([]run, len(names))
	var (
		mu      sync.Mutex
		waiting = map[string]int{} // name → shared of its last waiting event
		changed = make(chan struct{}, 100)
		wg      sync.WaitGroup
	)
	for i, name := range names {
		cmd, out, _ := s.command(ctx, "alice", "devhost", "ensure", name, "--channel", channel, "--json", "--progress=json")
		cmd.Stderr = nil
		pipe, err := cmd.StderrPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		wg.Go(func() {
			sc := bufio.NewScanner(pipe)
			for sc.Scan() {
				host, e, ok := progress.Decode(sc.Bytes())
				mu.Lock()
				if !ok || host != "" {
					runs[i].other = append(runs[i].other, sc.Text())
				} else {
					runs[i].events = append(runs[i].events, e)
					if e.Phase == progress.Waiting {
						waiting[name] = e.Shared
						changed <- struct{}{}
					}
				}
				mu.Unlock()
			}
			runs[i].err = cmd.Wait()
			runs[i].stdout = out.String()
		})
	}
	// Both wait, and both know that the rebuild will apply the two.
	for deadline := time.After(time.Minute); ; {
		mu.Lock()
		both := waiting["prog1"] == 2 && waiting["prog2"] == 2
		mu.Unlock()
		if both {
			break
		}
		select {
		case <-changed:
		case <-deadline:
			mu.Lock()
			t.Fatalf("not both waiting with shared 2: %v; runs %+v", waiting, runs)
		}
	}
	require.NoError(t, syscall.Flock(int(lf.Fd()), syscall.LOCK_UN))
	locked = false
	wg.Wait()

	for i, name := range names {
		r := runs[i]
		require.NoErrorf(t, r.err, "%s: %v", name, r.other)
		assert.Empty(t, r.other, "only JSON lines on stderr")
		var res struct {
			Name        string `json:"name"`
			HostRebuilt bool   `json:"host_rebuilt"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &res), r.stdout)
		assert.Equal(t, name, res.Name)

		var phases []progress.Phase
		var build []string
		for j, e := range r.events {
			assert.Equal(t, name, e.Container)
			if j > 0 {
				assert.GreaterOrEqual(t, e.Elapsed, r.events[j-1].Elapsed)
			}
			if e.Phase == progress.Building && e.Detail != "" {
				build = append(build, e.Detail)
			}
			if len(phases) == 0 || phases[len(phases)-1] != e.Phase {
				phases = append(phases, e.Phase)
			}
		}
		assert.Equal(t, []progress.Phase{progress.Validated, progress.Building, progress.Built, progress.Waiting,
			progress.Applied, progress.Starting, progress.Done}, phases, name)
		// Nix's log line (the double prints what nix-build prints).
		// (stdout's store path comes through the same log, in either order).
		assert.True(t, slices.ContainsFunc(build, func(l string) bool {
			return strings.HasPrefix(l, "building '") && strings.HasSuffix(l, "-nixos-system-"+name+".drv'...")
		}), build)
		last := r.events[len(r.events)-1]
		assert.Equal(t, "unit started", last.Detail)
	}
	// One rebuild applied both.
	assert.Len(t, s.successfulRebuilds(), 1)
}
