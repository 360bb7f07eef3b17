// Package runner runs devhost's external commands (nix-build, nix-env,
// nixos-rebuild, nixos-container, systemctl): always by argv, never through a
// shell, with a timeout, with their output captured, and with a record of
// every run handed to a logger the caller chooses (the command line passes
// one writing to stderr, which systemd puts in the journal).
//
// Environment values are never logged: a Cmd lists extra variables, and only
// their names appear in the log record.
package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Cmd is one invocation of an external program.
type Cmd struct {
	// Argv is the program and its arguments; Argv[0] is an absolute path or
	// a name looked up in PATH.
	Argv []string
	// Env holds extra "NAME=value" entries added to the process'
	// environment. Only the names are logged.
	Env []string
	// Dir is the working directory ("" = the caller's).
	Dir string
	// Stdin is fed to the program (nil = empty).
	Stdin io.Reader
	// Timeout overrides the runner's default timeout when positive.
	Timeout time.Duration
	// Log, when set, receives stdout and stderr as they are produced (e.g.
	// the rebuild log file under <state>/log/).
	Log io.Writer
	// Started, when set, is called once the program runs, with its process
	// id, which is also the id of the process group it and everything it
	// starts run in (on Linux). The host rebuild records it, so that the
	// next rebuild can kill what a killed devhost left running (KillGroup).
	// An error from Started kills the program and is returned.
	Started func(pgid int) error
	// KillGroupAfter kills what is left of the program's process group
	// once the program exited (grandchildren it left behind), and waits
	// until it is gone.
	KillGroupAfter bool
}

// Result is what a finished program left behind.
type Result struct {
	Stdout   []byte // at most MaxStdout bytes
	Stderr   []byte // a digest: the first and last lines, long lines cut in the middle
	ExitCode int    // -1 when it did not exit normally
	Duration time.Duration
}

// MaxStdout bounds the captured standard output (store paths, JSON).
const MaxStdout = 4 << 20

// Error reports a program that failed: non-zero exit, killed, or timed out.
type Error struct {
	Argv     []string
	ExitCode int
	TimedOut bool
	Err      error // the underlying error from os/exec
	// Tail is a short digest of its standard error (or output), for
	// people: the first and last lines, each cut in the middle when long,
	// so that both Nix's message with its position and the end survive.
	Tail string
}

