package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/generator"
	"github.com/flyingcircusio/devhost/internal/lifecycle"
	"github.com/flyingcircusio/devhost/internal/registry"
	"github.com/flyingcircusio/devhost/tests/doubles/double"
)

// TestKillAtRandomMoments kills devhost processes with SIGKILL at random
// moments of ensure, destroy and keep (with slow doubles, so kills land in
// builds, profile installs, rebuilds and everything between). One run in
// four is killed while its host rebuild runs, one in four as soon as it
// journals a change of the live set (in the incremental write, or before
// the rebuild command starts): the live set is then, file by file, the
// journal's previous copy or the registry's render, never a third thing.
// After each kill the next command must leave registry, generated set (byte
// for byte a full render of the registry), profiles and build records in
// agreement, with nothing pending, and no container but the killed
// command's own may have changed. Every rebuild leaves a sleeping
// grandchild: none may be alive when a rebuild starts, nor after the next
// command.
func TestKillAtRandomMoments(t *testing.T) {
	t.Parallel()
	total := 200
	if testing.Short() {
		total = 40
	}
	const workers = 4
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	var (
		mu     sync.Mutex
		killed int
		phases = map[string]int{}
	)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(fmt.Sprintf("worker%d", w), func(t *testing.T) {
				k, ph := killLoop(t, total/workers, rand.New(rand.NewPCG(seed, uint64(w))))
				mu.Lock()
				killed += k
				for p, n := range ph {
					phases[p] += n
				}
				mu.Unlock()
			})
		}()
	}
	wg.Wait()
	t.Logf("%d processes killed with SIGKILL; where each was (the last external command it had started, or the target it was killed at): %v", killed, phases)
	require.GreaterOrEqual(t, killed, total*9/10, "too few runs were killed")
	// The targets were hit, not merely aimed at.
	require.Positive(t, phases[phaseWrite], "no run was killed while writing the live set")
	require.Positive(t, phases[phaseRebuild], "no run was killed while its host rebuild ran")
}

// The phases of targeted kills, as killLoop counts them.
const (
	phaseRebuild = "the host rebuild (targeted)"
	phaseWrite   = "the live set's write, before its rebuild (targeted)"
)

