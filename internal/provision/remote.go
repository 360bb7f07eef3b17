package provision

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flyingcircusio/devhost/internal/channel"
	"github.com/flyingcircusio/devhost/internal/environment"
	"github.com/flyingcircusio/devhost/internal/limits"
	"github.com/flyingcircusio/devhost/internal/names"
	"github.com/flyingcircusio/devhost/internal/progress"
)

// Devhost is the devhost as the laptop sees it: commands run there over ssh.
type Devhost interface {
	// Reserve claims a new container name, atomically on the devhost.
	Reserve(ctx context.Context) (string, error)
	// Ensure creates or updates a container.
	Ensure(ctx context.Context, req EnsureRequest) (EnsureResult, error)
	// Destroy removes a container (no error when it does not exist).
	Destroy(ctx context.Context, name string) error
}

// EnsureRequest is what `devhost ensure` needs from the laptop.
type EnsureRequest struct {
	Name        string
	Channel     string
	Aliases     []string
	Environment string
	// Root is the deployment root on the laptop (informational).
	Root        string
	ServiceUser string
	SSHKeys     []string // authorized_keys lines for the user developer
	// ProvisionNix is the deployment's provision.nix (nil: none); it is sent
	// through ssh's standard input.
	ProvisionNix []byte
	// Limits, when any is set, are sent all together (an unset one as
	// empty, the devhost's default); none set sends none, which keeps
	// the container's limits and works with older devhosts.
	Limits limits.Limits
	// ExpireAfter, when positive, is sent as --expire-after.
	ExpireAfter time.Duration
	// Progress, when set, receives the phases the devhost reports
	// (`devhost ensure --progress=json`); a devhost too old to report
	// them is asked without.
	Progress progress.Reporter
}

// EnsureResult is what the devhost reports back.
type EnsureResult struct {
	Name    string `json:"name"`
	State   string `json:"state"`
	Address string `json:"address"`
	// HostKey is the container's ssh host key ("ssh-ed25519 AAAA…"), ""
	// when the devhost does not report one (compatibility mode).
	HostKey string   `json:"host_key"`
	URLs    []string `json:"urls"`
	// Warnings are the devhost's warnings about this ensure.
	Warnings []string `json:"warnings"`
}

// RemoteError is a devhost command that failed on the devhost or could not
// reach it. Stderr is the tail of what it printed.
type RemoteError struct {
	Host   string
	What   string // "reserve a name", "ensure web", …
	Status int    // exit status; 255 is ssh's own failure
	Stderr string
}

