package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/progress"
	"github.com/flyingcircusio/devhost/internal/registry"
	"github.com/flyingcircusio/devhost/tests/doubles/double"
)

// The load test: concurrent `devhost ensure` processes of new containers
// through the real binary and the doubles, on hosts with 0, 1,000 and
// 10,000 registered containers, all started at once or 0.2 s apart. The
// host rebuild (the nixos-rebuild double) takes R; the table reports how
// many rebuilds ran and the wall time in units of R. It is a measurement,
// not part of the normal suite: it runs only with DEVHOST_LOADTEST=1
// (`make loadtest`), takes many minutes, and asserts only that every
// ensure succeeded and registered its container.
//
// Settings (environment):
//
//	DEVHOST_LOADTEST=1            run it
//	DEVHOST_LOADTEST_R=2s         the rebuild's duration R
//	DEVHOST_LOADTEST_SIZES=0,1000,10000   registered containers before
//	DEVHOST_LOADTEST_PROCS=20,50  concurrent ensures
//	DEVHOST_LOADTEST_STAGGER=200ms        the staggered start interval
//	DEVHOST_LOADTEST_CPUPROFILE=DIR       each ensure writes a CPU profile to DIR
//	                                      (cpu-<pid>.prof; `go tool pprof bin/devhost DIR/*.prof`)
//	DEVHOST_LOADTEST_TIMELINE=1           each ensure reports its phases (--progress json)
//	                                      and the test logs a timeline: per ensure its start,
//	                                      commit, which rebuild applied it and when it learnt so
const envLoadTest = "DEVHOST_LOADTEST"

// loadRow is one line of the table.
type loadRow struct {
	registered, procs int
	stagger           time.Duration
	rebuilds          int
	wall              time.Duration // first start to last exit
	firstRebuild      time.Duration // first start to the first rebuild's start
	meanRebuild       time.Duration // measured duration of a rebuild (R plus the double's walk of the set)
	slowest, median   time.Duration // one ensure's own wall time
	failed            int
}

func TestLoad(t *testing.T) {
	if os.Getenv(envLoadTest) == "" {
		t.Skipf("a measurement of many minutes: set %s=1 (or run `make loadtest`)", envLoadTest)
	}
	r := loadDuration(t, "DEVHOST_LOADTEST_R", 2*time.Second)
	stagger := loadDuration(t, "DEVHOST_LOADTEST_STAGGER", 200*time.Millisecond)
	sizes := loadInts(t, "DEVHOST_LOADTEST_SIZES", []int{0, 1000, 10000})
	procs := loadInts(t, "DEVHOST_LOADTEST_PROCS", []int{20, 50})

	var rows []loadRow
	for _, n := range sizes {
		for _, p := range procs {
			for _, st := range []time.Duration{0, stagger} {
				name := fmt.Sprintf("registered=%d/procs=%d/stagger=%s", n, p, st)
				t.Run(name, func(t *testing.T) {
					row := runLoad(t, n, p, st, r)
					rows = append(rows, row)
					t.Log("\n" + formatLoadTable(r, []loadRow{row}))
				})
			}
		}
	}
	t.Log("\n" + formatLoadTable(r, rows))
}

// runLoad measures one scenario on a fresh sandbox.
func runLoad(t *testing.T, registered, procs int, stagger, r time.Duration) loadRow {
	s := newSandbox(t, sandboxOpts{timeout: "30m"})
	prepopulate(t, s, registered)
	before := len(s.successfulRebuilds())
	s.setControl(map[string]double.Control{
		"nixos-rebuild": {SleepMS: int(r / time.Millisecond)},
		"nix-build":     {SleepMS: 20},
	})

	timeline := os.Getenv("DEVHOST_LOADTEST_TIMELINE") != ""
	type outcome struct {
		name       string
		start, end time.Time
		code       int
		stderr     string
	}
	outs := make([]outcome, procs)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Until(t0.Add(time.Duration(i) * stagger)))
			o := outcome{name: fmt.Sprintf("load%03d", i), start: time.Now()}
			args := []string{"ensure", o.name, "--channel", channel}
			if timeline {
				args = append(args, "--progress", "json")
			}
			o.code, o.stderr = loadRun(s, "alice", args...)
			o.end = time.Now()
			outs[i] = o
		}()
	}
	wg.Wait()

	row := loadRow{registered: registered, procs: procs, stagger: stagger}
	var last time.Time
	var own []time.Duration
	for _, o := range outs {
		if o.end.After(last) {
			last = o.end
		}
		own = append(own, o.end.Sub(o.start))
		if o.code != 0 {
			row.failed++
			t.Errorf("ensure %s: exit %d: %s", o.name, o.code, o.stderr)
		}
	}
	slices.Sort(own)
	row.wall = last.Sub(t0)
	row.slowest = own[len(own)-1]
	row.median = own[len(own)/2]
	rebuilds := s.successfulRebuilds()[before:]
	row.rebuilds = len(rebuilds)
	if len(rebuilds) > 0 {
		row.firstRebuild = rebuilds[0].Start.Sub(t0)
		var sum time.Duration
		for _, rb := range rebuilds {
			sum += rb.End.Sub(rb.Start)
		}
		row.meanRebuild = sum / time.Duration(len(rebuilds))
	}
	if timeline {
		var tl []loadTimeline
		for _, o := range outs {
			tl = append(tl, parseTimeline(o.name, o.start, o.end, o.stderr))
		}
		t.Log("\n" + formatTimeline(t0, r, rebuilds, tl))
	}
	// Every ensure registered its container.
	reg := registry.Open(s.config().StateDir)
	for _, o := range outs {
		if o.code == 0 {
			_, err := reg.Get(o.name)
			require.NoErrorf(t, err, "%s returned 0 but is not registered", o.name)
		}
	}
	return row
}

