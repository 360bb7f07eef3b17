package environment

import (
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"

	"github.com/flyingcircusio/devhost/internal/rawconfig"
)

// exactLine reports whether l's range covers exactly its text, so that a
// byte offset into the text is a byte offset into the file. Any reader that
// keeps ranges that way lets devhost point at one word of a line; otherwise
// devhost points at the whole line.
func exactLine(l rawconfig.ValueLine) bool {
	r := l.Range
	return r.Start.Line == r.End.Line && r.End.Byte-r.Start.Byte == len(l.Text)
}

// linePos is the position of byte k of l's text.
func linePos(l rawconfig.ValueLine, k int, end bool) hcl.Pos {
	if !exactLine(l) {
		if end {
			return l.Range.End
		}
		return l.Range.Start
	}
	p := l.Range.Start
	p.Byte += k
	p.Column += utf8.RuneCountInString(l.Text[:k])
	return p
}

// valueRange maps the byte span sp of opt.Value (whose lines are joined
// with "\n") to the source range it came from (an empty span to a point,
// e.g. the empty item after a trailing comma). An unmapped span falls back
// to the whole value, and a value without lines to the option's name.
func valueRange(opt *rawconfig.Option, sp span) hcl.Range {
	if len(opt.Lines) == 0 {
		return opt.NameRange
	}
	var (
		start, end       hcl.Pos
		gotStart, gotEnd bool
	)
	off := 0
	for _, l := range opt.Lines {
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
	return hcl.Range{Filename: opt.NameRange.Filename, Start: start, End: end}
}

// wholeValue is the range from the first to the last non-empty value line,
// or the option's name when the value is empty.
func wholeValue(opt *rawconfig.Option) hcl.Range {
	var first, last *rawconfig.ValueLine
	for i := range opt.Lines {
		if opt.Lines[i].Text == "" {
			continue
		}
		if first == nil {
			first = &opt.Lines[i]
		}
		last = &opt.Lines[i]
	}
	if first == nil {
		return opt.NameRange
	}
	return hcl.Range{Filename: first.Range.Filename, Start: first.Range.Start, End: last.Range.End}
}

// sectionSubName is the range of the part of a section name after prefix
// (e.g. "web" in "[host:web]"), assuming the header is on one line.
func sectionSubName(s *rawconfig.Section, prefix string) hcl.Range {
	r := s.NameRange
	if r.End.Byte-r.Start.Byte != len(s.Name) || !strings.HasPrefix(s.Name, prefix) {
		return r
	}
	r.Start.Byte += len(prefix)
	r.Start.Column += utf8.RuneCountInString(prefix)
	return r
}

// lineIndex maps byte offsets of a file to positions, for files devhost
// reads without a position-keeping parser (hostmap.json, provision.nix).
type lineIndex struct {
	name  string
	src   []byte
	start []int // byte offset of every line's first byte
}

func newLineIndex(name string, src []byte) *lineIndex {
	ix := &lineIndex{name: name, src: src, start: []int{0}}
	for i, c := range src {
		if c == '\n' {
			ix.start = append(ix.start, i+1)
		}
	}
	return ix
}

// pos is the position of byte offset b (clamped to the file).
func (ix *lineIndex) pos(b int) hcl.Pos {
	b = max(0, min(b, len(ix.src)))
	line := 0
	lo, hi := 0, len(ix.start)-1
	for lo <= hi {
		m := (lo + hi) / 2
		if ix.start[m] <= b {
			line, lo = m, m+1
		} else {
			hi = m - 1
		}
	}
	col := utf8.RuneCount(ix.src[ix.start[line]:b]) + 1
	return hcl.Pos{Line: line + 1, Column: col, Byte: b}
}

// rng is the range of bytes [a, b).
func (ix *lineIndex) rng(a, b int) hcl.Range {
	return hcl.Range{Filename: ix.name, Start: ix.pos(a), End: ix.pos(b)}
}

// lineCol is the byte offset of 1-based line and byte column col (as Nix
// and bash report them), clamped to that line.
func (ix *lineIndex) lineCol(line, col int) int {
	if line < 1 {
		return 0
	}
	if line > len(ix.start) {
		return len(ix.src)
	}
	ls := ix.start[line-1]
	le := len(ix.src)
	if line < len(ix.start) {
		le = ix.start[line] - 1
	}
	return max(ls, min(ls+col-1, le))
}

// lineRange is the range of line's text without its newline, or of its
// first byte when the line is empty.
func (ix *lineIndex) lineRange(line int) hcl.Range {
	a := ix.lineCol(line, 1)
	b := a
	for b < len(ix.src) && ix.src[b] != '\n' {
		b++
	}
	if b == a && b < len(ix.src) {
		b++
	}
	return ix.rng(a, b)
}
