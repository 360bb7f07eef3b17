package environment

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/rawconfig"
)

func spans(s string, sps []span) []string {
	out := []string{}
	for _, sp := range sps {
		out = append(out, s[sp.a:sp.b])
	}
	return out
}

// listCases are values with batou's expected as_list and str.split()
// results; the differential test below also asks CPython.
var listCases = []struct {
	in      string
	asList  []string
	aliases []string
}{
	{"a", []string{"a"}, []string{"a"}},
	{"", []string{""}, []string{}},
	{"zope, zeo", []string{"zope", "zeo"}, []string{"zope,", "zeo"}},
	{"a,b,", []string{"a", "b", ""}, []string{"a,b,"}},
	{"\nhello5\nhello6", []string{"hello5", "hello6"}, []string{"hello5", "hello6"}},
	{"hello3\nhello4", []string{"hello3", "hello4"}, []string{"hello3", "hello4"}},
	{"a\n\nb", []string{"a", "b"}, []string{"a", "b"}},
	{"a,\nb", []string{"a", "b"}, []string{"a,", "b"}},
	{"shop admin", []string{"shop admin"}, []string{"shop", "admin"}},
	{"x\x1cy", []string{"x\x1cy"}, []string{"x", "y"}},
	{"\u00a0a\u00a0", []string{"\u00a0a\u00a0"}, []string{"a"}},
	{"nginx\nshop:debug\n!mailer", []string{"nginx", "shop:debug", "!mailer"}, []string{"nginx", "shop:debug", "!mailer"}},
}

func TestAsListAndFields(t *testing.T) {
	for _, c := range listCases {
		t.Run(c.in, func(t *testing.T) {
			assert.Equal(t, c.asList, spans(c.in, asList(c.in)))
			assert.Equal(t, c.aliases, spans(c.in, pyFields(c.in)))
		})
	}
}

// TestListsAgainstPython compares the splitting with batou's own code run
// by CPython.
func TestListsAgainstPython(t *testing.T) {
	t.Parallel()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not on PATH: skipping the comparison with batou's list splitting")
	}
	const script = `
import json, sys
def as_list(result):
    if "," in result:
        result = [x.strip() for x in result.split(",")]
    elif "\n" in result:
        result = (x.strip() for x in result.split("\n"))
        result = [x for x in result if x]
    else:
        result = [result]
    return result
print(json.dumps([[as_list(s), s.strip().split()] for s in json.load(sys.stdin)]))
`
	var ins []string
	for _, c := range listCases {
		ins = append(ins, c.in)
	}
	in, err := json.Marshal(ins)
	require.NoError(t, err)
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = strings.NewReader(string(in))
	out, err := cmd.Output()
	require.NoError(t, err)
	var want [][2][]string
	require.NoError(t, json.Unmarshal(out, &want))
	for i, s := range ins {
		assert.Equal(t, want[i][0], spans(s, asList(s)), "as_list(%q)", s)
		assert.Equal(t, want[i][1], spans(s, pyFields(s)), "split(%q)", s)
	}
}

func TestParseComponent(t *testing.T) {
	for _, c := range []struct {
		in   string
		want componentEntry
	}{
		{"nginx", componentEntry{name: "nginx"}},
		{"shop:debug", componentEntry{name: "shop", feature: "debug"}},
		{"!mailer", componentEntry{name: "mailer", ignore: true}},
		{"!!x:a:b", componentEntry{name: "x", feature: "a:b", ignore: true}},
		{" zeo:test ", componentEntry{name: "zeo", feature: "test"}},
		{"", componentEntry{}},
	} {
		assert.Equal(t, c.want, parseComponent(c.in), c.in)
	}
}

func TestPyInt(t *testing.T) {
	for in, want := range map[string]int{"3": 3, " 30 ": 30, "+4": 4, "-2": -2, "1_000": 1000} {
		n, ok := pyInt(in)
		assert.True(t, ok, in)
		assert.Equal(t, want, n, in)
	}
	for _, in := range []string{"", "3.0", "1__0", "_1", "1_", "+-1", "ten"} {
		_, ok := pyInt(in)
		assert.False(t, ok, in)
	}
}

// naiveValueRange is the obvious mapping (scan every line for each span),
// the oracle for valueLines.rng.
func naiveValueRange(opt rawconfig.Option, sp span) hcl.Range {
	if opt.NumLines() == 0 {
		return opt.NameRange()
	}
	var start, end hcl.Pos
	gotStart, gotEnd := false, false
	off := 0
	for _, l := range opt.Lines() {
		lo, hi := off, off+len(l.Text)
		if !gotStart && sp.a >= lo && sp.a <= hi {
			start, gotStart = linePos(l, sp.a-lo, false), true
		}
		if gotStart && !gotEnd && sp.b >= lo && sp.b <= hi {
			end, gotEnd = linePos(l, sp.b-lo, true), true
		}
		off = hi + 1
	}
	if !gotStart || !gotEnd || sp.a > sp.b {
		return wholeValue(opt)
	}
	return hcl.Range{Filename: opt.NameRange().Filename, Start: start, End: end}
}

// TestValueLinesEverySpan maps every span of continued values (with blank
// lines, an empty first line, multi-byte text) and compares with the oracle.
func TestValueLinesEverySpan(t *testing.T) {
	src := "[s]\na = x, y\nb =\n  one\n\n  tw\u00e9 three,\n\n  \u00fcber\nc = \nd = solo\n"
	f, err := rawconfig.Parse("environment.cfg", []byte(src))
	require.NoError(t, err)
	for o := range section(f, "s").Options() {
		vl := newValueLines(o)
		for a := 0; a <= len(o.Value())+1; a++ {
			for b := 0; b <= len(o.Value())+1; b++ {
				require.Equal(t, naiveValueRange(o, span{a, b}), vl.rng(span{a, b}), "%s %d %d", o.Name(), a, b)
			}
		}
	}
}
