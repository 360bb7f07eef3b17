package rawconfig

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
)

// Parse reads src (the bytes of filename) the way batou does:
// RawConfigParser().read(filename) with optionxform = str, on a UTF-8
// locale. Every rule below mirrors one in CPython 3.11's
// configparser.RawConfigParser._read; the comments name them.
//
// On rejection Parse returns a nil *File and an *Error naming the Python
// exception class CPython raises for the same bytes. Files of 2 GiB and
// more are refused (positions are 32-bit).
//
// The File keeps one copy of src as a string, and names and values are
// substrings of it: the caller may reuse or wipe src (secrets.cfg's
// cleartext) afterwards.
func Parse(filename string, src []byte) (*File, error) {
	if len(src) > math.MaxInt32 {
		return nil, fmt.Errorf("%s: %d bytes is too large to read", filename, len(src))
	}
	p := newParser(filename, string(src))
	if !utf8.Valid(src) {
		return nil, p.decodeError(src)
	}
	if err := p.run(); err != nil {
		return nil, err
	}
	p.join()
	if p.perr != nil {
		return nil, p.perr
	}
	return p.f, nil
}

// parser holds the state of CPython's _read loop.
type parser struct {
	src string
	f   *File

	// cur is the index of cursect in f.sects (-1 before the first header).
	cur int32
	// curOpt is the index in f.opts of the option continuation lines and
	// blank lines go to: CPython's optname when it is truthy. -1 when
	// optname is None or "".
	curOpt      int32
	indentLevel int

	// perr collects unparsable lines; CPython raises one ParsingError for
	// all of them after the whole file was read, unless an immediate error
	// (duplicate section or option) comes first.
	perr *Error

	// hasCR is set when the file has a "\r" anywhere; most have none, and
	// then finding line ends is one search per line.
	hasCR bool

	// stopChunk >= 0 stops the loop before the first line that needs
	// decoding chunk stopChunk (see decodeError).
	stopChunk int

	// blanks are the blank lines read since the current option's last
	// line: part of its value if a further line follows.
	blanks []span
}

func newParser(filename, src string) *parser {
	// Size the slices from cheap counts (upper bounds, or close to them
	// for a typical file), so that most files need one allocation each.
	crs := strings.Count(src, "\r")
	lines := strings.Count(src, "\n") + crs + 1
	opts := min(lines/2+16, strings.Count(src, "=")+strings.Count(src, ":")+1)
	sects := min(lines, strings.Count(src, "[")) + 1
	f := &File{
		Filename: filename,
		src:      src,
		sects:    make([]section, 1, sects),
		opts:     make([]option, 0, opts),
		// Lines of values continued over several lines; a guess.
		lines: make([]span, 0, lines/2+16),
		hasCR: crs > 0,
	}
	return &parser{
		src:       src,
		f:         f,
		cur:       -1,
		curOpt:    -1,
		stopChunk: -1,
		hasCR:     crs > 0,
	}
}

// run is the loop of _read. It returns the errors CPython raises at once
// (missing header, duplicates); unparsable lines collect in p.perr.
func (p *parser) run() error {
	src := p.src
	pos := 0
	for pos < len(src) {
		start := pos
		// Universal newlines: "\n", "\r\n" and a lone "\r" end a line;
		// nothing else does (file iteration, not str.splitlines).
		end := len(src)
		next := len(src)
		if i := strings.IndexByte(src[pos:], '\n'); i >= 0 {
			end = pos + i
			next = end + 1
		}
		if p.hasCR {
			if j := strings.IndexByte(src[pos:end], '\r'); j >= 0 {
				end = pos + j
				next = end + 1
				if next < len(src) && src[next] == '\n' {
					next++
				}
			}
		}
		if p.stopChunk >= 0 && lineChunk(src, end, next) >= p.stopChunk {
			return nil
		}
		pos = next
		if err := p.line(start, end); err != nil {
			return err
		}
	}
	return nil
}

