package rawconfig

import (
	"bytes"
	"errors"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func pos(line, col, byteOff int) hcl.Pos { return hcl.Pos{Line: line, Column: col, Byte: byteOff} }

func rng(start, end hcl.Pos) hcl.Range {
	return hcl.Range{Filename: "env.cfg", Start: start, End: end}
}

func TestParseRanges(t *testing.T) {
	// Line 4 has a two-byte character before the value, line 6 a
	// three-byte ideographic space as indentation: columns count
	// characters, bytes count bytes.
	src := "# c\r\n[host:a]\r\ncomponents =\r\n  né\r\n\r\n\u3000two\r\n\r\nx: 1\r\n"
	f, err := Parse("env.cfg", []byte(src))
	require.NoError(t, err)
	require.Equal(t, 1, f.NumSections())
	s := mustSection(t, f, "host:a")
	assert.Equal(t, "host:a", s.Name())
	assert.Equal(t, rng(pos(2, 1, 5), pos(2, 9, 13)), s.Range())
	assert.Equal(t, rng(pos(2, 2, 6), pos(2, 8, 12)), s.NameRange())

	c, ok := s.Get("components")
	require.True(t, ok)
	assert.Equal(t, "\nné\n\ntwo", c.Value())
	assert.Equal(t, rng(pos(3, 1, 15), pos(3, 11, 25)), c.NameRange())
	want := []ValueLine{
		{Text: "", Range: rng(pos(3, 13, 27), pos(3, 13, 27))},
		{Text: "né", Range: rng(pos(4, 3, 31), pos(4, 5, 34))},
		{Text: "", Range: rng(pos(5, 1, 36), pos(5, 1, 36))},
		{Text: "two", Range: rng(pos(6, 2, 41), pos(6, 5, 44))},
	}
	assert.Equal(t, want, c.Lines(), "trailing blank line dropped, inner one kept")
	assert.Equal(t, rng(pos(3, 1, 15), pos(6, 5, 44)), c.Span())

	x, ok := s.Get("x")
	require.True(t, ok)
	assert.Equal(t, "1", x.Value())
	assert.Equal(t, rng(pos(8, 4, 51), pos(8, 5, 52)), x.Line(0).Range)
	for _, l := range c.Lines() {
		assert.Equal(t, l.Text, src[l.Range.Start.Byte:l.Range.End.Byte])
	}
}

func TestSectionsAndDefaults(t *testing.T) {
	src := "[DEFAULT]\nshared = d\nover = d\n[b]\nown = 1\nover = b\n[a]\n[DEFAULT]\nlate = d\n"
	f, err := Parse("env.cfg", []byte(src))
	require.NoError(t, err)
	var names []string
	for s := range f.Sections() {
		names = append(names, s.Name())
	}
	assert.Equal(t, []string{"b", "a"}, names, "file order, DEFAULT not listed")
	assert.Equal(t, f.Defaults(), mustSection(t, f, "DEFAULT"))
	_, ok := f.Section("missing")
	assert.False(t, ok)
	assert.Nil(t, f.Merged("missing"))

	b := mustSection(t, f, "b")
	o, ok := b.Get("over")
	require.True(t, ok)
	assert.Equal(t, "b", o.Value(), "the section overrides DEFAULT")
	o, ok = b.Get("late")
	require.True(t, ok)
	assert.Equal(t, "d", o.Value(), "DEFAULT options read after the section still apply")
	_, ok = b.Get("nope")
	assert.False(t, ok)

	var merged []string
	for _, o := range f.Merged("b") {
		merged = append(merged, o.Name()+"="+o.Value())
	}
	// RawConfigParser.options order: own options, then DEFAULT's others.
	assert.Equal(t, []string{"own=1", "over=b", "shared=d", "late=d"}, merged)

	assert.Equal(t, map[string]map[string]string{
		"a": {"shared": "d", "over": "d", "late": "d"},
		"b": {"shared": "d", "over": "b", "own": "1", "late": "d"},
	}, f.Map())
}

func TestManyOptionsAndSections(t *testing.T) {
	// Past indexThreshold lookups use maps; duplicates are still found.
	var b bytes.Buffer
	for i := range 40 {
		b.WriteString("[s" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + "]\n")
		for j := range 40 {
			b.WriteString("o" + string(rune('a'+j%26)) + string(rune('a'+j/26)) + " = v\n")
		}
	}
	f, err := Parse("env.cfg", b.Bytes())
	require.NoError(t, err)
	require.Equal(t, 40, f.NumSections())
	o, ok := mustSection(t, f, "sab").Get("obb")
	require.True(t, ok)
	assert.Equal(t, "v", o.Value())

	_, err = Parse("env.cfg", append(b.Bytes(), "oaa = again\n"...))
	assertClass(t, err, "DuplicateOptionError")
	_, err = Parse("env.cfg", append(b.Bytes(), "[sab]\n"...))
	assertClass(t, err, "DuplicateSectionError")
}

// mustSection returns the section called name, which must exist.
func mustSection(t *testing.T, f *File, name string) Section {
	t.Helper()
	s, ok := f.Section(name)
	require.True(t, ok, "section %q", name)
	return s
}

func assertClass(t *testing.T, err error, class string) *Error {
	t.Helper()
	var e *Error
	require.True(t, errors.As(err, &e), "want *Error, got %v", err)
	assert.Equal(t, class, e.PythonClass)
	return e
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		class   string
		summary string
		at      hcl.Range
		other   []hcl.Range
		diags   int
	}{
		{
			name: "option before any header", src: "# x\n  a = 1\n[s]\n",
			class: "MissingSectionHeaderError", summary: "Line before the first section header",
			at: rng(pos(2, 3, 6), pos(2, 8, 11)), diags: 1,
		},
		{
			name: "byte-order mark", src: "\ufeff[s]\n",
			class: "MissingSectionHeaderError", summary: "File starts with a UTF-8 byte-order mark",
			at: rng(pos(1, 1, 0), pos(1, 5, 6)), diags: 1,
		},
		{
			name: "duplicate section", src: "[s]\n[t]\n [s] \n",
			class: "DuplicateSectionError", summary: "Section [s] appears twice",
			at: rng(pos(3, 2, 9), pos(3, 5, 12)), other: []hcl.Range{rng(pos(1, 1, 0), pos(1, 4, 3))}, diags: 1,
		},
		{
			name: "duplicate option", src: "[s]\na = 1\nb = 2\na: 3\n",
			class: "DuplicateOptionError", summary: `Option "a" is set twice in section [s]`,
			at: rng(pos(4, 1, 16), pos(4, 2, 17)), other: []hcl.Range{rng(pos(2, 1, 4), pos(2, 2, 5))}, diags: 1,
		},
		{
			name: "every unparsable line at once", src: "[s]\nbad one\na = 1\n= nameless\n",
			class: "ParsingError", summary: "Line is not an option, a section header or a comment",
			at: rng(pos(2, 1, 4), pos(2, 8, 11)), other: []hcl.Range{rng(pos(4, 1, 18), pos(4, 11, 28))}, diags: 2,
		},
		{
			name: "duplicate wins over earlier unparsable lines", src: "[s]\nbad\n[s]\n",
			class: "DuplicateSectionError", summary: "Section [s] appears twice",
			at: rng(pos(3, 1, 8), pos(3, 4, 11)), other: []hcl.Range{rng(pos(1, 1, 0), pos(1, 4, 3))}, diags: 1,
		},
		{
			name: "not UTF-8", src: "[s]\nname = M\xfcller\n",
			class: "UnicodeDecodeError", summary: "File is not valid UTF-8",
			at: rng(pos(2, 9, 12), pos(2, 10, 13)), diags: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("env.cfg", []byte(tt.src))
			assert.Nil(t, f)
			e := assertClass(t, err, tt.class)
			assert.Equal(t, tt.summary, e.Summary)
			assert.NotEmpty(t, e.Detail)
			assert.Equal(t, tt.at, e.Range)
			assert.Equal(t, tt.other, e.Other)
			assert.Contains(t, e.Error(), "env.cfg:")
			assert.Contains(t, e.Error(), tt.class)
			diags := e.Diagnostics()
			require.Len(t, diags, tt.diags)
			for _, d := range diags {
				assert.Equal(t, hcl.DiagError, d.Severity)
				assert.Contains(t, d.Detail, tt.class)
			}
			d := e.Diagnostic()
			assert.Equal(t, tt.at, *d.Subject)
		})
	}
}

