package tests

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/generator"
	"github.com/flyingcircusio/devhost/internal/limits"
	"github.com/flyingcircusio/devhost/tests/doubles/double"
)

// TestLimitsThroughEnsure: limit flags reach the registry, the generated
// set (evaluated by real Nix) as settings of container@NAME, and status;
// an ensure without them keeps them, bad values change nothing.
func TestLimitsThroughEnsure(t *testing.T) {
	t.Parallel()
	needNix(t)
	s := newSandbox(t, sandboxOpts{})
	s.ok("alice", "ensure", "shop", "--channel", channel, "--memory-max", "2G", "--cpu-weight", "50", "--cpu-quota", "200%", "--tasks-max", "4096")
	want := limits.Limits{MemoryMax: "2G", CPUWeight: 50, CPUQuota: "200%", TasksMax: 4096}
	assert.Equal(t, want, s.entry("shop").Limits)

	nix, err := exec.LookPath("nix-instantiate")
	require.NoError(t, err)
	out, err := generator.Eval(context.Background(), []string{nix}, s.config().GeneratedDir)
	require.NoError(t, err)
	var set struct {
		Services map[string]struct {
			ServiceConfig map[string]any `json:"serviceConfig"`
		} `json:"services"`
	}
	require.NoError(t, json.Unmarshal(out, &set))
	assert.Equal(t, map[string]any{"MemoryMax": "2G", "CPUWeight": float64(50), "CPUQuota": "200%", "TasksMax": float64(4096)},
		set.Services["container@shop"].ServiceConfig)

	// Without limit flags (the compatibility CLI) the limits stay, and
	// the running container is left alone.
	calls := len(s.records("systemctl"))
	s.ok("alice", "ensure", "shop", "--channel", channel)
	assert.Equal(t, want, s.entry("shop").Limits)
	assert.Equal(t, [][]string{{"is-active", "--quiet", "container@shop.service"}}, argvs(s.records("systemctl")[calls:]))
	// Any limit flag replaces them all; empty means the host's default.
	// The host's switch leaves the running instance of NixOS' container@
	// template as it is: devhost restarts it with its new drop-in.
	rebuilds := len(s.successfulRebuilds())
	calls = len(s.records("systemctl"))
	r := s.ok("alice", "ensure", "shop", "--channel", channel, "--memory-max", "1G", "--cpu-weight", "", "--json")
	assert.Equal(t, limits.Limits{MemoryMax: "1G"}, s.entry("shop").Limits)
	assert.Len(t, s.successfulRebuilds(), rebuilds+1, "a limit change is a host rebuild")
	assert.Equal(t, [][]string{{"is-active", "--quiet", "container@shop.service"}, {"restart", "container@shop.service"}},
		argvs(s.records("systemctl")[calls:]))
	var res struct{ Unit string }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res))
	assert.Equal(t, "restarted", res.Unit)

	var st struct {
		Limits limits.Limits `json:"limits"`
	}
	require.NoError(t, json.Unmarshal([]byte(s.ok("bob", "status", "shop", "--json").stdout), &st))
	assert.Equal(t, limits.Limits{MemoryMax: "1G"}, st.Limits)
	assert.Contains(t, s.ok("bob", "status", "shop").stdout, "limits:       memory 1G\n")

	before := s.entry("shop")
	for _, bad := range [][]string{
		{"--memory-max", "1GB"}, {"--memory-max", "1G; rm -rf /"}, {"--cpu-weight", "0"}, {"--cpu-weight", "10001"},
		{"--cpu-quota", "2"}, {"--tasks-max", "-1"}, {"--tasks-max", "0x10"}, {"--expire-after", "3 days"}, {"--expire-after", "400d"},
	} {
		r := s.runAs("alice", append([]string{"ensure", "shop", "--channel", channel}, bad...)...)
		assert.Equal(t, 1, r.code, "%v: %s", bad, r.stderr)
		assert.Contains(t, r.stderr, bad[0], "the error names the flag")
	}
	assert.Equal(t, before, s.entry("shop"), "bad input changed the entry")
	s.checkConsistent()
}