// line handles one line src[start:end] (without its line break).
func (p *parser) line(start, end int) error {
	src := p.src
	// value = line.strip(): str.strip() removes Unicode whitespace
	// (str.isspace), not just ASCII. The leading part's length in code
	// points is also cur_indent_level (NONSPACECRE = \S, the same set).
	lead, indent := start, 0
	for lead < end {
		c := src[lead]
		if c < utf8.RuneSelf {
			if !asciiSpace[c] {
				break
			}
			lead++
		} else {
			r, size := utf8.DecodeRuneInString(src[lead:end])
			if !isUnicodeSpace(r) {
				break
			}
			lead += size
		}
		indent++
	}
	if lead == end {
		// An empty line: with empty_lines_in_values it is added to the
		// current value, but trailing ones are removed when values are
		// joined, so it is kept only once a further line follows.
		if p.cur >= 0 && p.curOpt >= 0 {
			p.blanks = append(p.blanks, span{int32(lead), int32(lead)})
		}
		return nil
	}
	trail := end
	for trail > lead {
		c := src[trail-1]
		if c < utf8.RuneSelf {
			if !asciiSpace[c] {
				break
			}
			trail--
		} else {
			r, size := utf8.DecodeLastRuneInString(src[lead:trail])
			if !isUnicodeSpace(r) {
				break
			}
			trail -= size
		}
	}
	// Full-line comments: line.strip() starts with '#' or ';'. They are
	// skipped everywhere, also between continuation lines, and do not end
	// a value. There are no inline comments.
	if c := src[lead]; c == '#' || c == ';' {
		return nil
	}
	value := src[lead:trail]
	// A line indented deeper than the line that started the current option
	// continues its value, whatever it looks like.
	if p.cur >= 0 && p.curOpt >= 0 && indent > p.indentLevel {
		p.nextLine(lead, trail)
		return nil
	}
	p.indentLevel = indent
	// SECTCRE = \[(?P<header>.+)\] matched at the start of the stripped
	// line: the header runs to the LAST ']' on the line and anything after
	// it is ignored; "[]" is not a header.
	if value[0] == '[' {
		if k := strings.LastIndexByte(value, ']'); k >= 2 {
			return p.header(lead+1, lead+k)
		}
	}
	if p.cur < 0 {
		return p.missingHeader(start, lead, trail)
	}
	// OPTCRE = (?P<option>.*?)\s*(?P<vi>=|:)\s*(?P<value>.*)$: the name is
	// everything before the first '=' or ':' (right-stripped), the value
	// everything after it (stripped).
	d := indexDelim(value)
	if d < 0 {
		p.parsingError(lead, trail, false)
		return nil
	}
	nameEnd := lead + d
	for nameEnd > lead {
		c := src[nameEnd-1]
		if c < utf8.RuneSelf {
			if !asciiSpace[c] {
				break
			}
			nameEnd--
		} else {
			r, size := utf8.DecodeLastRuneInString(src[lead:nameEnd])
			if !isUnicodeSpace(r) {
				break
			}
			nameEnd -= size
		}
	}
	valStart := lead + d + 1
	for valStart < trail {
		c := src[valStart]
		if c < utf8.RuneSelf {
			if !asciiSpace[c] {
				break
			}
			valStart++
		} else {
			r, size := utf8.DecodeRuneInString(src[valStart:trail])
			if !isUnicodeSpace(r) {
				break
			}
			valStart += size
		}
	}
	if lead == nameEnd {
		// "= value": CPython records a ParsingError for the line but goes
		// on to store the option under the name "" (so a second one in the
		// same section is a DuplicateOptionError), and since "" is falsy
		// nothing continues it.
		p.parsingError(lead, trail, true)
	}
	return p.option(span{int32(lead), int32(nameEnd)}, span{int32(valStart), int32(trail)})
}

// option adds the option name = value (first line) to the current section.
func (p *parser) option(name, value span) error {
	f := p.f
	// strict=True: an option may be set once per section; for DEFAULT this
	// spans every [DEFAULT] section of the file.
	if prev, ok := (Section{f, p.cur}).lookup(p.src[name.off:name.end]); ok {
		return p.duplicateOption(name, prev)
	}
	s := &f.sects[p.cur]
	i := int32(len(f.opts))
	f.opts = append(f.opts, option{name: name, value: value})
	// A section other than DEFAULT is one run of f.opts: the header ended
	// the previous section for good (a repeated header is an error).
	if p.cur == 0 {
		if s.opts.end == 0 {
			s.opts = span{int32(len(f.defOpts)), int32(len(f.defOpts))}
		}
		f.defOpts = append(f.defOpts, i)
	} else if s.opts.end == 0 {
		s.opts.off = i
		s.opts.end = i
	}
	s.opts.end++
	p.indexAdd(Section{f, p.cur})
	if name.len() == 0 {
		p.setCurOpt(-1)
	} else {
		p.setCurOpt(i)
	}
	return nil
}

