package rawconfig

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// genPieces are the building blocks of generated files: every kind of line
// CPython's _read distinguishes, with the whitespace, delimiters and line
// breaks that change its decisions.
var (
	genIndents = []string{"", "", "", " ", "  ", "\t", "    ", "\u3000", "\u00a0", "\x0c", " \t "}
	genBreaks  = []string{"\n", "\n", "\n", "\r\n", "\r", "\u0085", "\u2028", "\x0b"}
	genLines   = []string{
		"[s]", "[t]", "[DEFAULT]", "[ s ]", "[s] trailing", "[a]]", "[]", "[", "[x", "[[y]]",
		"a = 1", "a=1", "a: 1", "a :1", "b = 2", "A = 3", "a = x = y", "c = http://h:80/",
		"d =", "d:", "= v", ": v", "=", "e = \u3000v\u3000", "f\t=\tg", "name with spaces = v",
		"no delimiter", "x", "# comment", "; comment", "#", ";", "  # indented comment",
		"", "", " ", "\t", "\u2003", "[s]=1", "g = [s]", "h = # not a comment", "\ufeffz = 1",
	}
)

func genFile(r *rand.Rand) []byte {
	var b strings.Builder
	if r.IntN(4) != 0 {
		b.WriteString("[s]\n")
	}
	n := r.IntN(12)
	for range n {
		b.WriteString(genIndents[r.IntN(len(genIndents))])
		b.WriteString(genLines[r.IntN(len(genLines))])
		if r.IntN(8) == 0 {
			b.WriteString(genIndents[r.IntN(len(genIndents))])
		}
		b.WriteString(genBreaks[r.IntN(len(genBreaks))])
	}
	if r.IntN(4) == 0 {
		b.WriteString(genLines[r.IntN(len(genLines))])
	}
	return []byte(b.String())
}

// TestDifferentialGenerated compares Parse with CPython on thousands of
// files assembled from every kind of line (fixed seed, so failures
// reproduce): the structural cases random byte mutation rarely reaches.
func TestDifferentialGenerated(t *testing.T) {
	server := startPyServer(t, python3(t))
	r := rand.New(rand.NewPCG(1, 2))
	n := 4000
	if testing.Short() {
		n = 500
	}
	seen := map[string]int{}
	for range n {
		src := genFile(r)
		want, err := server.Query(src)
		require.NoError(t, err)
		got := goJSON("gen.cfg", src)
		require.Equal(t, string(want), string(got), "input %q", src)
		if strings.HasPrefix(string(got), `{"error"`) {
			seen[string(got)]++
		} else {
			seen["ok"]++
		}
	}
	t.Logf("%v", seen)
}