// TestExpiry: --expire-after sets expires_at from now, a later ensure
// without it keeps it, and the cleanup destroys the container once it
// expired even though it is kept and was deployed recently.
func TestExpiry(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, sandboxOpts{})
	s.ok("alice", "ensure", "demo", "--channel", channel, "--expire-after", "3d")
	s.ok("alice", "ensure", "other", "--channel", channel)
	s.ok("alice", "keep", "demo")
	e := s.entry("demo")
	require.False(t, e.ExpiresAt.IsZero())
	assert.WithinDuration(t, e.Deployed.Add(72*time.Hour), e.ExpiresAt, 2*time.Second)

	s.ok("alice", "ensure", "demo", "--channel", channel)
	assert.Equal(t, e.ExpiresAt, s.entry("demo").ExpiresAt, "an ensure without --expire-after keeps the expiry")

	at2 := e.ExpiresAt.Add(-24 * time.Hour).Format(time.RFC3339)
	assert.Contains(t, s.ok("root", "cleanup", "--dry-run", "--now", at2).stdout, "nothing to clean up")

	at := e.ExpiresAt.Add(time.Minute).Format(time.RFC3339)
	r := s.ok("root", "cleanup", "--dry-run", "--now", at)
	assert.Contains(t, r.stdout, "demo        would destroy          owner alice, expired "+e.ExpiresAt.UTC().Format(time.RFC3339))
	r = s.ok("root", "cleanup", "--dry-run", "--now", at, "--json")
	var plan struct {
		Plan struct {
			Items []struct{ Name, Action, Reason string }
		}
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &plan))
	require.Len(t, plan.Plan.Items, 1)
	assert.Equal(t, "demo", plan.Plan.Items[0].Name)
	assert.Equal(t, "destroy", plan.Plan.Items[0].Action)
	assert.Equal(t, "expired", plan.Plan.Items[0].Reason)
	require.NotNil(t, s.entry("demo"), "a dry run destroys nothing")

	s.ok("root", "cleanup", "--now", at)
	assert.Nil(t, s.entry("demo"), "expired, though kept")
	assert.NotNil(t, s.entry("other"))

	// never clears an expiry.
	s.ok("alice", "ensure", "other", "--channel", channel, "--expire-after", "1h")
	assert.False(t, s.entry("other").ExpiresAt.IsZero())
	s.ok("alice", "ensure", "other", "--channel", channel, "--expire-after", "never")
	assert.True(t, s.entry("other").ExpiresAt.IsZero())
	s.checkConsistent()
}

// TestHostLimitsRestartRunningContainers: an admin changes the host's
// default limits and applies: the host's switch leaves running instances
// of NixOS' container@ template as they are, so the apply restarts the
// running containers whose drop-in changed, in one systemctl call, and
// leaves a stopped one stopped and one with limits of its own alone.
func TestHostLimitsRestartRunningContainers(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, sandboxOpts{})
	s.ok("alice", "ensure", "shop", "--channel", channel)
	s.ok("alice", "ensure", "blog", "--channel", channel)
	s.ok("alice", "ensure", "own", "--channel", channel, "--tasks-max", "100")
	s.ok("alice", "ensure", "idle", "--channel", channel)
	for _, n := range []string{"shop", "blog", "own"} {
		s.ok("alice", "keep", n)
	}
	s.ok("root", "cleanup", "--now", time.Now().Add(10*24*time.Hour).Format(time.RFC3339))
	require.Equal(t, "stopped", string(s.entry("idle").State))

	// Nothing changed: nothing restarts.
	calls := len(s.records("systemctl"))
	s.ok("root", "apply")
	assert.Empty(t, s.records("systemctl")[calls:])

	cfg, err := os.ReadFile(s.cfgPath)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(s.cfgPath, append(cfg, "limits {\n  tasks_max = 512\n}\n"...), 0o644))
	rebuilds := len(s.successfulRebuilds())
	r := s.ok("root", "apply", "--json")
	assert.Len(t, s.successfulRebuilds(), rebuilds+1)
	var res struct {
		Restarted []string `json:"restarted"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res))
	assert.Equal(t, []string{"blog", "shop"}, res.Restarted)
	recs := s.records("systemctl")[calls:]
	require.Len(t, recs, 1)
	assert.Equal(t, []string{"try-restart", "container@blog.service", "container@shop.service"}, recs[0].Argv)
	assert.Equal(t, []any{"container@blog.service", "container@shop.service"}, recs[0].Extra["restarted"], "both were running")

	// Applied once: the next apply restarts nothing.
	calls = len(s.records("systemctl"))
	assert.NotContains(t, s.ok("root", "apply").stdout, "restarted")
	assert.Empty(t, s.records("systemctl")[calls:])

	// A restart that fails: the rebuild stands, the apply says so and
	// exits 2 (a command it ran failed).
	require.NoError(t, os.WriteFile(s.cfgPath, append(cfg, "limits {\n  tasks_max = 256\n}\n"...), 0o644))
	s.setControl(map[string]double.Control{"systemctl": {Fail: true, Message: "Job for container@blog.service failed."}})
	r = s.runAs("root", "apply")
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "is applied, but restart containers whose addresses or limits changed")
	assert.Contains(t, r.stderr, "Job for container@blog.service failed.")
	assert.Len(t, s.successfulRebuilds(), rebuilds+2)
	s.setControl(nil)
	s.checkConsistent()
}
