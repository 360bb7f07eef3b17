package lifecycle

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/progress"
)

// recorder is a progress.Reporter keeping what it was told.
type recorder struct {
	mu     sync.Mutex
	events []progress.Event
}

func (r *recorder) Report(e progress.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// steps are the events without their times.
func (r *recorder) steps() []progress.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]progress.Event, len(r.events))
	for i, e := range r.events {
		e.Elapsed = 0
		out[i] = e
	}
	return out
}

func TestEnsureReportsItsPhasesInOrder(t *testing.T) {
	h, fr := testHost(t)
	ctx := context.Background()
	var rec recorder
	req := EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice, Progress: &rec}
	res, err := h.Ensure(ctx, req)
	require.NoError(t, err)
	store := res.StorePath
	require.Equal(t, filepath.Join(fr.store, filepath.Base(store)), store)
	assert.Equal(t, []progress.Event{
		{Phase: progress.Validated, Container: "shop"},
		{Phase: progress.Building, Container: "shop"},
		{Phase: progress.Building, Container: "shop", Detail: "building '" + store + ".drv'..."},
		{Phase: progress.Building, Container: "shop", Detail: store},
		{Phase: progress.Built, Container: "shop", Detail: store},
		{Phase: progress.Waiting, Container: "shop", Shared: 1},
		{Phase: progress.Applied, Container: "shop", Detail: "this request ran the host rebuild"},
		{Phase: progress.Starting, Container: "shop"},
		// The fake systemctl says every unit is active.
		{Phase: progress.Done, Container: "shop", Detail: "unit unchanged"},
	}, rec.steps())
	for i := 1; i < len(rec.events); i++ {
		assert.GreaterOrEqual(t, rec.events[i].Elapsed, rec.events[i-1].Elapsed)
	}

	// Unchanged: nothing to build, nothing to wait for.
	rec = recorder{}
	_, err = h.Ensure(ctx, req)
	require.NoError(t, err)
	assert.Equal(t, []progress.Event{
		{Phase: progress.Validated, Container: "shop"},
		{Phase: progress.Applied, Container: "shop"},
		{Phase: progress.Starting, Container: "shop"},
		{Phase: progress.Done, Container: "shop", Detail: "unit unchanged"},
	}, rec.steps())

	// Without a reporter the ensure is silent (and works).
	req.Progress = nil
	req.Aliases = []string{"www"}
	_, err = h.Ensure(ctx, req)
	require.NoError(t, err)
}

// sharedBy counts the requests a waiting ensure's rebuild applies: those
// of the running rebuild when it covers the generation, else those since.
func TestSharedByCountsTheBatch(t *testing.T) {
	h, _ := testHost(t)
	ctx := context.Background()
	_, err := h.Ensure(ctx, EnsureRequest{Name: "base", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	a, err := h.readApplied()
	require.NoError(t, err)
	assert.Equal(t, -1, h.sharedBy(a.Gen))

	// Three changes counted, none applied (as if their ensures waited).
	var gens []uint64
	for _, n := range []string{"one", "two", "three"} {
		require.NoError(t, h.withRegistry(ctx, func() error {
			w, err := h.readWanted()
			if err != nil {
				return err
			}
			w.Gen++
			gen := w.Gen
			gens = append(gens, gen)
			if err := writeJSON(h.paths().wanted(), w, 0o644); err != nil {
				return err
			}
			return h.recordRequest("ensure", n, gen, nil, nil)
		}))
	}
	assert.Equal(t, 3, h.sharedBy(gens[0]))
	assert.Equal(t, 3, h.sharedBy(gens[2]))

	// A rebuild runs with the first two: they share it, the third waits
	// for the next one, alone.
	require.NoError(t, writeJSON(h.paths().rebuildIntent(), RebuildIntent{Gen: gens[1]}, 0o644))
	assert.Equal(t, 2, h.sharedBy(gens[0]))
	assert.Equal(t, 1, h.sharedBy(gens[2]))
}
