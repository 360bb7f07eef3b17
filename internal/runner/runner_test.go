package runner

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func needSh(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("sh not found: the runner tests start /bin/sh as a stand-in program")
	}
}

func TestExecRun(t *testing.T) {
	needSh(t)
	tests := []struct {
		name     string
		argv     []string
		env      []string
		timeout  time.Duration
		stdout   string
		exit     int
		timedOut bool
		tail     string
	}{
		{name: "success", argv: []string{"sh", "-c", "echo out; echo err >&2"}, stdout: "out\n"},
		{name: "argv is not a shell line", argv: []string{"echo", "a b; rm -rf /", "$HOME"}, stdout: "a b; rm -rf / $HOME\n"},
		{name: "failure keeps stderr tail", argv: []string{"sh", "-c", "echo first >&2; echo last >&2; exit 3"}, exit: 3, tail: "first\nlast"},
		{name: "failure without stderr shows stdout", argv: []string{"sh", "-c", "echo only-out; exit 1"}, exit: 1, tail: "only-out", stdout: "only-out\n"},
		{name: "timeout", argv: []string{"sh", "-c", "sleep 5"}, timeout: 100 * time.Millisecond, exit: -1, timedOut: true},
		{name: "env reaches program", argv: []string{"sh", "-c", "echo $SECRET"}, env: []string{"SECRET=hunter2"}, stdout: "hunter2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logBuf bytes.Buffer
			x := &Exec{Timeout: time.Minute, Logger: slog.New(slog.NewTextHandler(&logBuf, nil))}
			res, err := x.Run(context.Background(), Cmd{Argv: tt.argv, Env: tt.env, Timeout: tt.timeout})
			assert.Equal(t, tt.stdout, string(res.Stdout))
			assert.Equal(t, tt.exit, res.ExitCode)
			if tt.exit == 0 {
				require.NoError(t, err)
			} else {
				var e *Error
				require.ErrorAs(t, err, &e)
				assert.Equal(t, tt.timedOut, e.TimedOut)
				assert.Equal(t, tt.tail, strings.TrimSpace(e.Tail))
			}
			assert.Contains(t, logBuf.String(), "argv=")
			assert.NotContains(t, logBuf.String(), "hunter2", "environment values must never be logged")
		})
	}
}

func TestExecLogWriter(t *testing.T) {
	needSh(t)
	var log bytes.Buffer
	x := &Exec{}
	_, err := x.Run(context.Background(), Cmd{Argv: []string{"sh", "-c", "echo one; echo two >&2"}, Log: &log})
	require.NoError(t, err)
	assert.Contains(t, log.String(), "one\n")
	assert.Contains(t, log.String(), "two\n")
}

func TestExecMissingProgram(t *testing.T) {
	x := &Exec{}
	_, err := x.Run(context.Background(), Cmd{Argv: []string{"/nonexistent/devhost-double"}})
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, -1, e.ExitCode)
	assert.False(t, errors.Is(err, context.DeadlineExceeded))
}

func TestLastLines(t *testing.T) {
	assert.Equal(t, "c\nd", string(lastLines([]byte("a\nb\nc\nd\n"), 2)))
	assert.Equal(t, "a\nb", string(lastLines([]byte("a\nb"), 5)))
	assert.Empty(t, string(lastLines(nil, 3)))
}

// TestPathChoosesCommands: with Path set, a command named without a slash
// comes from that PATH, not from this process' PATH (which sudo hands over
// from the caller), and the command inherits that PATH.
func TestPathChoosesCommands(t *testing.T) {
	good, evil := t.TempDir(), t.TempDir()
	for dir, word := range map[string]string{good: "good", evil: "evil"} {
		script := "#!/bin/sh\necho " + word + " \"$PATH\"\n"
		require.NoError(t, os.WriteFile(filepath.Join(dir, "nix-build"), []byte(script), 0o755))
	}
	t.Setenv("PATH", evil+":"+os.Getenv("PATH"))

	res, err := (&Exec{}).Run(context.Background(), Cmd{Argv: []string{"nix-build"}})
	require.NoError(t, err)
	assert.Equal(t, "evil", strings.Fields(string(res.Stdout))[0], "without Path the process' PATH decides")

	x := &Exec{Path: good + ":/usr/bin:/bin"}
	res, err = x.Run(context.Background(), Cmd{Argv: []string{"nix-build"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"good", good + ":/usr/bin:/bin"}, strings.Fields(string(res.Stdout)))

	_, err = (&Exec{Path: "relative:" + t.TempDir()}).Run(context.Background(), Cmd{Argv: []string{"nix-build"}})
	assert.ErrorIs(t, err, exec.ErrNotFound, "relative PATH entries are never searched")
}