// loadRun runs devhost as user and returns its exit code and stderr. The
// nixos-rebuild double's extra check of every file with the real
// nix-instantiate is left out: it would add a parse of the whole set to
// every rebuild, on top of R, and at 10,000 containers its one
// nix-instantiate command line (20,000 files) is too long to execute.
func loadRun(s *sandbox, user string, args ...string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cmd, _, errb := s.command(ctx, user, "devhost", args...)
	cmd.Env = slices.DeleteFunc(cmd.Env, func(e string) bool {
		return strings.HasPrefix(e, "DEVHOST_DOUBLE_NIX_INSTANTIATE=")
	})
	if dir := os.Getenv("DEVHOST_LOADTEST_CPUPROFILE"); dir != "" && args[0] == "ensure" {
		cmd.Env = append(cmd.Env, "DEVHOST_TEST_CPUPROFILE="+dir)
	}
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), errb.String()
	case err != nil:
		return -1, err.Error()
	}
	return 0, errb.String()
}

// loadTimeline is one ensure's way through a load test, from its
// --progress json events: when it started, committed its change (began to
// wait for a rebuild), was told its change is applied, and ended.
type loadTimeline struct {
	name                        string
	start, commit, applied, end time.Time
}

func parseTimeline(name string, start, end time.Time, stderr string) loadTimeline {
	tl := loadTimeline{name: name, start: start, end: end}
	for line := range strings.SplitSeq(stderr, "\n") {
		_, e, ok := progress.Decode([]byte(line))
		if !ok {
			continue
		}
		at := start.Add(e.Elapsed)
		switch e.Phase {
		case progress.Waiting:
			if tl.commit.IsZero() {
				tl.commit = at
			}
		case progress.Applied:
			tl.applied = at
		}
	}
	return tl
}

