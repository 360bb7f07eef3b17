// Package double is what devhost's test doubles share: recording their argv
// as JSON lines and obeying a control file that tells them to fail or to be
// slow. The doubles stand in for nix-build, nix-env, nixos-rebuild and
// systemctl in the end-to-end tests; they are never installed.
//
// Environment:
//
//	DEVHOST_DOUBLE_RECORD   file the JSON lines are appended to (required)
//	DEVHOST_DOUBLE_CONTROL  JSON file {"<tool>": Control}, re-read on every run
//	DEVHOST_DOUBLE_STATE    directory for state the doubles keep (store, units)
//
// A run told to (Control.Grandchild) leaves a grandchild behind: a copy of
// itself, in its process group, that sleeps for ten minutes with no stdio
// and whose pid and token (its DEVHOST_DOUBLE_SLEEPER value, so that a
// reused pid is never taken for it) are appended to <state>/grandchildren. Every run records in
// Extra["grandchildren_alive"] how many of those were still alive when it
// started, so a test can tell whether devhost reaped a killed rebuild's
// leftovers before the next rebuild began.
package double

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Control is how a test steers one tool.
type Control struct {
	Fail     bool   `json:"fail"`      // exit 1
	Message  string `json:"message"`   // printed to stderr on failure
	SleepMS  int    `json:"sleep_ms"`  // delay before doing anything
	FailArgs string `json:"fail_args"` // fail only when an argument equals this
	// Grandchild: start a sleeping grandchild before sleeping SleepMS.
	Grandchild bool `json:"grandchild"`
	// FailAfterSwitch: nixos-rebuild fails after switching the system
	// profile (an activation error).
	FailAfterSwitch bool `json:"fail_after_switch"`
}

// Record is one line of the record file.
type Record struct {
	Tool  string         `json:"tool"`
	Argv  []string       `json:"argv"`
	PID   int            `json:"pid"`
	Start time.Time      `json:"start"`
	End   time.Time      `json:"end"`
	Exit  int            `json:"exit"`
	Extra map[string]any `json:"extra,omitempty"`
}

// Run is one invocation of a double.
type Run struct {
	Rec     Record
	Control Control
}

// sleeperEnv marks the grandchild copy of a double.
const sleeperEnv = "DEVHOST_DOUBLE_SLEEPER"

// Start reads the control file, counts the live grandchildren of earlier
// runs, leaves one of its own and sleeps, as told.
func Start(tool string) *Run {
	if os.Getenv(sleeperEnv) != "" {
		time.Sleep(10 * time.Minute)
		os.Exit(0)
	}
	r := &Run{Rec: Record{Tool: tool, Argv: os.Args[1:], PID: os.Getpid(), Start: time.Now().UTC()}}
	if n, ok := aliveGrandchildren(); ok {
		r.Set("grandchildren_alive", n)
	}
	if path := os.Getenv("DEVHOST_DOUBLE_CONTROL"); path != "" {
		b, err := os.ReadFile(path)
		if err == nil {
			var all map[string]Control
			if json.Unmarshal(b, &all) == nil {
				r.Control = all[tool]
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			r.Exit(2, "control file: %v", err)
		}
	}
	if r.Control.Grandchild {
		if err := spawnGrandchild(); err != nil {
			r.Exit(2, "grandchild: %v", err)
		}
	}
	if r.Control.SleepMS > 0 {
		time.Sleep(time.Duration(r.Control.SleepMS) * time.Millisecond)
	}
	return r
}

func grandchildrenFile() string { return filepath.Join(StateDir(), "grandchildren") }

// spawnGrandchild starts a sleeping copy of this program in this
// process's group, not waited for, and records its pid and token.
func spawnGrandchild() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	token := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano())
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), sleeperEnv+"="+token)
	if err := cmd.Start(); err != nil {
		return err
	}
	if err := os.MkdirAll(StateDir(), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(grandchildrenFile(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	_, err = fmt.Fprintf(f, "%d %s\n", cmd.Process.Pid, token)
	return err
}

// Grandchild is a sleeping grandchild a double left.
type Grandchild struct {
	PID   int
	Token string
}

// Grandchildren lists every grandchild doubles left in the state
// directory dir.
func Grandchildren(dir string) []Grandchild {
	b, err := os.ReadFile(filepath.Join(dir, "grandchildren"))
	if err != nil {
		return nil
	}
	var out []Grandchild
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		if pid, err := strconv.Atoi(f[0]); err == nil {
			out = append(out, Grandchild{PID: pid, Token: f[1]})
		}
	}
	return out
}

// Alive reports whether g still runs: its pid exists, is not a zombie and
// carries g's token (a reused pid does not).
func (g Grandchild) Alive() bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", g.PID))
	if err != nil {
		return false
	}
	if i := strings.LastIndexByte(string(stat), ')'); i < 0 || len(stat) < i+3 || stat[i+2] == 'Z' || stat[i+2] == 'X' {
		return false
	}
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", g.PID))
	return err == nil && strings.Contains("\x00"+string(env), "\x00"+sleeperEnv+"="+g.Token+"\x00")
}

// aliveGrandchildren counts the live grandchildren recorded so far; ok is
// false when none was ever recorded.
func aliveGrandchildren() (n int, ok bool) {
	gs := Grandchildren(StateDir())
	for _, g := range gs {
		if g.Alive() {
			n++
		}
	}
	return n, len(gs) > 0
}

// ShouldFail says whether the control file asks this run to fail.
func (r *Run) ShouldFail() bool {
	if !r.Control.Fail {
		return false
	}
	if r.Control.FailArgs == "" {
		return true
	}
	for _, a := range r.Rec.Argv {
		if a == r.Control.FailArgs {
			return true
		}
	}
	return false
}

// Set records an extra fact about the run.
func (r *Run) Set(k string, v any) {
	if r.Rec.Extra == nil {
		r.Rec.Extra = map[string]any{}
	}
	r.Rec.Extra[k] = v
}

// Exit appends the record and exits with code, printing msg to stderr
// when it is not empty.
func (r *Run) Exit(code int, format string, args ...any) {
	if format != "" {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
	r.Rec.End = time.Now().UTC()
	r.Rec.Exit = code
	if err := appendRecord(r.Rec); err != nil {
		fmt.Fprintf(os.Stderr, "double %s: %v\n", r.Rec.Tool, err)
		os.Exit(3)
	}
	os.Exit(code)
}

// FailIfAsked exits 1 when the control file says so.
func (r *Run) FailIfAsked() {
	if r.ShouldFail() {
		msg := r.Control.Message
		if msg == "" {
			msg = "error: " + r.Rec.Tool + " failed (test double told to fail)"
		}
		r.Exit(1, "%s", msg)
	}
}

func appendRecord(rec Record) error {
	path := os.Getenv("DEVHOST_DOUBLE_RECORD")
	if path == "" {
		return errors.New("DEVHOST_DOUBLE_RECORD is not set")
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	// One writer at a time, so lines never interleave.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	return err
}

// StateDir is the doubles' own state directory.
func StateDir() string {
	d := os.Getenv("DEVHOST_DOUBLE_STATE")
	if d == "" {
		d = os.TempDir()
	}
	return d
}