func (e *RemoteError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	switch {
	case e.Status == 255 && strings.Contains(msg, "Permission denied"):
		return fmt.Sprintf("%s: cannot %s: the devhost refused the ssh key (%s); check that `ssh %s` works with your keys or ssh_config",
			e.Host, e.What, lastLine(msg), e.Host)
	case e.Status == 255:
		return fmt.Sprintf("%s: cannot %s: the devhost cannot be reached: %s; check the provisioner's host and that `ssh %s true` works",
			e.Host, e.What, lastLine(msg), e.Host)
	case e.Status == 1 && msg != "":
		// devhost's exit status 1: the request was refused as bad input.
		return fmt.Sprintf("%s: cannot %s: the devhost refused: %s", e.Host, e.What, msg)
	default:
		return fmt.Sprintf("%s: cannot %s: remote command failed with exit status %d: %s", e.Host, e.What, e.Status, msg)
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// SSHDevhost runs devhost (or, in compatibility mode, batou 2.3/2.4's
// fc-build-dev-container) on the devhost through ssh, as the user, with
// sudo. Every remote command is an argv quoted word by word for the remote
// shell; every value is validated before it is sent.
type SSHDevhost struct {
	// SSH is the ssh program; Options come before the host (e.g.
	// ["-F", "<root>/ssh_config"] when the deployment has one, as batou
	// passes it).
	SSH     string
	Options []string
	Host    string // the provisioner's host, e.g. dev.example.com
	// Program is the devhost command on the devhost ("devhost").
	Program string
	// Compat speaks batou 2.3/2.4's CLI: `fc-build-dev-container ensure NAME
	// CHANNEL 'ALIASES'`, `destroy NAME`, names from `nixos-container list`.
	Compat bool
	// AutoCompat switches to Compat, once, when the devhost has no devhost
	// command (only batou 2.3/2.4's fc-build-dev-container); Notice is told.
	AutoCompat bool
	Notice     func(string)
	// Stderr receives what the remote command prints on standard error as
	// it runs (progress); it is also kept for error messages.
	Stderr io.Writer
	// Timeout per remote command; default 30 minutes (a first ensure builds
	// a whole NixOS system).
	Timeout time.Duration

	// mu guards Compat and noProgress: the hosts of an environment are
	// ensured concurrently, and a fallback switches them for all.
	mu sync.Mutex
	// noProgress: the devhost's ensure has no --progress flag.
	noProgress bool
}

// run executes argv on the devhost with sudo and returns its stdout.
func (d *SSHDevhost) run(ctx context.Context, what string, argv []string, stdin []byte) ([]byte, error) {
	return d.runAs(ctx, what, append([]string{"sudo", "-n", "--"}, argv...), stdin)
}

// runAs executes argv on the devhost as the ssh user (no sudo unless argv
// says so) and returns its stdout.
func (d *SSHDevhost) runAs(ctx context.Context, what string, argv []string, stdin []byte) ([]byte, error) {
	return d.runReporting(ctx, what, argv, stdin, nil)
}

// maxStderrTail bounds what is kept of a remote command's standard error
// for its error message.
const maxStderrTail = 4096

// runReporting is runAs, passing progress lines the remote command prints
// on standard error to events (when not nil) instead of to d.Stderr and
// the error's tail.
func (d *SSHDevhost) runReporting(ctx context.Context, what string, argv []string, stdin []byte, events progress.Reporter) ([]byte, error) {
	if err := names.Domain(d.Host); err != nil {
		return nil, fmt.Errorf("devhost: %w", err)
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	remote := Join(argv)
	args := append(append([]string{}, d.Options...), "--", d.Host, remote)
	cmd := exec.CommandContext(ctx, orDefault(d.SSH, "ssh"), args...)
	cmd.Env = childEnv(nil) // the process' environment without the secret variables
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: maxStderrTail}
	cmd.Stdout = &stdout
	cmd.Stderr = stderr
	if d.Stderr != nil {
		cmd.Stderr = io.MultiWriter(stderr, d.Stderr)
	}
	var lines *progress.LineWriter
	if events != nil {
		other := cmd.Stderr
		lines = &progress.LineWriter{Line: func(l string) {
			if _, e, ok := progress.Decode([]byte(l)); ok {
				events.Report(e)
				return
			}
			_, _ = io.WriteString(other, l+"\n")
		}}
		cmd.Stderr = lines
	}
	cmd.Stdin = bytes.NewReader(stdin)
	err := cmd.Run()
	lines.Flush()
	if err == nil {
		return stdout.Bytes(), nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%s: %s: %w", d.Host, what, ctx.Err())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return nil, &RemoteError{Host: d.Host, What: what, Status: ee.ExitCode(), Stderr: stderr.String()}
	}
	return nil, fmt.Errorf("%s: %s: %w", d.Host, what, err)
}

func (d *SSHDevhost) program() string { return orDefault(d.Program, "devhost") }

// fallBack reports whether err says the devhost has no devhost command, and
// then switches to the compatibility CLI (with AutoCompat). The shell says
// "command not found" (127) when nothing runs it through sudo; real sudo
// cannot match a command it cannot find against its rules, so a user whose
// rules name only fc-build-dev-container (the old devhost's) hears "a
// password is required" instead: then a look for the command without sudo
// (`command -v devhost`) decides.
func (d *SSHDevhost) fallBack(ctx context.Context, err error) bool {
	var re *RemoteError
	if d.compat() || !d.AutoCompat || !errors.As(err, &re) || re.Status == 255 {
		return false
	}
	msg := re.Stderr
	p := d.program()
	missing := re.Status == 127 || strings.Contains(msg, p+": command not found") || strings.Contains(msg, p+": not found")
	if !missing && strings.Contains(msg, "sudo: a password is required") {
		_, perr := d.runAs(ctx, "look for "+p, []string{"command", "-v", p}, nil)
		var pre *RemoteError
		missing = errors.As(perr, &pre) && pre.Status != 255
	}
	if !missing {
		return false
	}
	d.mu.Lock()
	was := d.Compat
	d.Compat = true
	d.mu.Unlock()
	if was {
		return true // another host's request switched already
	}
	if d.Notice != nil {
		d.Notice(fmt.Sprintf("%s has no %s command; speaking batou 2.3/2.4's fc-build-dev-container instead (names are then not reserved atomically, and host keys are not pinned)", d.Host, p))
	}
	return true
}

// Reserve asks `devhost reserve --json` for a new name, or in compatibility
// mode picks one as batou does from `nixos-container list` (not atomic:
// the old devhost has no reservation).
func (d *SSHDevhost) Reserve(ctx context.Context) (string, error) {
	if d.compat() {
		// Without sudo, as batou runs it: the old devhost's sudo rules
		// allow only fc-build-dev-container, and listing needs no root.
		out, err := d.runAs(ctx, "list containers", []string{"nixos-container", "list"}, nil)
		if err != nil {
			return "", err
		}
		taken := map[string]bool{}
		for _, l := range strings.Fields(string(out)) {
			taken[l] = true
		}
		return environment.SuggestName(nil, func(n string) bool { return taken[n] })
	}
	out, err := d.run(ctx, "reserve a name", []string{d.program(), "reserve", "--json"}, nil)
	if d.fallBack(ctx, err) {
		return d.Reserve(ctx)
	}
	if err != nil {
		return "", err
	}
	var res struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return "", fmt.Errorf("%s: devhost reserve: unexpected answer %q: %w", d.Host, truncate(out), err)
	}
	if err := names.Container(res.Name); err != nil {
		return "", fmt.Errorf("%s: devhost reserve: %w", d.Host, err)
	}
	return res.Name, nil
}

// Ensure runs `devhost ensure` (or fc-build-dev-container ensure).
func (d *SSHDevhost) Ensure(ctx context.Context, req EnsureRequest) (EnsureResult, error) {
	if err := req.validate(); err != nil {
		return EnsureResult{}, err
	}
	what := "ensure container " + req.Name
	if d.compat() {
		_, err := d.run(ctx, what, []string{"fc-build-dev-container", "ensure", req.Name, req.Channel, strings.Join(req.Aliases, " ")}, nil)
		return EnsureResult{Name: req.Name, State: "running"}, err
	}
	argv := []string{d.program(), "ensure", req.Name, "--channel", req.Channel}
	for _, a := range req.Aliases {
		argv = append(argv, "--alias", a)
	}
	if req.Environment != "" {
		argv = append(argv, "--environment", req.Environment)
	}
	if req.ServiceUser != "" {
		argv = append(argv, "--service-user", req.ServiceUser)
	}
	if req.Root != "" {
		argv = append(argv, "--root", req.Root)
	}
	for _, k := range req.SSHKeys {
		argv = append(argv, "--ssh-key", k)
	}
	if req.ProvisionNix != nil {
		argv = append(argv, "--provision-nix", "-")
	}
	argv = append(argv, req.limitFlags()...)
	argv = append(argv, "--json")
	d.mu.Lock()
	withProgress := req.Progress != nil && !d.noProgress
	d.mu.Unlock()
	var out []byte
	var err error
	if withProgress {
		out, err = d.runReporting(ctx, what, append([]string{"sudo", "-n", "--"}, append(argv, "--progress=json")...), req.ProvisionNix, req.Progress)
		if unknownProgressFlag(err) {
			// A devhost from before --progress: ask it the old way.
			d.mu.Lock()
			d.noProgress = true
			d.mu.Unlock()
			return d.Ensure(ctx, req)
		}
	} else {
		out, err = d.run(ctx, what, argv, req.ProvisionNix)
	}
	if d.fallBack(ctx, err) {
		return d.Ensure(ctx, req)
	}
	if err != nil {
		return EnsureResult{}, err
	}
	var res EnsureResult
	if err := json.Unmarshal(out, &res); err != nil {
		return EnsureResult{}, fmt.Errorf("%s: devhost ensure: unexpected answer %q: %w", d.Host, truncate(out), err)
	}
	if res.HostKey != "" {
		k, err := ParseHostKey(res.HostKey)
		if err != nil {
			return EnsureResult{}, fmt.Errorf("%s: devhost ensure %s: %w", d.Host, req.Name, err)
		}
		res.HostKey = k
	}
	if res.Name == "" {
		res.Name = req.Name
	}
	if res.State == "" {
		// ensure returns once the container runs.
		res.State = "running"
	}
	return res, nil
}

// Destroy removes a container; one that does not exist is not an error
// (`--rebuild` of a container that was never created).
func (d *SSHDevhost) Destroy(ctx context.Context, name string) error {
	if err := names.Container(name); err != nil {
		return err
	}
	argv := []string{d.program(), "destroy", name}
	if d.compat() {
		argv = []string{"fc-build-dev-container", "destroy", name}
	}
	_, err := d.run(ctx, "destroy container "+name, argv, nil)
	if d.fallBack(ctx, err) {
		return d.Destroy(ctx, name)
	}
	var re *RemoteError
	if errors.As(err, &re) && re.Status != 255 && strings.Contains(strings.ToLower(re.Stderr), "not registered") {
		return nil
	}
	return err
}

func (d *SSHDevhost) compat() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.Compat
}

