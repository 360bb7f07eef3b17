package runner

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// running reports whether pid is a live process (not a zombie).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	state, _, ok := parseStat(b)
	return ok && state != 'Z' && state != 'X'
}

// startGrandchild runs sh, which leaves a sleeping grandchild in its
// process group, and returns the program's pgid and the grandchild's pid.
func startGrandchild(t *testing.T, killAfter bool) (pgid, pid int) {
	t.Helper()
	needSh(t)
	x := &Exec{Timeout: time.Minute}
	res, err := x.Run(context.Background(), Cmd{
		Argv:           []string{"sh", "-c", "sleep 300 >/dev/null 2>&1 </dev/null & echo $!"},
		Started:        func(p int) error { pgid = p; return nil },
		KillGroupAfter: killAfter,
	})
	require.NoError(t, err)
	pid, err = strconv.Atoi(strings.TrimSpace(string(res.Stdout)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	require.NotZero(t, pgid)
	return pgid, pid
}

// The program's process group, recorded through Started, is what the next
// command kills: a grandchild left running is gone afterwards.
func TestKillGroupKillsGrandchild(t *testing.T) {
	pgid, pid := startGrandchild(t, false)
	require.True(t, running(pid), "the grandchild must outlive its parent for this test")
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	_, pg, _ := parseStat(b)
	require.Equal(t, pgid, pg, "the grandchild is in the program's group")

	require.NoError(t, KillGroup(context.Background(), pgid, "", 10*time.Second))
	assert.False(t, running(pid))
	// A group that is gone is no error.
	require.NoError(t, KillGroup(context.Background(), pgid, "", time.Second))
}

// KillGroupAfter kills what a program that ended left in its group.
func TestKillGroupAfter(t *testing.T) {
	_, pid := startGrandchild(t, true)
	assert.False(t, running(pid))
}

// The mark finds a process that left the group (here: a new session), as
// what a command started before its group was recorded; a process without
// the mark is left alone.
func TestKillGroupByMark(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep(1)")
	}
	start := func(env ...string) int {
		cmd := exec.Command(sleep, "300")
		cmd.Env = append(os.Environ(), env...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		require.NoError(t, cmd.Start())
		pid := cmd.Process.Pid
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return pid
	}
	marked := start("DEVHOST_REBUILD=m1")
	other := start("DEVHOST_REBUILD=m2")
	require.True(t, running(marked))

	// Reaped by its Cleanup's Wait: here only "not running" counts, which
	// a zombie is.
	require.NoError(t, KillGroup(context.Background(), 0, "DEVHOST_REBUILD=m1", 10*time.Second))
	assert.False(t, running(marked))
	assert.True(t, running(other), "a process without the mark was killed")
}

func TestParseStat(t *testing.T) {
	for _, tt := range []struct {
		in    string
		state byte
		pgrp  int
		ok    bool
	}{
		{"42 (sleep) S 1 40 40 0 -1", 'S', 40, true},
		{"42 (a) b) (c) Z 1 7 7 0", 'Z', 7, true},
		{"42 (x", 0, 0, false},
		{"42 (x) S 1", 0, 0, false},
	} {
		state, pgrp, ok := parseStat([]byte(tt.in))
		assert.Equal(t, tt.ok, ok, tt.in)
		assert.Equal(t, tt.state, state, tt.in)
		assert.Equal(t, tt.pgrp, pgrp, tt.in)
	}
}
