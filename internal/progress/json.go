package progress

import (
	"bytes"
	"encoding/json"
	"io"
	"sync"
	"time"
)

// The JSON line format of `devhost ensure --progress=json` (on stderr, so
// that stdout stays the --json result) and `devhost up --progress=json`:
// one object per line,
//
//	{"devhost":"progress","phase":"building","container":"a1b2c3","elapsed_ms":12034,"detail":"building '/nix/store/…'"}
//	{"devhost":"progress","phase":"waiting","container":"a1b2c3","elapsed_ms":30110,"shared":3}
//
// `devhost up` adds "host", the host's name in the environment. The
// "devhost":"progress" key tells these lines from anything else on the
// same stream (sudo's messages, an error). Readers ignore keys they do not
// know; phases may be added.
type jsonEvent struct {
	Devhost   string `json:"devhost"`
	Phase     Phase  `json:"phase"`
	Host      string `json:"host,omitempty"`
	Container string `json:"container"`
	ElapsedMS int64  `json:"elapsed_ms"`
	Detail    string `json:"detail,omitempty"`
	Shared    int    `json:"shared,omitempty"`
}

const jsonTag = "progress"

// maxJSONLine bounds a line Decode accepts.
const maxJSONLine = 16 << 10

// Encode is e as one JSON line (with its newline); host may be "".
func Encode(host string, e Event) []byte {
	b, err := json.Marshal(jsonEvent{Devhost: jsonTag, Phase: e.Phase, Host: host, Container: e.Container,
		ElapsedMS: e.Elapsed.Milliseconds(), Detail: CleanDetail(e.Detail), Shared: e.Shared})
	if err != nil { // cannot happen: strings and numbers only
		return nil
	}
	return append(b, '\n')
}

// Decode parses one line of the format; ok is false for any other line,
// which the caller shows as it is. Strings are cleaned (CleanDetail): a
// line from a remote devhost never puts control characters on the
// terminal.
func Decode(line []byte) (host string, e Event, ok bool) {
	line = bytes.TrimSpace(line)
	if len(line) > maxJSONLine || !bytes.HasPrefix(line, []byte("{")) {
		return "", Event{}, false
	}
	var j jsonEvent
	if err := json.Unmarshal(line, &j); err != nil || j.Devhost != jsonTag || j.Phase == "" {
		return "", Event{}, false
	}
	return CleanDetail(j.Host), Event{Phase: Phase(CleanDetail(string(j.Phase))), Container: CleanDetail(j.Container),
		Elapsed: time.Duration(max(j.ElapsedMS, 0)) * time.Millisecond, Detail: CleanDetail(j.Detail), Shared: max(j.Shared, 0)}, true
}

// JSONReporter writes each event as a JSON line to w (serialised: one
// write per line).
func JSONReporter(w io.Writer, host string) Reporter {
	var mu sync.Mutex
	return Func(func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		_, _ = w.Write(Encode(host, e))
	})
}
