package rawconfig

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// growthShapes are files whose one part grows with n: the shapes where a
// parser that re-copies what it has read so far for every new line turns
// quadratic.
var growthShapes = map[string]func(n int) []byte{
	// One value continued over n lines (the 40,000-line value that took
	// 21 s, against CPython's 0.15 s).
	"continued value": func(n int) []byte {
		var b strings.Builder
		b.WriteString("[environment]\nvalue = first\n")
		for i := range n {
			fmt.Fprintf(&b, "    line%d\n", i)
		}
		b.WriteString("after = x\n")
		return []byte(b.String())
	},
	// The same with blank and comment lines between the continuation
	// lines (blank lines belong to the value, comments are skipped).
	"continued with blanks and comments": func(n int) []byte {
		var b strings.Builder
		b.WriteString("[host:web]\ncomponents =\n")
		for i := range n {
			switch i % 3 {
			case 0:
				fmt.Fprintf(&b, "    c%d\n", i)
			case 1:
				b.WriteString("\n")
			default:
				b.WriteString("  # note\n")
			}
		}
		return []byte(b.String())
	},
	// One section with n options: its duplicate checks must not scan all
	// the options before (past indexThreshold they use a name table).
	"options in one section": func(n int) []byte {
		var b strings.Builder
		b.WriteString("[component:app]\n")
		for i := range n {
			fmt.Fprintf(&b, "opt%d = %d\n", i, i)
		}
		return []byte(b.String())
	},
	"sections": func(n int) []byte {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "[s%d]\nx = %d\n", i, i)
		}
		return []byte(b.String())
	},
	// Every line unparsable: CPython collects them all in one error.
	"unparsable lines": func(n int) []byte {
		var b strings.Builder
		b.WriteString("[s]\n")
		for i := range n {
			fmt.Fprintf(&b, "junk%d\n", i)
		}
		return []byte(b.String())
	},
}

// allocatedBy returns the bytes the heap handed out while f ran.
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestParseGrowsLinearly measures the memory Parse allocates (which
// includes every copy it makes) for files of n and 4n growing lines. A
// linear parser allocates about 4 times as much for the bigger file (up to
// 6.75 for some sizes, where growing slices happen to end just past a
// new capacity); the quadratic one (a value's lines copied whole for every
// further line) allocated 20 to 36 times as much. The measure is bytes,
// not time, so a busy machine cannot make the test flaky, and it is the
// same on every run for the same n.
func TestParseGrowsLinearly(t *testing.T) {
	const n = 2000
	for name, shape := range growthShapes {
		t.Run(name, func(t *testing.T) {
			small, big := shape(n), shape(4*n)
			// Parse once before measuring, so that nothing allocated once
			// per process (e.g. lazily built tables) counts.
			_, _ = Parse("warm.cfg", small)
			var errSmall, errBig error
			a := allocatedBy(func() { _, errSmall = Parse("env.cfg", small) })
			b := allocatedBy(func() { _, errBig = Parse("env.cfg", big) })
			require.Equal(t, errSmall == nil, errBig == nil)
			ratio := float64(b) / float64(a)
			t.Logf("%d lines: %d bytes, %d lines: %d bytes, ratio %.2f", n, a, 4*n, b, ratio)
			require.Less(t, ratio, 8.0, "Parse allocates more than linearly in the number of lines")
		})
	}
}

// TestDifferentialGrowth compares Parse with CPython on the growth shapes
// at sizes around a power of two, where the slices that hold options and
// lines grow past their first capacity: the values must come out whole and
// in order.
func TestDifferentialGrowth(t *testing.T) {
	const maxChunk = 1024
	server := startPyServer(t, python3(t))
	for name, shape := range growthShapes {
		for _, n := range []int{maxChunk - 1, maxChunk, maxChunk + 1, 3*maxChunk + 7} {
			src := shape(n)
			want, err := server.Query(src)
			require.NoError(t, err)
			require.Equal(t, string(want), string(goJSON("g.cfg", src)), "%s, %d lines", name, n)
		}
	}
	// Two values growing in turn (continuation lines of the second after
	// the first one's) and a section continued after another one.
	var b strings.Builder
	b.WriteString("[a]\nx = 1\n")
	for i := range 2 * maxChunk {
		fmt.Fprintf(&b, "  x%d\n", i)
	}
	b.WriteString("y = 2\n")
	for i := range 2 * maxChunk {
		fmt.Fprintf(&b, "  y%d\n", i)
	}
	b.WriteString("[b]\nz = 3\n[DEFAULT]\nd = 4\n")
	for i := range maxChunk + 3 {
		fmt.Fprintf(&b, "  d%d\n", i)
	}
	src := []byte(b.String())
	want, err := server.Query(src)
	require.NoError(t, err)
	require.Equal(t, string(want), string(goJSON("g.cfg", src)))
}

// TestParseAllocatesLittle: reading a realistic 10,000-line file allocates
// one copy of the file (names and values are substrings of it) and less
// than one and a half times its size besides, in a few allocations. The sections,
// options and lines are offsets in flat slices without pointers; when
// each had its own strings and hcl.Range, a read allocated 1.9 MB (eleven
// times the file) and the collector ran every second back-to-back read.
// Bytes and counts, not time, so a busy machine cannot make it flaky.
func TestParseAllocatesLittle(t *testing.T) {
	src := realisticFile(10000)
	parse := func() {
		if _, err := Parse("env.cfg", src); err != nil {
			t.Fatal(err)
		}
	}
	parse()
	n := allocatedBy(parse)
	allocs := testing.AllocsPerRun(5, parse)
	t.Logf("%d bytes of source: %d bytes, %.0f allocations per read", len(src), n, allocs)
	require.Less(t, float64(n), 2.5*float64(len(src)), "bytes allocated per read")
	require.LessOrEqual(t, allocs, 20.0, "allocations per read")
}