// unknownProgressFlag reports whether err is a devhost refusing
// --progress as an unknown flag (cobra's usage error).
func unknownProgressFlag(err error) bool {
	var re *RemoteError
	return errors.As(err, &re) && re.Status != 255 && strings.Contains(re.Stderr, "unknown flag: --progress")
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

func (r EnsureRequest) validate() error {
	if err := names.Container(r.Name); err != nil {
		return err
	}
	if _, err := channel.Parse(r.Channel); err != nil {
		return err
	}
	for _, a := range r.Aliases {
		if err := names.Alias(a); err != nil {
			return err
		}
	}
	if r.ServiceUser != "" {
		if err := names.User(r.ServiceUser); err != nil {
			return err
		}
	}
	for _, k := range r.SSHKeys {
		if _, err := ParseHostKey(k); err != nil {
			return fmt.Errorf("ssh key: %w", err)
		}
	}
	if err := r.Limits.Check(); err != nil {
		return err
	}
	if r.ExpireAfter < 0 || r.ExpireAfter > limits.MaxExpireAfter || r.ExpireAfter%time.Minute != 0 {
		return fmt.Errorf("expire after %s: use whole minutes up to %s", r.ExpireAfter, limits.MaxExpireAfter)
	}
	return nil
}

// limitFlags are the ensure flags of req's limits and expiry, each as one
// --flag=value argument (an empty value stays one argument).
func (r EnsureRequest) limitFlags() []string {
	var out []string
	if !r.Limits.IsZero() {
		num := func(n int) string {
			if n == 0 {
				return ""
			}
			return strconv.Itoa(n)
		}
		out = append(out, "--memory-max="+r.Limits.MemoryMax, "--cpu-weight="+num(r.Limits.CPUWeight),
			"--cpu-quota="+r.Limits.CPUQuota, "--tasks-max="+num(r.Limits.TasksMax))
	}
	if r.ExpireAfter > 0 {
		out = append(out, "--expire-after="+strconv.FormatInt(int64(r.ExpireAfter/time.Minute), 10)+"m")
	}
	return out
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}