// indexAdd records the last option of s in its name index, building the
// index once the section is large so duplicate checks stay linear in the
// file size.
func (p *parser) indexAdd(s Section) {
	f := p.f
	n := s.NumOptions()
	last := int32(len(f.opts) - 1)
	if k := s.d().index; k > 0 {
		f.optIndex[k-1].add(last, f.optName)
		return
	}
	if n <= indexThreshold {
		return
	}
	t := newNameTable(2 * n)
	for i := range n {
		t.add(s.optAt(i), f.optName)
	}
	f.optIndex = append(f.optIndex, t)
	s.d().index = int32(len(f.optIndex))
}

// header handles a section header line whose name is src[off:end] (the
// brackets around it are at off-1 and end).
func (p *parser) header(off, end int) error {
	name := p.src[off:end]
	nameSpan := span{int32(off), int32(end)}
	// So sections cannot start with a continuation line.
	p.setCurOpt(-1)
	f := p.f
	if name == DefaultSection {
		// [DEFAULT] may appear any number of times; its options collect in
		// one place (a repeated option is still a duplicate).
		if d := &f.sects[0]; d.name.end == 0 {
			d.name = nameSpan
		}
		p.cur = 0
		return nil
	}
	if prev := f.section(name); prev >= 0 {
		r := f.rng(int32(off-1), int32(end+1))
		return &Error{
			PythonClass: "DuplicateSectionError",
			Summary:     fmt.Sprintf("Section [%s] appears twice", name),
			Detail: fmt.Sprintf("It was already started on line %d. batou rejects a file that repeats a section: merge the options of both into the first one and remove this header.",
				Section{f, prev}.Range().Start.Line),
			Range: r,
			Other: []hcl.Range{Section{f, prev}.Range()},
		}
	}
	p.cur = int32(len(f.sects))
	f.sects = append(f.sects, section{name: nameSpan})
	if f.index != nil {
		f.index.add(p.cur, f.sectName)
	} else if len(f.sects) > indexThreshold+1 {
		f.index = newNameTable(cap(f.sects))
		for i := 1; i < len(f.sects); i++ {
			f.index.add(int32(i), f.sectName)
		}
	}
	return nil
}

func (p *parser) missingHeader(start, lead, trail int) error {
	e := &Error{
		PythonClass: "MissingSectionHeaderError",
		Summary:     "Line before the first section header",
		Detail:      "Every option belongs to a section: add a header such as [environment] above this line, or remove the line.",
		Range:       p.f.rng(int32(lead), int32(trail)),
	}
	if start == 0 && strings.HasPrefix(p.src, "\ufeff") {
		e.Summary = "File starts with a UTF-8 byte-order mark"
		e.Detail = "batou's parser reads the byte-order mark as part of the first line and rejects the file: save environment.cfg as UTF-8 without BOM."
	}
	return e
}

func (p *parser) parsingError(lead, trail int, noName bool) {
	r := p.f.rng(int32(lead), int32(trail))
	m := lineMessage{
		summary: "Line is not an option, a section header or a comment",
		detail:  "Write name = value (or name: value); to continue the previous value, indent this line further than the option's name; to comment it out, start it with # or ;.",
	}
	if noName {
		m = lineMessage{
			summary: "Option without a name",
			detail:  "Put the option's name before the '=' or ':'; to continue the previous value instead, indent this line further than the option's name.",
		}
	}
	if p.perr != nil {
		p.perr.Other = append(p.perr.Other, r)
		p.perr.otherMsgs = append(p.perr.otherMsgs, m)
		return
	}
	p.perr = &Error{PythonClass: "ParsingError", Summary: m.summary, Detail: m.detail, Range: r}
}

