package rawconfig

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
)

// seedCorpus adds every corpus file and a few hand-picked inputs.
func seedCorpus(f *testing.F) {
	for _, path := range corpus(f) {
		src, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	for _, s := range []string{
		"", "[s]", "[s]\na=1", "[s]\r\na : 1\r\n  b\r\n\r\n", "[DEFAULT]\na=1\n[DEFAULT]\nb=2\n[t]\n",
		"[s]\n  a = 1\n b\n   c = 2\n", "[s]\n= x\n= y\n", "\ufeff[s]\n", "[s]\na = \u3000x\u2028\n",
		"[s]\na = 1\n\x85b = 2\n", "[a]]\n[]\n", "[s]\na = \xff\n[s]\n",
	} {
		f.Add([]byte(s))
	}
}

// FuzzParseMatchesPython requires Parse to agree with CPython's
// RawConfigParser (read as batou reads) on every input, byte for byte in
// the JSON `devhost debug cfg` prints. CPython runs as one persistent
// process per fuzz worker.
func FuzzParseMatchesPython(f *testing.F) {
	server := startPyServer(f, python3(f))
	seedCorpus(f)
	f.Fuzz(func(t *testing.T, src []byte) {
		want, err := server.Query(src)
		if err != nil {
			t.Fatal(err)
		}
		got := goJSON("fuzz.cfg", src)
		if string(want) != string(got) {
			t.Fatalf("input %q:\nCPython: %s\nGo:      %s", src, want, got)
		}
	})
}

// FuzzParse checks what must hold for any input without Python: no panic,
// and every range points into the source at the text it describes, with
// line and column numbers that agree with its byte offset.
func FuzzParse(f *testing.F) {
	seedCorpus(f)
	f.Fuzz(func(t *testing.T, src []byte) {
		file, err := Parse("fuzz.cfg", src)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			switch e.PythonClass {
			case "MissingSectionHeaderError", "DuplicateSectionError", "DuplicateOptionError", "ParsingError", "UnicodeDecodeError":
			default:
				t.Fatalf("unknown Python class %q", e.PythonClass)
			}
			checkRange(t, src, e.Range)
			for _, r := range e.Other {
				checkRange(t, src, r)
			}
			// The CLI renders these with HCL's snippet writer.
			w := hcl.NewDiagnosticTextWriter(io.Discard, map[string]*hcl.File{"fuzz.cfg": {Bytes: SnippetSource(src)}}, 80, false)
			if err := w.WriteDiagnostics(e.Diagnostics()); err != nil {
				t.Fatal(err)
			}
			return
		}
		if !utf8.Valid(src) {
			t.Fatal("accepted invalid UTF-8")
		}
		sections := []Section{file.Defaults()}
		for s := range file.Sections() {
			sections = append(sections, s)
		}
		for _, s := range sections {
			if s != file.Defaults() || s.Range() != (hcl.Range{}) {
				checkText(t, src, s.NameRange(), s.Name())
				checkText(t, src, s.Range(), "["+s.Name()+"]")
			}
			for o := range s.Options() {
				checkText(t, src, o.NameRange(), o.Name())
				if o.NumLines() == 0 {
					t.Fatalf("option %q has no lines", o.Name())
				}
				texts := make([]string, o.NumLines())
				for i, l := range o.Lines() {
					checkText(t, src, l.Range, l.Text)
					texts[i] = l.Text
				}
				if v := strings.Join(texts, "\n"); v != o.Value() {
					t.Fatalf("option %q: lines %q do not make value %q", o.Name(), v, o.Value())
				}
				checkRange(t, src, o.Span())
			}
		}
	})
}

// checkText requires r to cover exactly text in src.
func checkText(t *testing.T, src []byte, r hcl.Range, text string) {
	t.Helper()
	checkRange(t, src, r)
	if got := string(src[r.Start.Byte:r.End.Byte]); got != text {
		t.Fatalf("range %s covers %q, want %q", r, got, text)
	}
}

// checkRange requires r to lie within src on one line, with line and
// column (in characters, 1-based) matching its byte offsets under
// universal newlines.
func checkRange(t *testing.T, src []byte, r hcl.Range) {
	t.Helper()
	if r.Start.Byte < 0 || r.Start.Byte > r.End.Byte || r.End.Byte > len(src) {
		t.Fatalf("range %s (bytes %d-%d) outside the source of %d bytes", r, r.Start.Byte, r.End.Byte, len(src))
	}
	for _, p := range []hcl.Pos{r.Start, r.End} {
		line, col := position(src, p.Byte)
		if p.Line != line || p.Column != col {
			t.Fatalf("byte %d is %d:%d, range says %d:%d", p.Byte, line, col, p.Line, p.Column)
		}
	}
}

// position computes line and column of byte offset off the slow way.
func position(src []byte, off int) (line, col int) {
	line, start := 1, 0
	for i := 0; i < off; i++ {
		if src[i] == '\n' || (src[i] == '\r' && (i+1 >= len(src) || src[i+1] != '\n')) {
			line++
			start = i + 1
		}
	}
	return line, utf8.RuneCount(src[start:off]) + 1
}
