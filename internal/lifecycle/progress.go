package lifecycle

import (
	"context"
	"sync"
	"time"

	"github.com/flyingcircusio/devhost/internal/progress"
)

// sharedBy counts the requests the host rebuild that applies generation
// gen will apply together (gen's own included): those of the running
// rebuild when its snapshot contains gen, otherwise those counted since
// the last snapshot, which the next rebuild takes. 0 when the state cannot
// be read (it is only shown), -1 when gen is applied already.
func (h *Host) sharedBy(gen uint64) int {
	a, err := h.readApplied()
	if err != nil {
		return 0
	}
	if a.Gen >= gen {
		return -1
	}
	from, to := a.Gen, uint64(0)
	var ri RebuildIntent
	if ok, err := readJSON(h.paths().rebuildIntent(), &ri); err == nil && ok && ri.Gen > from {
		if ri.Gen >= gen {
			to = ri.Gen
		} else {
			from = ri.Gen
		}
	}
	if to == 0 {
		w, err := h.readWanted()
		if err != nil {
			return 0
		}
		to = w.Gen
	}
	reqs, err := h.requests(from, to)
	if err != nil {
		return 0
	}
	return max(len(reqs), 1)
}

// sharedPoll is how often a waiting ensure recounts its rebuild's requests.
const sharedPoll = 300 * time.Millisecond

// reportWaiting reports that the ensure waits for generation gen, and
// again whenever the count of requests sharing its rebuild changes, until
// the returned stop is called. Nothing is reported for a nil tracker or a
// generation applied already (an unchanged container).
func (h *Host) reportWaiting(ctx context.Context, pr *progress.Tracker, gen uint64) (stop func()) {
	if pr == nil {
		return func() {}
	}
	n := h.sharedBy(gen)
	if n < 0 {
		return func() {}
	}
	pr.Waiting(n)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(sharedPoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if m := h.sharedBy(gen); m != n && m > 0 {
				n = m
				pr.Waiting(n)
			}
		}
	})
	return func() {
		cancel()
		wg.Wait()
	}
}