func (p *parser) duplicateOption(name span, prev Option) error {
	prevRange := prev.NameRange()
	return &Error{
		PythonClass: "DuplicateOptionError",
		Summary:     fmt.Sprintf("Option %q is set twice in section [%s]", p.src[name.off:name.end], Section{p.f, p.cur}.Name()),
		Detail: fmt.Sprintf("It was already set on line %d. batou rejects a repeated option: keep one of them. Note that only a line indented deeper than the option above continues its value.",
			prevRange.Start.Line),
		Range: p.f.rng(name.off, name.end),
		Other: []hcl.Range{prevRange},
	}
}

// setCurOpt makes option i (or none, -1) the one that further lines
// continue; blank lines still pending belonged to the value before and
// were trailing ones.
func (p *parser) setCurOpt(i int32) {
	p.curOpt = i
	p.blanks = p.blanks[:0]
}

// nextLine adds the continuation line src[off:end], and the blank lines
// before it, to the current option. Its lines are the last run of
// f.lines: nothing else adds a line before the option ends.
func (p *parser) nextLine(off, end int) {
	f := p.f
	o := &f.opts[p.curOpt]
	if o.lines.len() == 0 {
		n := int32(len(f.lines))
		o.lines = span{n, n + 1}
		f.lines = appendSpan(f.lines, o.value)
	}
	for _, b := range p.blanks {
		f.lines = appendSpan(f.lines, b)
	}
	f.lines = appendSpan(f.lines, span{int32(off), int32(end)})
	o.lines.end += int32(len(p.blanks)) + 1
	p.blanks = p.blanks[:0]
}

// appendSpan is append that doubles the capacity when it grows (append
// grows large slices by a quarter, which for a value continued over tens
// of thousands of lines allocates five times the final size).
func appendSpan(s []span, v span) []span {
	if len(s) == cap(s) {
		s = slices.Grow(s, max(len(s), 64))
	}
	return append(s, v)
}

// join mirrors _join_multiline_values: '\n'.join(lines).rstrip(). Each
// line is already stripped, so rstrip only removes trailing empty lines,
// which nextLine never adds. One-line values were final when they were
// read; the others are joined into one string, f.joined.
func (p *parser) join() {
	f := p.f
	size := 0
	for i := range f.opts {
		o := &f.opts[i]
		if o.lines.len() == 0 {
			continue
		}
		for _, l := range f.lines[o.lines.off:o.lines.end] {
			size += l.len() + 1
		}
	}
	if size == 0 {
		return
	}
	var b strings.Builder
	b.Grow(size)
	for i := range f.opts {
		o := &f.opts[i]
		if o.lines.len() == 0 {
			continue
		}
		off := b.Len()
		for k, l := range f.lines[o.lines.off:o.lines.end] {
			if k > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(p.src[l.off:l.end])
		}
		o.value = span{int32(off), int32(b.Len())}
	}
	f.joined = b.String()
}

// indexDelim is the index of the first '=' or ':' in s, or -1.
func indexDelim(s string) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '=' || c == ':' {
			return i
		}
	}
	return -1
}

// asciiSpace marks the ASCII characters str.isspace() accepts: \t \n \v
// \f \r, the separators \x1c-\x1f, and space.
var asciiSpace = [utf8.RuneSelf]bool{
	'\t': true, '\n': true, '\v': true, '\f': true, '\r': true,
	0x1c: true, 0x1d: true, 0x1e: true, 0x1f: true, ' ': true,
}

// isUnicodeSpace is Py_UNICODE_ISSPACE for non-ASCII code points (the
// whitespace of str.strip() and of the re module's \s and \S).
func isUnicodeSpace(r rune) bool {
	switch {
	case r == 0x85, r == 0xa0, r == 0x1680:
		return true
	case r >= 0x2000 && r <= 0x200a:
		return true
	case r == 0x2028, r == 0x2029, r == 0x202f, r == 0x205f, r == 0x3000:
		return true
	}
	return false
}

// indexThreshold is the number of sections or options above which lookups
// switch from a linear scan to a map.
const indexThreshold = 16