// formatTimeline lists the rebuilds and, per ensure, the seconds (from
// the test's start) of its start, commit, applied and end, the rebuild
// that applied its change (the first that started after its commit: its
// snapshot is the first that can contain it), and how long after that
// rebuild's end it learnt so ("late"): time spent waiting behind rebuilds
// that did not concern it.
func formatTimeline(t0 time.Time, r time.Duration, rebuilds []double.Record, tl []loadTimeline) string {
	var b strings.Builder
	sec := func(x time.Time) string {
		if x.IsZero() {
			return "-"
		}
		return fmt.Sprintf("%.2f", x.Sub(t0).Seconds())
	}
	for i, rb := range rebuilds {
		fmt.Fprintf(&b, "rebuild %d: %s..%s\n", i+1, sec(rb.Start), sec(rb.End))
	}
	// The phases' times are the ensure's own elapsed milliseconds added to
	// the test's start of the process: they may come a little early.
	const clockSlack = 50 * time.Millisecond
	fmt.Fprintf(&b, "| ensure | start | commit | rebuild | applied | late | end | own |\n|---|---|---|---|---|---|---|---|\n")
	var late []time.Duration
	for _, x := range tl {
		by, l := "-", "-"
		for i, rb := range rebuilds {
			if !x.commit.IsZero() && !x.applied.IsZero() && rb.Start.After(x.commit) && !rb.End.After(x.applied.Add(clockSlack)) {
				by = strconv.Itoa(i + 1)
				d := max(x.applied.Sub(rb.End), 0)
				late = append(late, d)
				l = fmt.Sprintf("%.2f", d.Seconds())
				break
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %.1f R |\n", x.name, sec(x.start), sec(x.commit), by, sec(x.applied), l, sec(x.end), float64(x.end.Sub(x.start))/float64(r))
	}
	if len(late) > 0 {
		slices.Sort(late)
		fmt.Fprintf(&b, "late (applied phase after the applying rebuild's end): median %s, slowest %s\n", late[len(late)/2].Round(time.Millisecond), late[len(late)-1].Round(time.Millisecond))
	}
	return b.String()
}

// prepopulate registers n containers owned by bob by writing their entries
// directly (one entry rendered by the registry, copied with its name and
// address replaced: 10,000 Puts with an fsync each would take minutes),
// then applies them with one `devhost apply` (rebuild without delay).
func prepopulate(t *testing.T, s *sandbox, n int) {
	if n == 0 {
		return
	}
	cfg := s.config()
	const protoName, protoAddr = "loadproto", "10.100.255.200"
	scratch := registry.Open(t.TempDir())
	require.NoError(t, scratch.Put(&registry.Container{
		Name: protoName, Owner: "bob", Environment: "dev", Channel: channel,
		Address: netip.MustParseAddr(protoAddr), State: registry.Running,
		Created: time.Now().UTC().Truncate(time.Second),
	}))
	proto, err := os.ReadFile(scratch.Path(protoName))
	require.NoError(t, err)
	reg := registry.Open(cfg.StateDir)
	require.NoError(t, os.MkdirAll(reg.Dir(), registry.DirPerm))
	addr := cfg.Addresses.First()
	for i := range n {
		name := fmt.Sprintf("pre%05d", i)
		b := bytes.Replace(proto, []byte(strconv.Quote(protoName)), []byte(strconv.Quote(name)), 1)
		b = bytes.Replace(b, []byte(strconv.Quote(protoAddr)), []byte(strconv.Quote(addr.String())), 1)
		require.NoError(t, os.WriteFile(reg.Path(name), b, registry.EntryPerm))
		addr = cfg.Addresses.Next(addr)
	}
	all, err := reg.LoadAll()
	require.NoError(t, err)
	require.Len(t, all, n)
	start := time.Now()
	code, stderr := loadRun(s, "root", "apply")
	require.Equalf(t, 0, code, "devhost apply: %s", stderr)
	// A host in use has the registry's address cache, which every write
	// of devhost keeps up to date; these entries were written behind its
	// back, so one allocation sweeps them once, as the first allocation
	// after an upgrade does.
	unlock, err := reg.Lock(context.Background())
	require.NoError(t, err)
	_, err = reg.Allocate(cfg.Addresses, "warmup")
	unlock()
	require.NoError(t, err)
	t.Logf("%d containers registered and applied (apply: %s)", n, time.Since(start).Round(time.Millisecond))
}

// formatLoadTable is the report: times in units of R, and in seconds.
func formatLoadTable(r time.Duration, rows []loadRow) string {
	var b strings.Builder
	inR := func(d time.Duration) string { return fmt.Sprintf("%.1f R", float64(d)/float64(r)) }
	fmt.Fprintf(&b, "R = %s (nixos-rebuild double's sleep)\n", r)
	fmt.Fprintf(&b, "| registered | ensures | start | rebuilds | wall | first rebuild starts | one rebuild | median ensure | slowest ensure | failed |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|---|\n")
	for _, row := range rows {
		start := "at once"
		if row.stagger > 0 {
			start = row.stagger.String() + " apart"
		}
		fmt.Fprintf(&b, "| %d | %d | %s | %d | %s (%.1f s) | %s | %s | %s | %s | %d |\n",
			row.registered, row.procs, start, row.rebuilds, inR(row.wall), row.wall.Seconds(),
			inR(row.firstRebuild), inR(row.meanRebuild), inR(row.median), inR(row.slowest), row.failed)
	}
	return b.String()
}

func loadDuration(t *testing.T, key string, def time.Duration) time.Duration {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	require.NoErrorf(t, err, "%s", key)
	require.Positive(t, d, key)
	return d
}

func loadInts(t *testing.T, key string, def []int) []int {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	var out []int
	for f := range strings.SplitSeq(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		require.NoErrorf(t, err, "%s", key)
		require.GreaterOrEqual(t, n, 0, key)
		out = append(out, n)
	}
	return out
}