// killLoop runs random commands until kills of them were killed (at most
// 8*kills runs: a command may finish before its kill, and one aimed at a
// target that it never reaches, say a keep that changes nothing host-side,
// is not killed; only runs that were killed count).
func killLoop(t *testing.T, kills int, rng *rand.Rand) (killed int, phases map[string]int) {
	s := newSandbox(t, sandboxOpts{})
	s.setControl(map[string]double.Control{
		"nix-build":     {SleepMS: 50},
		"nix-env":       {SleepMS: 5},
		"nixos-rebuild": {SleepMS: 80, Grandchild: true},
	})
	phases = map[string]int{}
	// What the run a failed check follows did, and the lifecycle's state
	// the check saw: a failure here is rare and timing-bound, so its
	// report must say enough to be understood without a rerun.
	var last string
	defer func() {
		if t.Failed() && last != "" {
			t.Logf("the failed check followed %s; lifecycle state:\n%s", last, lifecycleState(s))
		}
	}()
	names := []string{"ka", "kb", "kc"}
	exists := func() map[string]bool {
		m := map[string]bool{}
		for _, c := range s.registry() {
			m[c.Name] = true
		}
		return m
	}
	start := time.Now()
	s.ok("alice", "ensure", "canary", "--channel", channel)
	// Kill within the time a whole command takes here (it grows with the
	// machine's load), so kills land in every phase.
	first := time.Since(start)
	// typical[op] is how long an uninterrupted run of the operation took
	// lately; kills are spread over 1.1 times that.
	typical := map[string]time.Duration{}
	before := exists()
	journal := filepath.Join(s.config().StateDir, "lifecycle", "rebuild", "journal.json")
	for i := 0; killed < kills && i < 8*kills; i++ {
		name := names[rng.IntN(len(names))]
		var argv0 string
		var args []string
		switch op := rng.IntN(6); op {
		case 0, 1:
			argv0, args = "devhost", []string{"ensure", name, "--channel", channel, "--alias", fmt.Sprintf("a%d", rng.IntN(3))}
		case 2:
			argv0, args = "fc-build-dev-container", []string{"ensure", name, channel, fmt.Sprintf("www b%d", rng.IntN(2))}
		case 3:
			if !hasNixInstantiate() { // provision.nix is checked with it
				argv0, args = "devhost", []string{"ensure", name, "--channel", channel}
				break
			}
			argv0, args = "devhost", []string{"ensure", name, "--channel", channel, "--provision-nix", "-"}
		case 4:
			argv0, args = "devhost", []string{"destroy", name}
		default:
			argv0, args = "devhost", []string{"keep", name}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd, _, errb := s.command(ctx, "alice", argv0, args...)
		if args[len(args)-1] == "-" {
			cmd.Stdin = strings.NewReader(fmt.Sprintf("{ ... }: { environment.etc.run.text = \"%d\"; }\n", i))
		}
		require.NoError(t, cmd.Start())
		nrec := len(s.records(""))
		kind := argv0 + " " + args[0]
		if typical[kind] == 0 {
			typical[kind] = 3 * first
		}
		delay := time.Duration(rng.Int64N(int64(typical[kind]) * 11 / 10))
		began := time.Now()
		// One run in four is killed while its host rebuild runs (once the
		// rebuild double started its grandchild), one in four once it
		// journals a change of the live set (in generator.Patch or just
		// after it), the others at a random moment.
		var hit string // the target a targeted kill hit (read after done)
		stop := make(chan struct{})
		done := make(chan struct{})
		require.Falsef(t, hasFile(journal), "run %d: a set journal was left behind", i)
		switch aim := rng.IntN(4); aim {
		case 0, 1:
			delay = -1
			atWrite := aim == 1
			gcs := len(double.Grandchildren(s.path("double")))
			go func() {
				defer close(done)
				for {
					select {
					case <-stop:
						return
					case <-time.After(pollEvery(atWrite)):
					}
					rebuilding := len(double.Grandchildren(s.path("double"))) > gcs
					if atWrite && hasFile(journal) || !atWrite && rebuilding {
						_ = cmd.Process.Signal(syscall.SIGKILL)
						if atWrite && !rebuilding && len(double.Grandchildren(s.path("double"))) == gcs {
							hit = phaseWrite
						} else if rebuilding {
							hit = phaseRebuild
						}
						return
					}
				}
			}()
		default:
			close(done)
			timer := time.AfterFunc(delay, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
			defer timer.Stop()
		}
		err := cmd.Wait()
		close(stop)
		<-done
		cancel()
		if err == nil {
			typical[kind] = (3*typical[kind] + time.Since(began)) / 4
		}
		wasKilled := false
		if err != nil {
			if st, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && st.Signaled() {
				wasKilled = true
				killed++
				recs := s.records("")
				phase := "before any command"
				switch {
				case hit != "":
					phase = hit
				case len(recs) > nrec:
					phase = recs[len(recs)-1].Tool
				}
				phases[phase]++
				if s.checkJournaled(fmt.Sprintf("run %d (%v, killed at %s)", i, args, phase)) {
					phases["(of these: inside generator.Patch, the set half written)"]++
				}
			} else if !strings.Contains(errb.String(), "not registered") {
				t.Fatalf("run %d: devhost %v failed: %v\n%s", i, args, err, errb.String())
			}
		}
		last = fmt.Sprintf("run %d: %s %v, killed %v (aimed after %s), exit %v, stderr:\n%s", i, argv0, args, wasKilled, delay, err, errb.String())
		// The next command repairs.
		s.ok("alice", "ensure", "canary", "--channel", channel)
		if os.Getenv("KILLDEBUG") != "" {
			t.Logf("run %d: %v killed=%v err=%v stderr=%s", i, args, wasKilled, err, errb.String())
		}
		s.checkConsistent()
		s.checkAllocation(fmt.Sprintf("run %d (%v, killed %v)", i, args, wasKilled))
		live, rerr := lifecycle.ReadSet(s.config().GeneratedDir)
		require.NoError(t, rerr)
		requireSameSet(t, s.fullRender(), live, fmt.Sprintf("run %d (%v, killed %v): the live set is not a full render of the registry", i, args, wasKilled))
		for _, g := range double.Grandchildren(s.path("double")) {
			require.Falsef(t, g.Alive(), "run %d (%v, killed %v after %s): grandchild %d of a rebuild is alive", i, args, wasKilled, delay, g.PID)
		}
		after := exists()
		for _, n := range append(names, "canary") {
			if n == name && (wasKilled || args[0] != "keep") {
				continue
			}
			require.Equalf(t, before[n], after[n], "run %d (%v, killed %v after %s): container %s appeared or vanished", i, args, wasKilled, delay, n)
		}
		if !wasKilled {
			switch args[0] {
			case "ensure":
				require.Truef(t, after[name], "run %d: ensure of %s returned but it is gone", i, name)
			case "destroy":
				require.Falsef(t, after[name], "run %d: destroy of %s returned but it is there", i, name)
			}
		}
		before = after
		// The doubles' state (unit files, store) is not devhost's.
		_ = os.Remove(s.path("double", "units", "container@"+name+".service"))
	}
	for _, rb := range s.records("nixos-rebuild") {
		if n, ok := rb.Extra["grandchildren_alive"]; ok { // absent before the first grandchild
			require.EqualValues(t, 0, n, "a rebuild started while a killed rebuild's grandchild ran")
		}
	}
	return killed, phases
}

// TestKilledRebuildLeavesNoGrandchild: devhost killed with SIGKILL while
// its host rebuild runs. The rebuild command dies with it, but what the
// command started (here a sleeping grandchild, as a real rebuild's nix
// builds or activation scripts would be) must not keep running while the
// next rebuild starts: the rebuild runs in a process group of its own,
// recorded in the rebuild intent, and the next rebuild kills that group
// and waits for it first. What a rebuild that ended normally left in its
// group is killed as well.
func TestKilledRebuildLeavesNoGrandchild(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, sandboxOpts{})
	s.ok("alice", "ensure", "canary", "--channel", channel)
	s.setControl(map[string]double.Control{"nixos-rebuild": {Grandchild: true, SleepMS: 60_000}})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd, _, errb := s.command(ctx, "alice", "devhost", "ensure", "shop", "--channel", channel)
	require.NoError(t, cmd.Start())
	// Wait until the rebuild runs and has started its grandchild.
	deadline := time.Now().Add(30 * time.Second)
	for len(double.Grandchildren(s.path("double"))) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	gs := double.Grandchildren(s.path("double"))
	require.Len(t, gs, 1, "the rebuild never started: %s", errb.String())
	t.Cleanup(func() {
		if gs[0].Alive() {
			_ = syscall.Kill(gs[0].PID, syscall.SIGKILL)
		}
	})
	require.True(t, gs[0].Alive(), "the grandchild died with devhost: the test proves nothing")

	// The next rebuild (the killed one's outcome is unknown: it runs).
	s.setControl(map[string]double.Control{"nixos-rebuild": {Grandchild: true}})
	s.ok("alice", "ensure", "canary", "--channel", channel)
	rebuilds := s.records("nixos-rebuild")
	last := rebuilds[len(rebuilds)-1]
	assert.EqualValues(t, 0, last.Extra["grandchildren_alive"], "a grandchild of the killed rebuild ran while the next rebuild started")
	assert.False(t, gs[0].Alive())
	// The next rebuild's own grandchild went with its group when it ended.
	gs = double.Grandchildren(s.path("double"))
	require.Len(t, gs, 2)
	assert.False(t, gs[1].Alive(), "a rebuild that ended left a grandchild running")
	s.checkConsistent()
}

// pollEvery is how often a targeted kill looks for its target: the live
// set's write takes milliseconds, the rebuild double runs for 80.
func pollEvery(atWrite bool) time.Duration {
	if atWrite {
		return 100 * time.Microsecond
	}
	return 2 * time.Millisecond
}

// lifecycleState lists the files of the sandbox's lifecycle state and
// profiles, with the contents of the small ones (intents, requests,
// records), for a failure report.
func lifecycleState(s *sandbox) string {
	var b strings.Builder
	cfg := s.config()
	for _, root := range []string{filepath.Join(cfg.StateDir, "lifecycle"), cfg.ProfileDir} {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			rel, _ := filepath.Rel(s.dir, p)
			if d.Type()&fs.ModeSymlink != 0 {
				target, _ := os.Readlink(p)
				fmt.Fprintf(&b, "  %s -> %s\n", rel, target)
				return nil
			}
			fmt.Fprintf(&b, "  %s\n", rel)
			if info, err := d.Info(); err == nil && info.Size() < 2048 && strings.HasSuffix(p, ".json") {
				data, _ := os.ReadFile(p)
				var c bytes.Buffer
				if json.Compact(&c, data) != nil {
					c.Write(bytes.TrimSpace(data))
				}
				fmt.Fprintf(&b, "    %s\n", c.Bytes())
			}
			return nil
		})
	}
	return b.String()
}

