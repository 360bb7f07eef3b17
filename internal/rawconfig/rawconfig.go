// Package rawconfig reads INI files exactly as Python's
// configparser.RawConfigParser does with case-sensitive option names
// (optionxform = str), which is how batou reads environment.cfg.
//
// The aim is bug-for-bug agreement with CPython: the same sections, options
// and values for every file CPython accepts, and an error of the same kind
// (named by the Python exception class) for every file it rejects. Unlike
// CPython, every section, option and value line keeps its source range, so
// later validation can point at the exact line of one item of a list.
//
// The reference is CPython 3.11's Lib/configparser.py as batou calls it
// (RawConfigParser().read(path), a UTF-8 locale). differential_test.go,
// the fuzz targets and generated_test.go compare Parse with the python3 on
// PATH; testdata/configparser_json.py is the Python side.
package rawconfig

import (
	"fmt"
	"iter"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
)

// DefaultSection is the section whose options appear in every other section.
const DefaultSection = "DEFAULT"

// File is a parsed configuration file.
//
// A File keeps the source and records every name, value line and header
// as byte offsets into it, in flat slices without pointers; Section and
// Option are handles (a File and an index), and text and ranges are
// computed when asked for. A program reads environment.cfg on every
// command, and a 10,000-line file then costs a few hundred kB that the
// garbage collector need not scan, instead of megabytes of objects with a
// string and an hcl.Range each.
type File struct {
	Filename string

	src string
	// sects[0] is DEFAULT, then the sections in file order.
	sects []section
	// opts holds the options in file order. The options of a section other
	// than DEFAULT are one run of it; DEFAULT's (which may come from several
	// [DEFAULT] headers) are listed by defOpts.
	opts    []option
	defOpts []int32
	// lines holds the value lines of every value of more than one line,
	// each value's in one run.
	lines []span
	// joined holds the values of more than one line, joined with "\n".
	joined string
	// hasCR is set when the source has a "\r": then it may end lines.
	hasCR bool

	// index finds sections (by index in sects) once a file has many.
	index *nameTable
	// optIndex are the name tables of sections with many options; they
	// hold indexes in opts.
	optIndex []*nameTable

	// lineStarts is the byte offset of the start of every line, for
	// turning offsets into lines and columns. It is made when a position
	// is first asked for.
	lineStarts     []int32
	lineStartsOnce sync.Once
}

// span is the byte range [off, end) of the source, or of the list an
// index range refers to.
type span struct{ off, end int32 }

func (s span) len() int { return int(s.end - s.off) }

// section is what a File records of a section.
type section struct {
	// name is where the name stands between the brackets; zero for a
	// DEFAULT section the file has no header for.
	name span
	// opts is the run of f.opts holding the section's options (for
	// DEFAULT: of f.defOpts).
	opts span
	// index is 1 + the index of its name table in f.optIndex, or 0.
	index int32
}

// option is what a File records of an option.
type option struct {
	name span
	// value is the final value: in the source for a value of one line,
	// in f.joined for a value of more.
	value span
	// lines is the run of f.lines holding the value lines, empty for a
	// value of one line: that line is value.
	lines span
}

// Section is one [name] section of a File: a handle to compare and pass
// by value. The zero Section is no section (IsZero); its methods must not
// be called.
type Section struct {
	f *File
	i int32
}

// Option is one option of a section: a handle to compare and pass by
// value, like Section.
type Option struct {
	f *File
	i int32
}

// ValueLine is one line of a (possibly continued) value.
type ValueLine struct {
	Text  string
	Range hcl.Range
}

