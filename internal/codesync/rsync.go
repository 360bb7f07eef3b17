package codesync

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/flyingcircusio/devhost/internal/names"
	"github.com/flyingcircusio/devhost/internal/provision"
)

// Sync is one rsync of a local directory into a container.
type Sync struct {
	// Rsync and SSH are the programs ("" = rsync, ssh from PATH).
	Rsync, SSH string
	// SSHConfig is the environment's ssh_config_<env>, which names the
	// container, its ProxyJump and pinned host key.
	SSHConfig string
	// Host is the container's Host name in SSHConfig (its real name).
	Host string
	// ServiceUser owns what is written (rsync runs as that user through
	// sudo in the container); "" writes as developer.
	ServiceUser string
	// Src is the local directory, absolute; its contents are synced.
	Src string
	// Dest is the directory in the container, absolute.
	Dest string
	// Rules leave files out; .git is always left out.
	Rules *Rules
	// Delete removes what is in Dest but no longer in Src (not what the
	// rules leave out: rsync protects excluded files on the receiver).
	Delete bool
}

// Result is what one sync did.
type Result struct {
	Files   int           `json:"files"`   // files, links and devices written
	Deleted int           `json:"deleted"` // paths removed from Dest
	Elapsed time.Duration `json:"-"`
	Seconds float64       `json:"seconds"`
	// Vanished: files disappeared while rsync read them (an editor's
	// temporary file); the next change syncs again.
	Vanished bool `json:"vanished,omitempty"`
}

// Error is a failed rsync: its exit status and the tail of what it printed.
type Error struct {
	Status int
	Stderr string
}

func (e *Error) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if e.Status == 255 || strings.Contains(msg, "connection unexpectedly closed") {
		return fmt.Sprintf("rsync could not reach the container (exit status %d): %s; check that `ssh -F ssh_config_<env> <host> true` works", e.Status, msg)
	}
	return fmt.Sprintf("rsync failed with exit status %d: %s", e.Status, msg)
}

// Validate checks every value that reaches rsync's argv or the remote
// shell.
func (s *Sync) Validate() error {
	if err := names.Container(s.Host); err != nil {
		return fmt.Errorf("host: %w", err)
	}
	if s.ServiceUser != "" {
		if err := names.User(s.ServiceUser); err != nil {
			return fmt.Errorf("service user: %w", err)
		}
	}
	if !path.IsAbs(s.Src) || !path.IsAbs(s.Dest) {
		return fmt.Errorf("source %q and destination %q must be absolute paths", s.Src, s.Dest)
	}
	if strings.ContainsAny(s.Dest, "\x00\n") {
		return fmt.Errorf("destination %q: no NUL or newline in a path", s.Dest)
	}
	return nil
}

// Argv returns rsync's command line. Nothing in it passes through a local
// shell. Two values reach the remote one: --rsync-path, which is built
// from a validated user name and quoted word by word, and the destination,
// which --protect-args sends inside rsync's protocol instead of on the
// remote command line. The -e value is split by rsync itself, with its
// own quoting (provision.RsyncRSH).
func (s *Sync) Argv() ([]string, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	argv := []string{orDefault(s.Rsync, "rsync"), "--archive", "--compress", "--protect-args",
		"--out-format=%i", "--rsh=" + provision.RsyncRSH(orDefault(s.SSH, "ssh"), s.SSHConfig)}
	if s.ServiceUser != "" {
		argv = append(argv, "--rsync-path="+provision.Join([]string{"sudo", "-n", "-u", s.ServiceUser, "--", "rsync"}))
	}
	if s.Delete {
		argv = append(argv, "--delete")
	}
	for _, f := range s.Rules.RsyncFilters() {
		argv = append(argv, "--filter="+f)
	}
	return append(argv, "--", strings.TrimSuffix(s.Src, "/")+"/", s.Host+":"+strings.TrimSuffix(s.Dest, "/")+"/"), nil
}

// Run runs rsync once. Its standard error goes to stderr as it comes (ssh's
// questions, rsync's warnings) and is kept for the error. When ctx ends,
// rsync gets SIGTERM (it then removes its partial file), SIGKILL 5 seconds
// later.
func (s *Sync) Run(ctx context.Context, stderr io.Writer) (Result, error) {
	argv, err := s.Argv()
	if err != nil {
		return Result{}, err
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	var out, errBuf bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errBuf
	if stderr != nil {
		cmd.Stderr = io.MultiWriter(&errBuf, stderr)
	}
	start := time.Now()
	err = cmd.Run()
	res := countItems(out.Bytes())
	res.Elapsed = time.Since(start)
	res.Seconds = res.Elapsed.Round(10 * time.Millisecond).Seconds()
	if err == nil {
		return res, nil
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return res, fmt.Errorf("rsync: %w", err)
	}
	if ee.ExitCode() == 24 {
		// "some files vanished before they could be transferred"
		res.Vanished = true
		return res, nil
	}
	tail := errBuf.String()
	if len(tail) > 4096 {
		tail = tail[len(tail)-4096:]
	}
	return res, &Error{Status: ee.ExitCode(), Stderr: tail}
}

// countItems counts rsync's --out-format=%i lines: "*deleting" for a
// removed path, "<f…" for a file sent to the remote side (">f…" received),
// "c…" for a link or device created (a directory, "cd", is not counted).
func countItems(out []byte) Result {
	var r Result
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "*deleting"):
			r.Deleted++
		case len(l) >= 2 && strings.IndexByte("<>c", l[0]) >= 0 && l[1] != 'd':
			r.Files++
		}
	}
	return r
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
