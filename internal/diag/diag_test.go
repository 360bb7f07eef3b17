package diag

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rng returns the range of the first occurrence of sub in src (one line).
func rng(t *testing.T, src, sub string) *hcl.Range {
	t.Helper()
	i := bytes.Index([]byte(src), []byte(sub))
	require.GreaterOrEqual(t, i, 0)
	line := 1 + bytes.Count([]byte(src[:i]), []byte("\n"))
	col := 1 + len([]rune(src[bytes.LastIndexByte([]byte(src[:i]), '\n')+1:i]))
	return &hcl.Range{Filename: "f.cfg",
		Start: hcl.Pos{Line: line, Column: col, Byte: i},
		End:   hcl.Pos{Line: line, Column: col + len([]rune(sub)), Byte: i + len(sub)}}
}

func TestWrite(t *testing.T) {
	src := "[a]\nkey = välue bad\n\tx = tab\n"
	tests := []struct {
		name  string
		sub   string
		files bool
		want  string
	}{
		{"underlines the range", "bad", true,
			"f.cfg:2:13: error: wrong\n     2: key = välue bad\n                    ^^^\n  hint: fix it\n"},
		{"keeps tabs so carets line up", "tab", true,
			"f.cfg:3:6: error: wrong\n     3: \tx = tab\n        \t    ^^^\n  hint: fix it\n"},
		{"counts characters, not bytes", "välue", true,
			"f.cfg:2:7: error: wrong\n     2: key = välue bad\n              ^^^^^\n  hint: fix it\n"},
		{"no snippet without the file", "bad", false,
			"f.cfg:2:13: error: wrong\n  hint: fix it\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "wrong", Detail: "fix it", Subject: rng(t, src, tt.sub)}
			files := map[string][]byte{}
			if tt.files {
				files["f.cfg"] = []byte(src)
			}
			var out bytes.Buffer
			require.NoError(t, Write(&out, hcl.Diagnostics{d}, files, false))
			assert.Equal(t, tt.want, out.String())
		})
	}
}

func TestWriteSortsAndErrorLine(t *testing.T) {
	src := "a\nb\n"
	second := &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "second", Subject: rng(t, src, "b")}
	first := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "first", Subject: rng(t, src, "a")}
	noPos := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "global"}
	var out bytes.Buffer
	require.NoError(t, Write(&out, hcl.Diagnostics{noPos, second, first}, nil, false))
	assert.Equal(t, "f.cfg:1:1: error: first\nf.cfg:2:1: warning: second\nerror: global\n", out.String())

	assert.NoError(t, NewError(hcl.Diagnostics{second}, nil), "warnings alone are no error")
	err := NewError(hcl.Diagnostics{first, second}, nil)
	assert.EqualError(t, err, "f.cfg:1:1: error: first\nf.cfg:2:1: warning: second")
}

// TestWriteShowsNoControlCharacters: an environment.cfg (or a command's
// output) with escape sequences cannot drive the terminal through a
// diagnostic; carets still line up.
func TestWriteShowsNoControlCharacters(t *testing.T) {
	src := "[a]\nk = \x1b]0;owned\x07 bad\n"
	d := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "invalid \x1b[2Jvalue", Detail: "line\none \u009b1m \x9b2m", Subject: rng(t, src, "bad")}
	var out bytes.Buffer
	require.NoError(t, Write(&out, hcl.Diagnostics{d}, map[string][]byte{"f.cfg": []byte(src)}, false))
	assert.Equal(t, "f.cfg:2:16: error: invalid \ufffd[2Jvalue\n"+
		"     2: k = \ufffd]0;owned\ufffd bad\n"+
		"                       ^^^\n"+
		"  hint: line\none \ufffd1m \ufffd2m\n", out.String())
	assert.Equal(t, "f.cfg:2:16: error: invalid \ufffd[2Jvalue (line\none \ufffd1m \ufffd2m)", Line(d))
}

// A snippet of a very long line shows the part around the range.
func TestWriteCutsLongLines(t *testing.T) {
	src := "x = " + strings.Repeat("[", 200_000) + "bad" + strings.Repeat("]", 200_000) + "\n"
	d := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "wrong", Subject: rng(t, src, "bad")}
	var out bytes.Buffer
	require.NoError(t, Write(&out, hcl.Diagnostics{d}, map[string][]byte{"f.cfg": []byte(src)}, false))
	lines := strings.Split(out.String(), "\n")
	require.Len(t, lines, 4)
	want := "     1: …" + strings.Repeat("[", snippetWidth/2) + "bad" + strings.Repeat("]", snippetWidth/2-3) + "…"
	assert.Equal(t, want, lines[1])
	assert.Equal(t, "        "+strings.Repeat(" ", 1+snippetWidth/2)+"^^^", lines[2])
}