// Error is a file CPython's parser rejects.
type Error struct {
	// PythonClass is the name of the exception class batou fails with:
	// "DuplicateSectionError", "DuplicateOptionError",
	// "MissingSectionHeaderError", "ParsingError" (configparser) or
	// "UnicodeDecodeError" (the file is not UTF-8).
	PythonClass string
	Summary     string
	Detail      string
	// Range is the offending line (for duplicates: the repeated name).
	Range hcl.Range
	// Other holds related places: for a ParsingError every further line
	// CPython could not parse (it reports them all at once), for a
	// duplicate the first occurrence.
	Other []hcl.Range
	// otherMsgs are the messages for Other's lines of a ParsingError.
	otherMsgs []lineMessage
}

type lineMessage struct{ summary, detail string }

// Sections returns the sections in file order, without DEFAULT.
func (f *File) Sections() iter.Seq[Section] {
	return func(yield func(Section) bool) {
		for i := 1; i < len(f.sects); i++ {
			if !yield(Section{f, int32(i)}) {
				return
			}
		}
	}
}

// NumSections is the number of sections without DEFAULT.
func (f *File) NumSections() int { return len(f.sects) - 1 }

// Defaults returns the DEFAULT section (empty when the file has none).
func (f *File) Defaults() Section { return Section{f, 0} }

// Section returns the section called name; ok is false when there is
// none. Section(DefaultSection) returns the DEFAULT section (empty when
// the file has none).
func (f *File) Section(name string) (s Section, ok bool) {
	if name == DefaultSection {
		return f.Defaults(), true
	}
	if i := f.section(name); i > 0 {
		return Section{f, i}, true
	}
	return Section{}, false
}

// section is the index in f.sects of the section other than DEFAULT
// called name, or -1.
func (f *File) section(name string) int32 {
	if f.index != nil {
		return f.index.find(name, f.sectName)
	}
	for i := 1; i < len(f.sects); i++ {
		if f.sectName(int32(i)) == name {
			return int32(i)
		}
	}
	return -1
}

func (f *File) sectName(i int32) string { return Section{f, i}.Name() }

func (f *File) optName(i int32) string { return Option{f, i}.Name() }

// Merged returns the options of section name as CPython's get/options see
// them (see Section.Merged), or nil when there is no such section.
func (f *File) Merged(name string) []Option {
	s, ok := f.Section(name)
	if !ok {
		return nil
	}
	return s.Merged()
}

// Map returns every section but DEFAULT with the DEFAULT values merged in,
// the shape `devhost debug cfg` prints.
func (f *File) Map() map[string]map[string]string {
	out := make(map[string]map[string]string, f.NumSections())
	d := f.Defaults()
	for s := range f.Sections() {
		m := make(map[string]string, s.NumOptions()+d.NumOptions())
		for o := range d.Options() {
			m[o.Name()] = o.Value()
		}
		for o := range s.Options() {
			m[o.Name()] = o.Value()
		}
		out[s.Name()] = m
	}
	return out
}

// pos is the position of byte offset off.
func (f *File) pos(off int32) hcl.Pos {
	f.lineStartsOnce.Do(f.findLineStarts)
	// The last line starting at or before off.
	line := sort.Search(len(f.lineStarts), func(i int) bool { return f.lineStarts[i] > off }) - 1
	start := int(f.lineStarts[line])
	return hcl.Pos{Line: line + 1, Column: utf8.RuneCountInString(f.src[start:off]) + 1, Byte: int(off)}
}

// findLineStarts fills f.lineStarts. Universal newlines: "\n", "\r\n" and
// a lone "\r" end a line, as in the parser.
func (f *File) findLineStarts() {
	src := f.src
	n := strings.Count(src, "\n") + 1
	if f.hasCR {
		n += strings.Count(src, "\r")
	}
	starts := make([]int32, 1, n)
	for i := 0; i < len(src); {
		var j int
		if f.hasCR {
			j = strings.IndexAny(src[i:], "\r\n")
		} else {
			j = strings.IndexByte(src[i:], '\n')
		}
		if j < 0 {
			break
		}
		i += j + 1
		if src[i-1] == '\r' && i < len(src) && src[i] == '\n' {
			i++
		}
		starts = append(starts, int32(i))
	}
	f.lineStarts = starts
}

