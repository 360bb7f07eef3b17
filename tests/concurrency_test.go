package tests

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/tests/doubles/double"
)

// TestParallelEnsureCoalesces starts 50 ensure processes with distinct
// names at once, with a slow host rebuild: all are registered with distinct
// addresses, rebuilds are shared (a few instead of 50), and every process
// returned only after a successful rebuild whose generated set declared its
// container.
func TestParallelEnsureCoalesces(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, sandboxOpts{})
	s.setControl(map[string]double.Control{
		"nixos-rebuild": {SleepMS: 400},
		"nix-build":     {SleepMS: 20},
	})
	const n = 50
	type done struct {
		name string
		res  result
	}
	results := make([]done, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("par%02d", i)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			args := []string{"ensure", name, "--channel", channel, "--alias", "www"}
			argv0 := "devhost"
			if i%5 == 0 { // some through the compatibility CLI
				argv0, args = "fc-build-dev-container", []string{"ensure", name, channel, "www"}
			}
			cmd, out, errb := s.command(ctx, "alice", argv0, args...)
			err := cmd.Run()
			r := result{stdout: out.String(), stderr: errb.String(), end: time.Now()}
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				r.code = ee.ExitCode()
			} else if err != nil {
				r.code = -1
				r.stderr += err.Error()
			}
			results[i] = done{name, r}
		}()
	}
	wg.Wait()
	for _, d := range results {
		require.Equalf(t, 0, d.res.code, "%s: %s", d.name, d.res.stderr)
	}
	cs := s.registry()
	require.Len(t, cs, n)
	addrs := map[netip.Addr]string{}
	for _, c := range cs {
		if other, dup := addrs[c.Address]; dup {
			t.Fatalf("%s and %s share %s", c.Name, other, c.Address)
		}
		addrs[c.Address] = c.Name
	}
	rebuilds := s.successfulRebuilds()
	t.Logf("%d parallel ensures: %d host rebuilds (%d nix-builds)", n, len(rebuilds), len(s.records("nix-build")))
	assert.LessOrEqual(t, len(rebuilds), n/5, "rebuilds were not coalesced")
	// Each process returned after a rebuild that included its container.
	sort.Slice(rebuilds, func(i, j int) bool { return rebuilds[i].End.Before(rebuilds[j].End) })
	for _, d := range results {
		found := false
		for _, rb := range rebuilds {
			if !rb.End.After(d.res.end) && setNames(rb)[d.name] {
				found = true
				break
			}
		}
		assert.Truef(t, found, "%s returned before any rebuild declared it", d.name)
	}
	// Only one rebuild at a time.
	for i := 1; i < len(rebuilds); i++ {
		assert.False(t, rebuilds[i].Start.Before(rebuilds[i-1].End), "rebuilds overlapped")
	}
	s.checkConsistent()
}

// TestParallelEnsureSameName: 10 processes ensuring one name end with one
// consistent container.
func TestParallelEnsureSameName(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, sandboxOpts{})
	s.setControl(map[string]double.Control{"nixos-rebuild": {SleepMS: 100}, "nix-build": {SleepMS: 20}})
	var wg sync.WaitGroup
	codes := make([]int, 10)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			aliases := fmt.Sprintf("www a%d", i%3)
			r := s.runArgv0("alice", "devhost", "ensure", "same", "--channel", channel, "--alias", "www", "--alias", fmt.Sprintf("a%d", i%3))
			if i%2 == 1 {
				r = s.runArgv0("alice", "fc-build-dev-container", "ensure", "same", channel, aliases)
			}
			codes[i] = r.code
		}()
	}
	wg.Wait()
	for i, c := range codes {
		assert.Equalf(t, 0, c, "process %d", i)
	}
	cs := s.registry()
	require.Len(t, cs, 1)
	c := cs[0]
	assert.Equal(t, "same", c.Name)
	assert.Equal(t, "10.100.0.2", c.Address.String())
	require.Len(t, c.Aliases, 2)
	assert.Equal(t, "www", c.Aliases[0])
	// The first one created it, every later one found it.
	creates := 0
	for _, rec := range s.records("nix-env") {
		if rec.Argv[2] == "--set" {
			creates++
		}
	}
	assert.GreaterOrEqual(t, creates, 1)
	s.checkConsistent()
}

// TestParallelEnsureWithFailingRebuild: every request a failed rebuild
// contained gets its error; none of their containers stays registered, and
// the containers that were there before are untouched.
func TestParallelEnsureWithFailingRebuild(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, sandboxOpts{})
	s.ok("bob", "ensure", "before", "--channel", channel)
	s.setControl(map[string]double.Control{"nixos-rebuild": {Fail: true, SleepMS: 200, Message: "error: infinite recursion encountered (double)"}})
	var wg sync.WaitGroup
	res := make([]result, 12)
	for i := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = s.runAs("alice", "ensure", fmt.Sprintf("fail%02d", i), "--channel", channel)
		}()
	}
	wg.Wait()
	for i, r := range res {
		assert.Equalf(t, 2, r.code, "fail%02d: %s", i, r.stderr)
		assert.Contains(t, r.stderr, "infinite recursion")
	}
	cs := s.registry()
	require.Len(t, cs, 1)
	assert.Equal(t, "before", cs[0].Name)
	failed := s.records("nixos-rebuild")[1:]
	t.Logf("12 parallel ensures, failing rebuild: %d rebuild attempts", len(failed))
	assert.LessOrEqual(t, len(failed), 6)
	s.setControl(nil)
	s.ok("alice", "ensure", "after", "--channel", channel)
	s.checkConsistent()
}
