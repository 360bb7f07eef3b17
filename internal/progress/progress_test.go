package progress

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder is a Reporter keeping what it was told.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) Report(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// fixedClock advances by step at every call.
func fixedClock(step time.Duration) func() time.Time {
	t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return func() time.Time {
		t = t.Add(step)
		return t
	}
}

func TestTrackerStampsElapsedAndNilIsSilent(t *testing.T) {
	var rec recorder
	tr := Start(&rec, "shop", fixedClock(2*time.Second))
	tr.Phase(Validated, "")
	tr.Waiting(3)
	lw := tr.LogWriter(Building)
	_, _ = lw.Write([]byte("these derivations will be built:\n  /nix/store/x.drv\n\nbuilding '/nix/st"))
	_, _ = lw.Write([]byte("ore/x.drv'...\x1b[31m\n"))
	require.Equal(t, []Event{
		{Phase: Validated, Container: "shop", Elapsed: 2 * time.Second},
		{Phase: Waiting, Container: "shop", Elapsed: 4 * time.Second, Shared: 3},
		{Phase: Building, Container: "shop", Elapsed: 6 * time.Second, Detail: "these derivations will be built:"},
		{Phase: Building, Container: "shop", Elapsed: 8 * time.Second, Detail: "/nix/store/x.drv"},
		{Phase: Building, Container: "shop", Elapsed: 10 * time.Second, Detail: "building '/nix/store/x.drv'... [31m"},
	}, rec.events)

	none := Start(nil, "shop", nil)
	assert.Nil(t, none)
	none.Phase(Done, "x") // no panic, nothing reported
	none.Waiting(1)
	_, err := none.LogWriter(Building).Write([]byte("x\n"))
	assert.NoError(t, err)
}

func TestLineWriterBoundsALine(t *testing.T) {
	var got []string
	w := &LineWriter{Line: func(s string) { got = append(got, s) }}
	_, _ = w.Write(bytes.Repeat([]byte("a"), 3*maxLine))
	_, _ = w.Write([]byte("b\nc"))
	w.Flush()
	require.Len(t, got, 2)
	assert.Len(t, got[0], maxLine)
	assert.Equal(t, "c", got[1])
}

func TestCleanDetail(t *testing.T) {
	assert.Equal(t, "a b", CleanDetail(" a\rb\n"))
	assert.Equal(t, "x?y", CleanDetail("x\xffy"))
	long := CleanDetail(strings.Repeat("é", MaxDetail))
	assert.LessOrEqual(t, len(long), MaxDetail)
	assert.True(t, strings.HasSuffix(long, "…"))
	assert.True(t, utf8Valid(long))
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "") == s }

func TestJSONLineRoundTrip(t *testing.T) {
	e := Event{Phase: Waiting, Container: "a1b2c3", Elapsed: 12345 * time.Millisecond, Shared: 2}
	line := Encode("web", e)
	assert.Equal(t, `{"devhost":"progress","phase":"waiting","host":"web","container":"a1b2c3","elapsed_ms":12345,"shared":2}`+"\n", string(line))
	host, got, ok := Decode(line)
	require.True(t, ok)
	assert.Equal(t, "web", host)
	assert.Equal(t, e, got)

	line = Encode("", Event{Phase: Building, Container: "c", Detail: "building '/nix/store/x'"})
	assert.Equal(t, `{"devhost":"progress","phase":"building","container":"c","elapsed_ms":0,"detail":"building '/nix/store/x'"}`+"\n", string(line))
}

func TestDecodeRejectsOtherLines(t *testing.T) {
	for _, l := range []string{
		"sudo: a password is required",
		`{"name":"shop"}`,
		`{"devhost":"other","phase":"x"}`,
		`{"devhost":"progress"}`,
		`{"devhost":"progress","phase":`,
		`{"devhost":"progress","phase":"done","container":"` + strings.Repeat("x", maxJSONLine) + `"}`,
	} {
		_, _, ok := Decode([]byte(l))
		assert.False(t, ok, l)
	}
	// A remote devhost cannot put escapes on the terminal.
	_, e, ok := Decode([]byte(`{"devhost":"progress","phase":"building","container":"c\u001b[2J","detail":"x\u001b]0;t\u0007","elapsed_ms":-5,"shared":-1}`))
	require.True(t, ok)
	assert.Equal(t, Event{Phase: Building, Container: "c [2J", Detail: "x ]0;t"}, e)
}

func TestRendererPlain(t *testing.T) {
	var out bytes.Buffer
	r := NewRenderer(&out, false, 0)
	web, db := r.Reporter("web"), r.Reporter("db")
	web.Report(Event{Phase: Validated, Container: "a1", Elapsed: 300 * time.Millisecond})
	db.Report(Event{Phase: Validated, Container: "b2", Elapsed: 200 * time.Millisecond})
	web.Report(Event{Phase: Building, Container: "a1", Elapsed: time.Second, Detail: "one"})
	web.Report(Event{Phase: Building, Container: "a1", Elapsed: 5 * time.Second, Detail: "two"}) // within plainEvery: dropped
	web.Report(Event{Phase: Building, Container: "a1", Elapsed: 12 * time.Second, Detail: "three"})
	web.Report(Event{Phase: Waiting, Container: "a1", Elapsed: 13 * time.Second, Shared: 1})
	web.Report(Event{Phase: Waiting, Container: "a1", Elapsed: 14 * time.Second, Shared: 2})
	r.Message("db", "provision.sh says hi")
	web.Report(Event{Phase: Done, Container: "a1", Elapsed: 185 * time.Second, Detail: "started"})
	assert.Equal(t, `web: request validated (0.3s)
db: request validated (0.2s)
web: building the container's system: one (1.0s)
web: building the container's system: three (12s)
web: waiting for the host rebuild (this request alone) (13s)
web: waiting for the host rebuild (shared by 2 requests) (14s)
db| provision.sh says hi
web: done: started (3m05s)
`, out.String())
}

func TestRendererTerminalUpdatesOneLinePerHost(t *testing.T) {
	var out bytes.Buffer
	r := NewRenderer(&out, true, 40)
	r.Show("web", Event{Phase: Validated, Elapsed: time.Second})
	assert.Equal(t, "\r\x1b[Jweb: request validated (1.0s)\n", out.String())
	out.Reset()
	r.Show("db", Event{Phase: Building, Elapsed: 2 * time.Second, Detail: strings.Repeat("x", 60)})
	// Back to the block's top (one line), cleared, both lines, the long
	// one cut to the width.
	assert.Equal(t, "\x1b[1A\r\x1b[Jweb: request validated (1.0s)\ndb: building the container's system: x…\n", out.String())
	out.Reset()
	r.Message("web", "hello")
	assert.Equal(t, "\x1b[2A\r\x1b[Jweb| hello\nweb: request validated (1.0s)\ndb: building the container's system: x…\n", out.String())
	out.Reset()
	r.Show("web", Event{Phase: Done, Elapsed: 3 * time.Second})
	assert.Equal(t, "\x1b[2A\r\x1b[Jweb: done (3.0s)\ndb: building the container's system: x…\n", out.String())
}

func TestFormatElapsed(t *testing.T) {
	for d, want := range map[time.Duration]string{
		400 * time.Millisecond: "0.4s", 12 * time.Second: "12s", 65 * time.Second: "1m05s", 2 * time.Hour: "120m00s",
	} {
		assert.Equal(t, want, FormatElapsed(d))
	}
}