func (e *Error) Error() string {
	what := fmt.Sprintf("exit status %d", e.ExitCode)
	switch {
	case e.TimedOut:
		what = "timed out"
	case e.ExitCode < 0:
		what = e.Err.Error()
	}
	msg := fmt.Sprintf("%s: %s", strings.Join(e.Argv, " "), what)
	if t := strings.TrimSpace(e.Tail); t != "" {
		msg += ":\n" + t
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Runner runs external commands. Exec is the real one; tests of packages
// above may use their own.
type Runner interface {
	Run(ctx context.Context, c Cmd) (Result, error)
}

// Exec runs commands with os/exec.
type Exec struct {
	// Timeout applies to every command without its own (0 = none).
	Timeout time.Duration
	// Logger receives one record per run (nil = no logging).
	Logger *slog.Logger
	// Path, when set, is the PATH that commands named without a slash are
	// looked up in and that they inherit, instead of this process' PATH.
	// devhost run by root through sudo sets it: sudo keeps the caller's
	// PATH, which would otherwise choose the nix-build that runs as root.
	Path string
}

// SecurePath is the PATH devhost gives commands when root runs it for a sudo
// user: NixOS' setuid wrappers and system profile, then the usual places.
const SecurePath = "/run/wrappers/bin:/run/current-system/sw/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// lookPath resolves a command name in path (a PATH value) the way
// exec.LookPath does in the process' own PATH.
func lookPath(name, path string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue // never the working directory, never relative entries
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w in PATH %s", name, exec.ErrNotFound, path)
}

// Run starts c.Argv[0] with c.Argv[1:] and waits for it. A non-zero exit is
// an *Error carrying the tail of its output.
func (x *Exec) Run(ctx context.Context, c Cmd) (Result, error) {
	if len(c.Argv) == 0 {
		return Result{ExitCode: -1}, errors.New("runner: empty argv")
	}
	timeout := x.Timeout
	if c.Timeout > 0 {
		timeout = c.Timeout
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	prog := c.Argv[0]
	if x.Path != "" {
		p, err := lookPath(prog, x.Path)
		if err != nil {
			return Result{ExitCode: -1}, fmt.Errorf("runner: %w", err)
		}
		prog = p
	}
	cmd := exec.CommandContext(ctx, prog, c.Argv[1:]...)
	cmd.Args[0] = c.Argv[0]
	cmd.Dir = c.Dir
	switch {
	case x.Path != "":
		cmd.Env = append(withPath(os.Environ(), x.Path), c.Env...)
	case len(c.Env) > 0:
		cmd.Env = append(os.Environ(), c.Env...)
	}
	cmd.Stdin = c.Stdin
	stdout := &capped{max: MaxStdout}
	stderr := newDigest()
	if c.Log != nil {
		lw := &syncWriter{w: c.Log}
		cmd.Stdout = io.MultiWriter(stdout, lw)
		cmd.Stderr = io.MultiWriter(stderr, lw)
	} else {
		cmd.Stdout, cmd.Stderr = stdout, stderr
	}
	setProcessGroup(cmd)
	cmd.WaitDelay = 10 * time.Second

	start := time.Now()
	err := cmd.Start()
	if err == nil && c.Started != nil {
		if serr := c.Started(cmd.Process.Pid); serr != nil {
			_ = killGroup(cmd.Process.Pid)
			_ = cmd.Wait()
			return Result{ExitCode: -1}, fmt.Errorf("runner: %s: %w", c.Argv[0], serr)
		}
	}
	if err == nil {
		err = cmd.Wait()
		if c.KillGroupAfter {
			// Best effort: the program's own result is what counts.
			_ = KillGroup(context.WithoutCancel(ctx), cmd.Process.Pid, "", 30*time.Second)
		}
	}
	res := Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: -1, Duration: time.Since(start)}
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	x.log(c, res, err)
	if err != nil {
		e := &Error{Argv: c.Argv, ExitCode: res.ExitCode, Err: err,
			TimedOut: errors.Is(ctx.Err(), context.DeadlineExceeded)}
		out := res.Stderr
		if len(bytes.TrimSpace(out)) == 0 {
			out = res.Stdout
		}
		e.Tail = string(shortDigest(out))
		return res, e
	}
	return res, nil
}

func (x *Exec) log(c Cmd, res Result, err error) {
	if x.Logger == nil {
		return
	}
	names := make([]string, 0, len(c.Env))
	for _, kv := range c.Env {
		name, _, _ := strings.Cut(kv, "=")
		names = append(names, name)
	}
	attrs := []any{
		slog.Any("argv", c.Argv),
		slog.Int("exit", res.ExitCode),
		slog.Duration("duration", res.Duration.Round(time.Millisecond)),
	}
	if len(names) > 0 {
		attrs = append(attrs, slog.Any("env", names))
	}
	if err != nil {
		attrs = append(attrs, slog.String("stderr_tail", string(lastLines(res.Stderr, 10))))
		x.Logger.Warn("command failed", attrs...)
		return
	}
	x.Logger.Info("command", attrs...)
}

// lastLines returns at most n trailing lines of b.
func lastLines(b []byte, n int) []byte {
	b = bytes.TrimRight(b, "\n")
	i := len(b)
	for ; n > 0 && i > 0; n-- {
		j := bytes.LastIndexByte(b[:i], '\n')
		if j < 0 {
			return b
		}
		i = j
	}
	if i == 0 {
		return b
	}
	return b[i+1:]
}

// shortDigest is the digest of b kept in an Error: a few lines, each cut
// to a few hundred bytes.
func shortDigest(b []byte) []byte {
	d := &digest{headLines: 10, tailLines: 30, keep: 160}
	_, _ = d.Write(bytes.TrimRight(b, "\n"))
	return d.Bytes()
}

// capped keeps the first max bytes written.
type capped struct {
	buf bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		if len(p) > room {
			c.buf.Write(p[:room])
		} else {
			c.buf.Write(p)
		}
	}
	return len(p), nil
}

func (c *capped) Bytes() []byte { return c.buf.Bytes() }

// syncWriter serialises writes of stdout and stderr to one log.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// withPath returns env with its PATH entries replaced by one PATH=path.
func withPath(env []string, path string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "PATH=") {
			out = append(out, kv)
		}
	}
	return append(out, "PATH="+path)
}

// KillGroup kills, with SIGKILL, every process of the process group pgid
// (when pgid > 1) and every process whose environment holds the entry
// mark ("NAME=value"; when not empty), and waits until none is left
// (zombies, which only wait for their parent to reap them, do not count),
// for at most timeout. devhost uses it for a host rebuild whose devhost was
// killed: its direct child died with devhost (parent-death signal), but a
// grandchild would keep running, and perhaps writing, while the next
// rebuild starts. The mark, set in the command's environment before it
// starts, also finds what a command started before its group could be
// recorded.
func KillGroup(ctx context.Context, pgid int, mark string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if pgid > 1 {
			if err := killGroup(pgid); err != nil {
				return fmt.Errorf("runner: kill process group %d: %w", pgid, err)
			}
		}
		pids, err := groupMembers(pgid, mark)
		if err != nil {
			return fmt.Errorf("runner: process group %d: %w", pgid, err)
		}
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			if err := killPid(pid); err != nil {
				return fmt.Errorf("runner: kill %d: %w", pid, err)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("runner: processes %v of an earlier command are still alive after SIGKILL: %w", pids, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
