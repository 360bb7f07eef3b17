package environment

import (
	"sort"
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

// valueLines maps byte spans of an option's Value (whose lines are joined
// with "\n") to the source ranges they came from. It is made once per
// option, so that mapping every item of a list continued over many lines
// stays linear.
type valueLines struct {
	opt rawconfig.Option
	// off[i] is the offset of line i in Value; line i covers the offsets
	// off[i] to off[i]+len(its text), its end included. off[len(off)-1]
	// is len(Value)+1, where a further line would start.
	off []int
}

func newValueLines(opt rawconfig.Option) valueLines {
	n := opt.NumLines()
	v := valueLines{opt: opt, off: make([]int, n+1)}
	o := 0
	for i := range n {
		v.off[i] = o
		o += len(opt.LineText(i)) + 1
	}
	v.off[n] = o
	return v
}

// line is the index of the line covering offset k, or -1.
func (v valueLines) line(k int) int {
	n := len(v.off) - 1
	i := sort.Search(n, func(i int) bool { return v.off[i] > k }) - 1
	if i < 0 || k >= v.off[i+1] {
		return -1
	}
	return i
}

// rng is the range of sp (an empty span gives a point, e.g. the empty item
// after a trailing comma). An unmapped span falls back to the whole value.
func (v valueLines) rng(sp span) hcl.Range {
	a, b := v.line(sp.a), v.line(sp.b)
	if a < 0 || b < 0 || sp.a > sp.b {
		return wholeValue(v.opt)
	}
	la, lb := v.opt.Line(a), v.opt.Line(b)
	return hcl.Range{Filename: la.Range.Filename,
		Start: linePos(la, sp.a-v.off[a], false), End: linePos(lb, sp.b-v.off[b], true)}
}

// wholeValue is the range from the first to the last non-empty value line,
// or the option's name when the value is empty.
func wholeValue(opt rawconfig.Option) hcl.Range { return opt.ValueRange() }

// sectionSubName is the range of the part of a section name after prefix
// (e.g. "web" in "[host:web]"), assuming the header is on one line.
func sectionSubName(s rawconfig.Section, prefix string) hcl.Range {
	r := s.NameRange()
	if r.End.Byte-r.Start.Byte != len(s.Name()) || !strings.HasPrefix(s.Name(), prefix) {
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