func TestJSONEscapesLikePython(t *testing.T) {
	f, err := Parse("env.cfg", []byte("[s]\nq = \"a\\b\" \x01 \x7f \u2028 é <>&\nnl =\n  x\n\ttab\n"))
	require.NoError(t, err)
	assert.Equal(t, `{"sections": {"s": {"nl": "\nx\ntab", "q": "\"a\\b\" \u0001 `+"\x7f \u2028 é <>&"+`"}}}`, string(f.JSON()))
	assert.Equal(t, `{"error": "ParsingError"}`, string(ErrorJSON("ParsingError")))
}

func TestSnippetSource(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a\nb\n", "a\nb\n"},
		{"a\r\nb\r\n", "a\r\nb\r\n"},
		{"a\rb\r", "a\nb\n"},
		{"a\r\r\nb", "a\n\r\nb"},
	}
	for _, tt := range tests {
		in := []byte(tt.in)
		assert.Equal(t, tt.want, string(SnippetSource(in)))
		assert.Equal(t, tt.in, string(in), "input unchanged")
	}
}

// TestRangesConcurrently asks for positions from several goroutines at
// once: the line-start table is made on first use, once (run with -race).
func TestRangesConcurrently(t *testing.T) {
	src := "[a]\nx = 1\n  two\n[b]\r\ny = é\r\n"
	f, err := Parse("env.cfg", []byte(src))
	require.NoError(t, err)
	want := []hcl.Range{rng(pos(2, 1, 4), pos(2, 2, 5)), rng(pos(5, 1, 21), pos(5, 2, 22))}
	got := make([][]hcl.Range, 4)
	done := make(chan int)
	for g := range got {
		go func() {
			for s := range f.Sections() {
				got[g] = append(got[g], s.Option(0).NameRange())
			}
			done <- g
		}()
	}
	for range got {
		<-done
	}
	for _, g := range got {
		assert.Equal(t, want, g)
	}
	o, _ := mustSection(t, f, "b").Get("y")
	assert.Equal(t, rng(pos(5, 5, 25), pos(5, 6, 27)), o.Line(0).Range)
}

// TestIteratorsStop: the iterators end when the loop body breaks.
func TestIteratorsStop(t *testing.T) {
	f, err := Parse("env.cfg", []byte("[a]\nx = 1\ny = 2\n[b]\n[c]\n"))
	require.NoError(t, err)
	var names []string
	for s := range f.Sections() {
		names = append(names, s.Name())
		if s.Name() == "b" {
			break
		}
	}
	assert.Equal(t, []string{"a", "b"}, names)
	names = nil
	for o := range mustSection(t, f, "a").Options() {
		names = append(names, o.Name())
		break
	}
	assert.Equal(t, []string{"x"}, names)
	assert.Equal(t, 3, f.NumSections())
}
