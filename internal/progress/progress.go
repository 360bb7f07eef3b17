// Package progress carries the phases of long work (an ensure builds a
// NixOS system and waits for the shared host rebuild, minutes in all) from
// the code doing it to whoever shows them: the devhost's own stderr, JSON
// lines read over ssh by `devhost up` on the laptop, or batou.
//
// Library code only reports Events to a Reporter; it never prints. The
// Renderer (render.go) turns events into lines for people, and Encode and
// Decode are the JSON line format that crosses ssh.
package progress

import (
	"bytes"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Phase is one step of long work. The phases of an ensure, in order:
// Validated, Building (repeated with each Nix log line) and Built when its
// system needs building, Waiting (repeated when the count of requests
// sharing the rebuild changes), Applied, Starting, Done. `devhost up` adds
// Provisioning (provision.sh and the container's own rebuild) per host.
type Phase string

// The phases.
const (
	Validated    Phase = "validated"
	Building     Phase = "building"
	Built        Phase = "built"
	Waiting      Phase = "waiting"
	Applied      Phase = "applied"
	Starting     Phase = "starting"
	Provisioning Phase = "provisioning"
	Done         Phase = "done"
	Failed       Phase = "failed"
)

// Event is one report: the container, its phase and how long its work has
// been running.
type Event struct {
	Phase     Phase
	Container string
	// Elapsed is the time since the work on Container began.
	Elapsed time.Duration
	// Detail is free text: the last line of Nix's build log, what a
	// finished phase did ("host rebuilt").
	Detail string
	// Shared is, for Waiting, how many requests (this one included) the
	// host rebuild it waits for applies together; 0 when unknown.
	Shared int
}

// Reporter receives events. Implementations must be safe for concurrent
// use: the build log and a waiting ensure's poller report from their own
// goroutines.
type Reporter interface {
	Report(Event)
}

// Func adapts a function to a Reporter.
type Func func(Event)

// Report calls f(e).
func (f Func) Report(e Event) { f(e) }

// MaxDetail bounds an event's detail in bytes (a Nix log line can be
// kilobytes of store paths).
const MaxDetail = 240

// Tracker reports the phases of one piece of work on one container,
// stamping each with the time elapsed since Start. A nil *Tracker reports
// nothing, so callers need no checks.
type Tracker struct {
	r         Reporter
	container string
	now       func() time.Time
	start     time.Time
}

// Start begins tracking container's work; r nil returns nil (silence).
// now is the clock (time.Now when nil).
func Start(r Reporter, container string, now func() time.Time) *Tracker {
	if r == nil {
		return nil
	}
	if now == nil {
		now = time.Now
	}
	return &Tracker{r: r, container: container, now: now, start: now()}
}

// Phase reports p with an optional detail.
func (t *Tracker) Phase(p Phase, detail string) {
	if t == nil {
		return
	}
	t.r.Report(Event{Phase: p, Container: t.container, Elapsed: t.now().Sub(t.start), Detail: CleanDetail(detail)})
}

// Waiting reports that the work waits for a rebuild shared by n requests.
func (t *Tracker) Waiting(n int) {
	if t == nil {
		return
	}
	t.r.Report(Event{Phase: Waiting, Container: t.container, Elapsed: t.now().Sub(t.start), Shared: n})
}

// LogWriter returns a writer that reports each complete non-empty line
// written to it as phase p with the line as its detail (a build's log);
// nil for a nil Tracker. Lines longer than a few KiB are reported cut.
func (t *Tracker) LogWriter(p Phase) *LineWriter {
	if t == nil {
		return nil
	}
	return &LineWriter{Line: func(line string) {
		if line = CleanDetail(line); line != "" {
			t.Phase(p, line)
		}
	}}
}

// CleanDetail makes s one short printable line: control characters (a
// terminal escape in a Nix log line, a carriage return) become spaces,
// invalid UTF-8 is replaced, and it is cut to MaxDetail bytes.
func CleanDetail(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > MaxDetail {
		cut := MaxDetail - len("…")
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// maxLine bounds the bytes a LineWriter buffers for one line; the rest of
// a longer line is dropped (its start is what people read).
const maxLine = 4096

// LineWriter calls Line with each complete line written to it (without
// its newline). It buffers at most maxLine bytes of an unfinished line.
type LineWriter struct {
	Line func(string)

	mu  sync.Mutex
	buf []byte
}

// Write splits p into lines; it never fails.
func (w *LineWriter) Write(p []byte) (int, error) {
	if w == nil {
		return len(p), nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if room := maxLine - len(w.buf); room > 0 {
			w.buf = append(w.buf, chunk[:min(room, len(chunk))]...)
		}
		if i < 0 {
			break
		}
		w.Line(string(w.buf))
		w.buf = w.buf[:0]
		p = p[i+1:]
	}
	return n, nil
}

// Flush reports an unfinished last line.
func (w *LineWriter) Flush() {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.Line(string(w.buf))
		w.buf = w.buf[:0]
	}
}