func hasFile(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// checkJournaled checks the live set as a killed run left it, before the
// next command repairs it. While a set journal exists, every file is the
// registry's full render (what the killed rebuild was writing), except
// those the journal records, each of which is either its previous copy or
// that render: a file is replaced whole, never half written. Temporary
// files of a write cut short are left for the next command (which the
// byte-for-byte check of checkConsistent then proves it removed). Without
// a journal the set is checked after the next command only. It reports
// whether the write was cut short in the middle: some journaled files
// already new and some still old, or a temporary file left.
func (s *sandbox) checkJournaled(what string) (midPatch bool) {
	t := s.t
	t.Helper()
	cfg := s.config()
	b, err := os.ReadFile(filepath.Join(cfg.StateDir, "lifecycle", "rebuild", "journal.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	require.NoError(t, err)
	var j struct {
		Prev map[string][]byte `json:"files"` // nil: absent
	}
	require.NoErrorf(t, json.Unmarshal(b, &j), "%s: set journal", what)
	want := s.fullRender()
	live, err := lifecycle.ReadSet(cfg.GeneratedDir)
	require.NoError(t, err)
	paths := map[string]bool{}
	for _, set := range []*generator.Set{want, live} {
		for _, p := range set.Paths() {
			paths[p] = true
		}
	}
	for p := range j.Prev {
		paths[p] = true
	}
	var someNew, someOld bool
	for p := range paths {
		if strings.HasPrefix(filepath.Base(p), ".") && strings.Contains(filepath.Base(p), ".tmp") {
			midPatch = true // a temporary file of generator.Patch
			continue
		}
		got, inLive := live.Files[p]
		w, inWant := want.Files[p]
		isWant := inLive == inWant && bytes.Equal(got, w)
		prev, journaled := j.Prev[p]
		if !journaled {
			require.Truef(t, isWant, "%s: %s, which the set journal does not record, is not the registry's render", what, p)
			continue
		}
		isPrev := (prev == nil) == !inLive && (prev == nil || bytes.Equal(prev, got))
		require.Truef(t, isWant || isPrev, "%s: %s is neither the journal's previous copy nor the registry's render", what, p)
		someNew = someNew || isWant && !isPrev
		someOld = someOld || isPrev && !isWant
	}
	return midPatch || someNew && someOld
}

// checkAllocation allocates an address from the start of the pool (the
// high-water mark removed), so that the allocation has to skip every
// registered container's address: whatever a kill left of the registry's
// address cache, the address must be free.
func (s *sandbox) checkAllocation(what string) {
	t := s.t
	t.Helper()
	reg := registry.Open(s.config().StateDir)
	unlock, err := reg.Lock(context.Background())
	require.NoError(t, err)
	var a, a6 netip.Addr
	for _, f := range []string{"addresses.hcl", "addresses6.hcl"} {
		if err = os.Remove(filepath.Join(s.config().StateDir, f)); errors.Is(err, fs.ErrNotExist) {
			err = nil
		} else if err != nil {
			break
		}
	}
	if err == nil {
		a, a6, err = reg.AllocateBoth(s.config().Addresses, "zz-probe")
	}
	unlock()
	require.NoError(t, err, what)
	for _, c := range s.registry() {
		require.NotEqualf(t, a, c.Address, "%s: the next allocation hands out %s's address", what, c.Name)
		if a6.IsValid() {
			require.NotEqualf(t, a6, c.Address6, "%s: the next allocation hands out %s's IPv6 address", what, c.Name)
		}
	}
}