// rng is the range of source bytes [off, end), which lie on one line.
func (f *File) rng(off, end int32) hcl.Range {
	start := f.pos(off)
	return hcl.Range{Filename: f.Filename, Start: start,
		End: hcl.Pos{Line: start.Line, Column: start.Column + utf8.RuneCountInString(f.src[off:end]), Byte: int(end)}}
}

// IsZero reports whether s is the zero Section, no section.
func (s Section) IsZero() bool { return s.f == nil }

func (s Section) d() *section { return &s.f.sects[s.i] }

// Name is the section's name.
func (s Section) Name() string {
	n := s.d().name
	if n.end == 0 {
		return DefaultSection
	}
	return s.f.src[n.off:n.end]
}

// Range covers the header line's "[name]" (anything after the last ']'
// on the line is ignored, as CPython does). For DEFAULT it is the first
// [DEFAULT] header, or the zero Range when the file has none.
func (s Section) Range() hcl.Range {
	n := s.d().name
	if n.end == 0 {
		return hcl.Range{}
	}
	return s.f.rng(n.off-1, n.end+1)
}

// NameRange covers just the name inside the brackets (the zero Range for
// a DEFAULT section without header).
func (s Section) NameRange() hcl.Range {
	n := s.d().name
	if n.end == 0 {
		return hcl.Range{}
	}
	return s.f.rng(n.off, n.end)
}

// NumOptions is the number of the section's own options; DEFAULT options
// are not counted in, use Get or Merged for the view CPython gives.
func (s Section) NumOptions() int { return s.d().opts.len() }

// Option returns the section's own option i (0 <= i < NumOptions), in
// file order.
func (s Section) Option(i int) Option { return Option{s.f, s.optAt(i)} }

// optAt is the index in f.opts of the section's option i.
func (s Section) optAt(i int) int32 {
	k := s.d().opts.off + int32(i)
	if s.i == 0 {
		return s.f.defOpts[k]
	}
	return k
}

// Options returns the section's own options in file order.
func (s Section) Options() iter.Seq[Option] {
	return func(yield func(Option) bool) {
		for i := range s.NumOptions() {
			if !yield(s.Option(i)) {
				return
			}
		}
	}
}

// Merged returns the section's options as CPython's get/options see them:
// its own options in file order, then the DEFAULT options it does not
// override (the order of RawConfigParser.options).
func (s Section) Merged() []Option {
	d := s.f.Defaults()
	out := make([]Option, 0, s.NumOptions()+d.NumOptions())
	for o := range s.Options() {
		out = append(out, o)
	}
	if s == d {
		return out
	}
	for o := range d.Options() {
		if _, ok := s.lookup(o.Name()); !ok {
			out = append(out, o)
		}
	}
	return out
}

// Get returns the option called name, falling back to DEFAULT like
// RawConfigParser.get.
func (s Section) Get(name string) (Option, bool) {
	if o, ok := s.lookup(name); ok {
		return o, true
	}
	if d := s.f.Defaults(); s != d {
		return d.lookup(name)
	}
	return Option{}, false
}

// lookup finds an option of s itself.
func (s Section) lookup(name string) (Option, bool) {
	if k := s.d().index; k > 0 {
		if i := s.f.optIndex[k-1].find(name, s.f.optName); i >= 0 {
			return Option{s.f, i}, true
		}
		return Option{}, false
	}
	for i := range s.NumOptions() {
		if o := s.Option(i); o.Name() == name {
			return o, true
		}
	}
	return Option{}, false
}

func (o Option) d() *option { return &o.f.opts[o.i] }

// Name is the option's name.
func (o Option) Name() string {
	n := o.d().name
	return o.f.src[n.off:n.end]
}

// NameRange covers the option's name.
func (o Option) NameRange() hcl.Range {
	n := o.d().name
	return o.f.rng(n.off, n.end)
}

