package lifecycle

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/generator"
	"github.com/flyingcircusio/devhost/internal/registry"
)

// The set index round-trips through its log, whatever its strings hold.
func TestSetIndexLogRoundTrip(t *testing.T) {
	x := setIndex{Key: "k1", Entries: map[string]indexEntry{
		"shop": {ID: registry.FileID{Ino: 1, Size: 2, MTime: 3}, Address: "10.0.0.2", Status: generator.StatusRow{Name: "shop", State: "running", URLs: []string{"https://shop.example.org/", "http://a b/\"q\"\n"}, Protected: true}},
		"blog": {ID: registry.FileID{Size: -1}, Address: "", Status: generator.StatusRow{Name: "blog", State: "stopped"}},
	}}
	var b []byte
	b = append(b, setIndexHeader+x.Key+"\n"...)
	for _, n := range sortedNames(x.Entries) {
		b = appendIndexRow(b, n, x.Entries[n])
	}
	b = append(b, "C\n"...)
	got, ok := parseSetIndex(b)
	require.True(t, ok)
	assert.Equal(t, x.Key, got.Key)
	require.Len(t, got.Entries, 2)
	for n, e := range x.Entries {
		assert.Truef(t, e.equal(got.Entries[n]), "%s: %+v", n, got.Entries[n])
	}
	assert.Equal(t, int64(len(b)), got.end)

	for _, broken := range []string{"", "devhost set index 1 k\nC\n", setIndexHeader + "k\nX\n", setIndexHeader + "k\nE \"a\" 1 2\nC\n", setIndexHeader + "k\nE \"a\" 1 2 3 \"x\" \"y\" 0 2 \"u\"\nC\n"} {
		_, ok := parseSetIndex([]byte(broken))
		assert.Falsef(t, ok, "%q", broken)
	}
}

func readIndexLog(t *testing.T, h *Host) (*indexLog, string) {
	t.Helper()
	b, err := os.ReadFile(h.paths().setIndex())
	require.NoError(t, err)
	x, ok := parseSetIndex(b)
	require.True(t, ok, "index log:\n%s", b)
	return x, string(b)
}

// A rebuild appends the rows it changed to the set index instead of
// writing every row anew, and the index it leaves is the one a full render
// writes.
func TestSetIndexAppendsChanges(t *testing.T) {
	h, _ := testHost(t)
	ctx := context.Background()
	for _, n := range []string{"shop", "blog", "wiki"} {
		_, err := h.Ensure(ctx, EnsureRequest{Name: n, Channel: "https://example.org/c.tar.xz", Caller: alice})
		require.NoError(t, err)
	}
	_, before := readIndexLog(t, h)

	_, err := h.Keep(ctx, "shop", true, alice)
	require.NoError(t, err)
	_, err = h.Destroy(ctx, "wiki", alice)
	require.NoError(t, err)
	x, after := readIndexLog(t, h)
	require.True(t, strings.HasPrefix(after, before), "the log was rewritten, not appended to")
	// One rebuild or two (keep does not wait for its own).
	added := strings.Split(strings.TrimSuffix(after[len(before):], "\n"), "\n")
	assert.LessOrEqual(t, len(added), 4, "shop's row and wiki's removal, one C or two: %q", added)
	assert.True(t, strings.HasPrefix(added[0], `E "shop" `), added)
	assert.Contains(t, added, `D "wiki"`)
	assert.Equal(t, "C", added[len(added)-1])

	// A full render writes the same index anew.
	_, err = h.SyncFull(ctx, Caller{User: "root", Root: true})
	require.NoError(t, err)
	full, text := readIndexLog(t, h)
	assert.Equal(t, 1+2+1, strings.Count(text, "\n"), "written anew: header, two rows, C")
	require.Equal(t, sortedNames(full.Entries), sortedNames(x.Entries))
	for n, e := range full.Entries {
		assert.Truef(t, e.equal(x.Entries[n]), "%s: appended %+v, full %+v", n, x.Entries[n], e)
	}
}

// A change cut short (a rebuild killed while appending) counts for
// nothing: its rows are not applied, and the next append replaces them.
func TestSetIndexChangeCutShort(t *testing.T) {
	h, _ := testHost(t)
	ctx := context.Background()
	for _, n := range []string{"shop", "blog"} {
		_, err := h.Ensure(ctx, EnsureRequest{Name: n, Channel: "https://example.org/c.tar.xz", Caller: alice})
		require.NoError(t, err)
	}
	x, _ := readIndexLog(t, h)
	// blog's row as it is, but with a state the status page would show,
	// and a half-written line, without the change's C.
	bogus := x.Entries["blog"]
	bogus.Status.State = "bogus"
	f, err := os.OpenFile(h.paths().setIndex(), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write(appendIndexRow(nil, "blog", bogus))
	require.NoError(t, err)
	_, err = f.WriteString(`E "sh`)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	// A new container re-renders the status page from the index rows.
	_, err = h.Ensure(ctx, EnsureRequest{Name: "wiki", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	live, err := ReadSet(h.Cfg.GeneratedDir)
	require.NoError(t, err)
	assert.Equal(t, fullRender(t, h).Files, live.Files)
	assert.NotContains(t, string(live.Files[generator.StatusFile]), "bogus")
	_, text := readIndexLog(t, h)
	assert.NotContains(t, text, "bogus", "the next append replaced the cut-short change")
	assert.NotContains(t, text, `E "sh`+"\n")
}

// The log is written anew once it holds more than twice its rows (plus
// some slack), so it stays proportional to the registry.
func TestSetIndexCompacts(t *testing.T) {
	h, _ := testHost(t)
	ctx := context.Background()
	_, err := h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	prev, _ := readIndexLog(t, h)
	next := setIndex{Key: prev.Key, Entries: map[string]indexEntry{}}
	for i := range 300 {
		e := prev.Entries["shop"]
		e.ID.MTime = int64(i)
		next.Entries["shop"] = e
		require.NoError(t, h.writeSetIndex(prev, next))
		prev, _ = readIndexLog(t, h)
	}
	_, text := readIndexLog(t, h)
	assert.Less(t, strings.Count(text, "\n"), 2*1+256+4, "the log was never compacted")
	assert.Contains(t, text, " "+strconv.Itoa(299)+" ")
	assert.NoFileExists(t, filepath.Join(filepath.Dir(h.paths().setIndex()), "index.json"))
}
