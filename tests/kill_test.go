package tests

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/tests/doubles/double"
)

// TestKillAtRandomMoments kills devhost processes with SIGKILL at random
// moments of ensure, destroy and keep (with slow doubles, so kills land in
// builds, profile installs, rebuilds and everything between). After each
// kill the next command must leave registry, generated set, profiles and
// build records in agreement, with nothing pending, and no container but
// the killed command's own may have changed. Every rebuild leaves a
// sleeping grandchild: none may be alive when a rebuild starts, nor after
// the next command.
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
	t.Logf("%d processes killed with SIGKILL at random moments; the last external command each had started: %v", killed, phases)
	require.GreaterOrEqual(t, killed, total*9/10, "too few runs were killed")
}

// killLoop runs random commands until kills of them were killed (at most
// 4*kills runs: a command may finish before its kill).
func killLoop(t *testing.T, kills int, rng *rand.Rand) (killed int, phases map[string]int) {
	s := newSandbox(t, sandboxOpts{})
	s.setControl(map[string]double.Control{
		"nix-build":     {SleepMS: 50},
		"nix-env":       {SleepMS: 5},
		"nixos-rebuild": {SleepMS: 80, Grandchild: true},
	})
	phases = map[string]int{}
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
	for i := 0; killed < kills && i < 4*kills; i++ {
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
		// rebuild double started its grandchild), the others at a random
		// moment.
		var inRebuild atomic.Bool
		stop := make(chan struct{})
		if rng.IntN(4) == 0 {
			delay = -1
			gcs := len(double.Grandchildren(s.path("double")))
			go func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(2 * time.Millisecond):
					}
					if len(double.Grandchildren(s.path("double"))) > gcs {
						inRebuild.Store(true)
						_ = cmd.Process.Signal(syscall.SIGKILL)
						return
					}
				}
			}()
		} else {
			timer := time.AfterFunc(delay, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
			defer timer.Stop()
		}
		err := cmd.Wait()
		close(stop)
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
				case inRebuild.Load():
					phase = "the host rebuild (targeted)"
				case len(recs) > nrec:
					phase = recs[len(recs)-1].Tool
				}
				phases[phase]++
			} else if !strings.Contains(errb.String(), "not registered") {
				t.Fatalf("run %d: devhost %v failed: %v\n%s", i, args, err, errb.String())
			}
		}
		// The next command repairs.
		s.ok("alice", "ensure", "canary", "--channel", channel)
		if os.Getenv("KILLDEBUG") != "" {
			t.Logf("run %d: %v killed=%v err=%v stderr=%s", i, args, wasKilled, err, errb.String())
		}
		s.checkConsistent()
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
