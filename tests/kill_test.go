package tests

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/tests/doubles/double"
)

// TestKillAtRandomMoments kills devhost processes with SIGKILL at random
// moments of ensure, destroy and keep (with slow doubles, so kills land in
// builds, profile installs, rebuilds and everything between). After each
// kill the next command must leave registry, generated set, profiles and
// build records in agreement, with nothing pending, and no container but
// the killed command's own may have changed.
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
		"nixos-rebuild": {SleepMS: 80},
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
		timer := time.AfterFunc(delay, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
		err := cmd.Wait()
		timer.Stop()
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
				if len(recs) > nrec {
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
	return killed, phases
}
