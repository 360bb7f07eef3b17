package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Text is e for people, without the container's name:
// "building the system: building '/nix/store/…' (12s)".
func Text(e Event) string {
	var s string
	switch e.Phase {
	case Validated:
		s = "request validated"
	case Building:
		s = "building the container's system"
	case Built:
		s = "system built"
	case Waiting:
		s = "waiting for the host rebuild"
		switch {
		case e.Shared == 1:
			s += " (this request alone)"
		case e.Shared > 1:
			s += fmt.Sprintf(" (shared by %d requests)", e.Shared)
		}
	case Applied:
		s = "host rebuild done"
	case Starting:
		s = "starting the container"
	case Provisioning:
		s = "provisioning"
	case Done:
		s = "done"
	case Failed:
		s = "failed"
	default:
		s = string(e.Phase)
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return fmt.Sprintf("%s (%s)", s, FormatElapsed(e.Elapsed))
}

// FormatElapsed is d as people read it: "0.4s", "12s", "3m05s".
func FormatElapsed(d time.Duration) string {
	switch {
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	default:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
}

// plainEvery is how often a plain renderer repeats a phase that reports
// again and again (each line of a build's log): at most once per this
// much elapsed time, so that a CI log gets a heartbeat, not Nix's log.
const plainEvery = 10 * time.Second

// Renderer shows the progress of one or more hosts (or containers) on w.
// On a terminal each has one line, updated in place (the lines form a
// block at the bottom, redrawn with ANSI cursor movement; messages are
// printed above it). Otherwise each change of phase is one plain line,
// "web: system built (42s)". Safe for concurrent use: several hosts are
// ensured at once.
type Renderer struct {
	w        io.Writer
	terminal bool
	width    int

	mu     sync.Mutex
	order  []string
	status map[string]string
	last   map[string]Event // the last event printed (plain)
	drawn  int              // lines of the block on the screen
}

// NewRenderer renders on w; terminal selects updating lines, width is the
// terminal's width in columns (lines are cut to it; 0 means 80).
func NewRenderer(w io.Writer, terminal bool, width int) *Renderer {
	if width <= 0 {
		width = 80
	}
	return &Renderer{w: w, terminal: terminal, width: width, status: map[string]string{}, last: map[string]Event{}}
}

// Reporter returns a Reporter that shows events under label (a host's
// name in the environment; "" uses each event's container).
func (r *Renderer) Reporter(label string) Reporter {
	return Func(func(e Event) { r.Show(label, e) })
}

// Show displays e as label's current state.
func (r *Renderer) Show(label string, e Event) {
	if label == "" {
		label = e.Container
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	line := label + ": " + Text(e)
	if !r.terminal {
		prev, seen := r.last[label]
		if seen && prev.Phase == e.Phase && prev.Shared == e.Shared && e.Elapsed-prev.Elapsed < plainEvery {
			return
		}
		r.last[label] = e
		_, _ = io.WriteString(r.w, line+"\n")
		return
	}
	if _, ok := r.status[label]; !ok {
		r.order = append(r.order, label)
	}
	r.status[label] = line
	r.redraw(nil)
}

// Message prints line (a notice, a line of provision.sh's output) for
// label, kept on the screen: "web| line" (label "" prints line alone).
func (r *Renderer) Message(label, line string) {
	if label != "" {
		line = label + "| " + line
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.terminal {
		_, _ = io.WriteString(r.w, line+"\n")
		return
	}
	r.redraw([]string{line})
}

// Writer returns a writer whose lines become label's messages (the output
// of label's provision.sh). Call Flush on it when the writing ends.
func (r *Renderer) Writer(label string) *LineWriter {
	return &LineWriter{Line: func(s string) { r.Message(label, strings.TrimRight(s, "\r")) }}
}

// redraw moves to the top of the block, clears it, prints msgs and the
// block again. Call with r.mu held.
func (r *Renderer) redraw(msgs []string) {
	var b strings.Builder
	if r.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", r.drawn)
	}
	b.WriteString("\r\x1b[J")
	for _, m := range msgs {
		b.WriteString(m + "\n")
	}
	for _, l := range r.order {
		b.WriteString(cut(r.status[l], r.width-1) + "\n")
	}
	r.drawn = len(r.order)
	_, _ = io.WriteString(r.w, b.String())
}

// cut shortens s to at most n runes (a wrapped line would break the
// cursor arithmetic).
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	rs := []rune(s)
	return string(rs[:max(n-1, 0)]) + "…"
}