// chunkSize is the size of the pieces CPython's TextIOWrapper reads and
// decodes at a time (_CHUNK_SIZE).
const chunkSize = 8192

// lineChunk is the index of the chunk whose decoding makes a line available
// to CPython's line iterator. The line's content ends at end, its line
// break (if any) ends at next. A "\n" ending is available with its own
// chunk. A "\r" (alone or before "\n") is held back by the newline decoder
// until the character after it has been decoded, which may need the next
// chunk (and never happens when that character is not valid UTF-8). The
// last line without a line break is available at the final (empty) read.
func lineChunk(src string, end, next int) int {
	eof := (len(src) + chunkSize - 1) / chunkSize
	switch {
	case end == next:
		return eof
	case src[end] == '\n':
		return end / chunkSize
	case end+1 == len(src):
		return eof
	}
	r, size := utf8.DecodeRuneInString(src[end+1:])
	if r == utf8.RuneError && size <= 1 {
		return math.MaxInt
	}
	return (end + size) / chunkSize
}

// decodeError is CPython's UnicodeDecodeError for a file that is not UTF-8.
//
// CPython decodes while it parses, 8192 bytes at a time, so an error it
// raises at once (missing header, duplicate section or option) on a line
// it could decode before reaching the bad chunk wins over the
// UnicodeDecodeError; unparsable lines never do, they are only reported at
// the end.
func (p *parser) decodeError(src []byte) error {
	bad, detect := invalidUTF8(src)
	p.stopChunk = detect / chunkSize
	if detect == len(src) {
		// A sequence cut off by the end of the file fails at the final read.
		p.stopChunk = (len(src) + chunkSize - 1) / chunkSize
	}
	if err := p.run(); err != nil {
		return err
	}
	p.perr = nil
	line, lineStart := 1, 0
	for i := 0; i < bad; i++ {
		switch src[i] {
		case '\n':
			line++
			lineStart = i + 1
		case '\r':
			if i+1 < bad && src[i+1] == '\n' {
				continue
			}
			line++
			lineStart = i + 1
		}
	}
	col := utf8.RuneCount(src[lineStart:bad]) + 1
	return &Error{
		PythonClass: "UnicodeDecodeError",
		Summary:     "File is not valid UTF-8",
		Detail:      fmt.Sprintf("batou reads environment.cfg as UTF-8 and fails on byte 0x%02x at offset %d: save the file as UTF-8.", src[bad], bad),
		Range: hcl.Range{
			Filename: p.f.Filename,
			Start:    hcl.Pos{Line: line, Column: col, Byte: bad},
			End:      hcl.Pos{Line: line, Column: col + 1, Byte: bad + 1},
		},
	}
}

// invalidUTF8 finds the first invalid UTF-8 sequence the way CPython's
// decoder does: bad is where the sequence starts, detect the byte that
// makes it invalid (CPython rejects a sequence as soon as a byte cannot
// continue it), or len(src) for a sequence cut off by the end of the file.
func invalidUTF8(src []byte) (bad, detect int) {
	n := len(src)
	for i := 0; i < n; {
		c := src[i]
		if c < utf8.RuneSelf {
			i++
			continue
		}
		var need int
		lo, hi := byte(0x80), byte(0xbf)
		switch {
		case c >= 0xc2 && c <= 0xdf:
			need = 1
		case c >= 0xe0 && c <= 0xef:
			need = 2
			if c == 0xe0 {
				lo = 0xa0
			} else if c == 0xed && i+1 < n && src[i+1] >= 0xa0 && src[i+1] <= 0xbf {
				// A surrogate: CPython accepts the two bytes as the start
				// of a sequence and fails only once the third is there.
				if i+2 >= n {
					return i, n
				}
				return i, i + 2
			}
		case c >= 0xf0 && c <= 0xf4:
			need = 3
			switch c {
			case 0xf0:
				lo = 0x90
			case 0xf4:
				hi = 0x8f
			}
		default:
			return i, i
		}
		for k := 1; k <= need; k++ {
			if i+k >= n {
				return i, n
			}
			b := src[i+k]
			if b < lo || b > hi {
				return i, i + k
			}
			lo, hi = 0x80, 0xbf
		}
		i += need + 1
	}
	return n, n
}