// Value is the final value as CPython returns it: continuation lines
// joined with "\n", trailing blank lines removed.
func (o Option) Value() string {
	d := o.d()
	if d.lines.len() > 1 {
		return o.f.joined[d.value.off:d.value.end]
	}
	return o.f.src[d.value.off:d.value.end]
}

// NumLines is the number of lines that make up the value (at least 1).
func (o Option) NumLines() int { return max(1, o.d().lines.len()) }

// lineSpan is where value line i stands in the source.
func (o Option) lineSpan(i int) span {
	d := o.d()
	if d.lines.len() == 0 {
		return d.value
	}
	return o.f.lines[int(d.lines.off)+i]
}

// LineText is the text of value line i (Line(i).Text, without working
// out its range).
func (o Option) LineText(i int) string {
	l := o.lineSpan(i)
	return o.f.src[l.off:l.end]
}

// Line returns value line i (0 <= i < NumLines): the first line after
// the delimiter, then each continuation line. Blank lines kept inside the
// value have an empty Text.
func (o Option) Line(i int) ValueLine {
	l := o.lineSpan(i)
	return ValueLine{Text: o.f.src[l.off:l.end], Range: o.f.rng(l.off, l.end)}
}

// Lines returns all value lines (see Line).
func (o Option) Lines() []ValueLine {
	out := make([]ValueLine, o.NumLines())
	for i := range out {
		out[i] = o.Line(i)
	}
	return out
}

// ValueRange covers the value: from the first to the last non-empty value
// line, or the option's name when the value is empty.
func (o Option) ValueRange() hcl.Range {
	first, last := -1, -1
	for i := range o.NumLines() {
		if o.lineSpan(i).len() > 0 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return o.NameRange()
	}
	l := o.lineSpan(first)
	r := o.f.rng(l.off, l.end)
	if last > first {
		r.End = o.f.pos(o.lineSpan(last).end)
	}
	return r
}

// Span covers the whole option: from its name to the end of its last
// value line.
func (o Option) Span() hcl.Range {
	r := o.NameRange()
	r.End = o.f.pos(o.lineSpan(o.NumLines() - 1).end)
	return r
}

// Error formats e as "file:line:col: summary (PythonClass)".
func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s (Python: %s)", e.Range.Filename, e.Range.Start.Line, e.Range.Start.Column, e.Summary, e.PythonClass)
}

// Diagnostic returns e as one error diagnostic on its main range.
func (e *Error) Diagnostic() *hcl.Diagnostic {
	r := e.Range
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  e.Summary,
		Detail:   e.Detail + " [Python: " + e.PythonClass + "]",
		Subject:  &r,
	}
}

// Diagnostics returns e as diagnostics: the main one, and for a
// ParsingError one more for every further line CPython could not parse.
func (e *Error) Diagnostics() hcl.Diagnostics {
	diags := hcl.Diagnostics{e.Diagnostic()}
	if e.PythonClass != "ParsingError" {
		return diags
	}
	for i, r := range e.Other {
		d := *diags[0]
		if i < len(e.otherMsgs) {
			d.Summary = e.otherMsgs[i].summary
			d.Detail = e.otherMsgs[i].detail + " [Python: " + e.PythonClass + "]"
		}
		d.Subject = &r
		diags = append(diags, &d)
	}
	return diags
}

// SnippetSource returns src for HCL's snippet writer (the Files of a
// diag.Error): HCL splits lines at "\n" only, so a lone "\r", which ends a
// line for CPython, is turned into "\n". Byte offsets stay the same, so
// the ranges Parse returns still apply. src itself is never changed.
func SnippetSource(src []byte) []byte {
	var out []byte
	for i, c := range src {
		if c == '\r' && (i+1 == len(src) || src[i+1] != '\n') {
			if out == nil {
				out = append([]byte(nil), src...)
			}
			out[i] = '\n'
		}
	}
	if out == nil {
		return src
	}
	return out
}
