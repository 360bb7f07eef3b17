package cli

import (
	"sync"

	"github.com/flyingcircusio/devhost/internal/progress"
)

// The --progress modes of ensure and up.
const (
	progressAuto  = "auto"
	progressPlain = "plain"
	progressJSON  = "json"
	progressNone  = "none"
)

// progressRenderer returns what shows the phases of mode on the error
// stream: a Renderer (updating lines on a terminal, plain lines), or for
// json nil and json true, or nil for none (and for auto off a terminal
// when quietAuto: ensure run by a script prints only its result).
func progressRenderer(streams *IOStreams, mode string, quietAuto bool) (r *progress.Renderer, json bool, err error) {
	switch mode {
	case progressAuto:
		if streams.ErrTerminal {
			return progress.NewRenderer(streams.ErrOut, true, streams.ErrWidth), false, nil
		}
		if quietAuto {
			return nil, false, nil
		}
		return progress.NewRenderer(streams.ErrOut, false, 0), false, nil
	case progressPlain:
		return progress.NewRenderer(streams.ErrOut, false, 0), false, nil
	case progressJSON:
		return nil, true, nil
	case progressNone:
		return nil, false, nil
	}
	return nil, false, inputErrorf("--progress %q: use auto, plain, json or none", mode)
}

// progressReporter is `devhost ensure`'s reporter for mode (nil: silent).
// JSON lines go to stderr, so that stdout stays the --json result.
func progressReporter(streams *IOStreams, mode string) (progress.Reporter, error) {
	if mode == "" { // the compatibility CLI: as silent as the old one
		return nil, nil
	}
	r, json, err := progressRenderer(streams, mode, true)
	switch {
	case err != nil:
		return nil, err
	case json:
		return progress.JSONReporter(streams.ErrOut, ""), nil
	case r != nil:
		return r.Reporter(""), nil
	}
	return nil, nil
}

// upProgress is `devhost up`'s display for mode: where each host's phases
// go (nil: nowhere) and the writer of its other messages, whole lines,
// which stay above the updating lines on a terminal. Flush the writer at
// the end. In json mode the phases are JSON lines with "host" on stderr,
// the messages plain lines between them.
func upProgress(streams *IOStreams, mode string) (func(host string) progress.Reporter, *progress.LineWriter, error) {
	r, json, err := progressRenderer(streams, mode, false)
	if err != nil {
		return nil, nil, err
	}
	if r == nil {
		// json or none: messages are plain lines, serialised with the
		// JSON lines.
		var mu sync.Mutex
		line := func(b []byte) {
			mu.Lock()
			defer mu.Unlock()
			_, _ = streams.ErrOut.Write(b)
		}
		msgs := &progress.LineWriter{Line: func(s string) { line([]byte(s + "\n")) }}
		if !json {
			return nil, msgs, nil
		}
		return func(host string) progress.Reporter {
			return progress.Func(func(e progress.Event) { line(progress.Encode(host, e)) })
		}, msgs, nil
	}
	return r.Reporter, &progress.LineWriter{Line: func(s string) { r.Message("", s) }}, nil
}
