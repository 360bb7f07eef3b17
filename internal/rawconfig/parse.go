package rawconfig

import (
	"fmt"
	"math"
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
// exception class CPython raises for the same bytes.
func Parse(filename string, src []byte) (*File, error) {
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
	p.f.index = p.sectIndex
	return p.f, nil
}

// parser holds the state of CPython's _read loop.
type parser struct {
	src      string
	filename string
	f        *File

	cur *Section // cursect (nil before the first header)
	// curOpt is the option continuation lines and blank lines go to: CPython's
	// optname when it is truthy. nil when optname is None or "".
	curOpt      *Option
	indentLevel int

	// perr collects unparsable lines; CPython raises one ParsingError for
	// all of them after the whole file was read, unless an immediate error
	// (duplicate section or option) comes first.
	perr *Error

	sectIndex map[string]*Section

	// hasCR is set when the file has a "\r" anywhere; most have none, and
	// then finding line ends is one search per line.
	hasCR bool

	// stopChunk >= 0 stops the loop before the first line that needs
	// decoding chunk stopChunk (see decodeError).
	stopChunk int

	sectSlab arena[Section]
	optSlab  arena[Option]
	ptrSlab  arena[*Option]
	lineSlab arena[ValueLine]
	// lead, indent and ascii describe the current line for rng: where its
	// stripped text starts, in bytes and in characters, and whether that
	// text is ASCII.
	lead, indent int
	ascii        bool

	// multi lists the options that got more than one line, in order.
	multi []*Option
	// tailSect is the section whose Options end the current ptrSlab.
	tailSect *Section
	// tailOpt is the option whose Lines end the current lineSlab, so a
	// continuation line can extend them in place.
	tailOpt *Option
}

func newParser(filename, src string) *parser {
	// Size the first chunk of each arena from cheap counts (upper bounds),
	// so that a typical file needs one allocation for each kind of object.
	crs := strings.Count(src, "\r")
	lines := strings.Count(src, "\n") + crs + 1
	opts := min(lines, strings.Count(src, "=")+strings.Count(src, ":")+1)
	sects := min(lines, strings.Count(src, "[")+1)
	p := &parser{
		src:       src,
		filename:  filename,
		f:         &File{Filename: filename, Sections: make([]*Section, 0, sects)},
		stopChunk: -1,
		hasCR:     crs > 0,
		sectSlab:  newArena[Section](sects),
		optSlab:   newArena[Option](opts),
		ptrSlab:   newArena[*Option](opts),
		lineSlab:  newArena[ValueLine](lines),
	}
	p.f.Defaults = &Section{Name: DefaultSection}
	return p
}

// maxChunk caps the size of an arena chunk, so that an overestimate or
// the last chunk wastes little.
const maxChunk = 1024

// arena hands out elements from chunks of at most maxChunk elements: a
// file needs few allocations however many objects it has. Elements never
// move, so pointers to them stay valid.
type arena[T any] struct {
	buf  []T
	next int // size of the next chunk
}

func newArena[T any](first int) arena[T] {
	return arena[T]{next: min(max(first, 1), maxChunk)}
}

// reserve makes room for one more element after the last keep elements,
// which must stay contiguous with it: a new chunk starts with a copy of
// them. That chunk has room for at least as many elements again, so an
// object that keeps growing at the end of the arena (a value continued
// over many lines, a section with many options) is copied a logarithmic
// number of times, as append would: a chunk of just keep+1 elements would
// be full at once and copy all of them again for the next element.
func (a *arena[T]) reserve(keep int) {
	if len(a.buf) < cap(a.buf) {
		return
	}
	size := max(a.next, 2*keep+1)
	buf := make([]T, keep, size)
	copy(buf, a.buf[len(a.buf)-keep:])
	a.buf = buf
	a.next = min(2*size, maxChunk)
}

// push appends v after the last keep elements and returns the keep+1
// contiguous elements ending with it.
func (a *arena[T]) push(v T, keep int) []T {
	a.reserve(keep)
	a.buf = append(a.buf, v)
	end := len(a.buf)
	return a.buf[end-keep-1 : end : end]
}

// extend adds a zero element after the last keep elements and returns the
// keep+1 contiguous elements ending with it.
func (a *arena[T]) extend(keep int) []T {
	a.reserve(keep)
	a.buf = a.buf[:len(a.buf)+1]
	end := len(a.buf)
	return a.buf[end-keep-1 : end : end]
}

// alloc returns a new zero element.
func (a *arena[T]) alloc() *T {
	a.reserve(0)
	a.buf = a.buf[:len(a.buf)+1]
	return &a.buf[len(a.buf)-1]
}

func (p *parser) newOption() *Option { return p.optSlab.alloc() }

func (p *parser) newSection() *Section { return p.sectSlab.alloc() }

// addOption appends o to the current section. A section's Options live in
// the shared pointer arena while the section is the last one to grow, so
// most sections cost no allocation of their own.
func (p *parser) addOption(o *Option) {
	s := p.cur
	switch n := len(s.Options); {
	case n == 0 || p.tailSect == s:
		s.Options = p.ptrSlab.push(o, n)
		p.tailSect = s
	default:
		s.Options = append(s.Options, o)
		p.tailSect = nil
	}
	s.indexAdd(o)
}

// run is the loop of _read. It returns the errors CPython raises at once
// (missing header, duplicates); unparsable lines collect in p.perr.
func (p *parser) run() error {
	src := p.src
	lineno := 0
	pos := 0
	for pos < len(src) {
		lineno++
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
		if err := p.line(lineno, start, end); err != nil {
			return err
		}
	}
	return nil
}

// line handles one line src[start:end] (without its line break).
func (p *parser) line(lineno, start, end int) error {
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
		// current value (trailing ones are removed when values are joined).
		if p.cur != nil && p.curOpt != nil {
			p.setRange(&p.nextLine().Range, lineno, start, lead, indent, lead, indent)
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
	// Columns of the stripped text count characters; for an ASCII line
	// they follow from byte offsets (see rng).
	p.lead, p.indent, p.ascii = lead, indent, isASCII(src[lead:trail])
	// Full-line comments: line.strip() starts with '#' or ';'. They are
	// skipped everywhere, also between continuation lines, and do not end
	// a value. There are no inline comments.
	if c := src[lead]; c == '#' || c == ';' {
		return nil
	}
	value := src[lead:trail]
	// A line indented deeper than the line that started the current option
	// continues its value, whatever it looks like.
	if p.cur != nil && p.curOpt != nil && indent > p.indentLevel {
		l := p.nextLine()
		l.Text = value
		p.setRange(&l.Range, lineno, start, lead, indent, trail, -1)
		return nil
	}
	p.indentLevel = indent
	// SECTCRE = \[(?P<header>.+)\] matched at the start of the stripped
	// line: the header runs to the LAST ']' on the line and anything after
	// it is ignored; "[]" is not a header.
	if value[0] == '[' {
		if k := strings.LastIndexByte(value, ']'); k >= 2 {
			return p.header(lineno, start, lead, indent, trail, k)
		}
	}
	if p.cur == nil {
		return p.missingHeader(lineno, start, lead, indent, trail)
	}
	// OPTCRE = (?P<option>.*?)\s*(?P<vi>=|:)\s*(?P<value>.*)$: the name is
	// everything before the first '=' or ':' (right-stripped), the value
	// everything after it (stripped).
	d := indexDelim(value)
	if d < 0 {
		p.parsingError(lineno, start, lead, indent, trail, false)
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
	name := src[lead:nameEnd]
	if name == "" {
		// "= value": CPython records a ParsingError for the line but goes
		// on to store the option under the name "" (so a second one in the
		// same section is a DuplicateOptionError), and since "" is falsy
		// nothing continues it.
		p.parsingError(lineno, start, lead, indent, trail, true)
	}
	nameRange := p.rng(lineno, start, lead, indent, nameEnd, -1)
	// strict=True: an option may be set once per section; for DEFAULT this
	// spans every [DEFAULT] section of the file.
	if prev := p.cur.lookup(name); prev != nil {
		return p.duplicateOption(name, nameRange, prev)
	}
	o := p.newOption()
	o.Name = name
	o.NameRange = nameRange
	o.HasValue = true
	l := p.firstLine(o)
	l.Text = src[valStart:trail]
	p.setRange(&l.Range, lineno, start, valStart, -1, trail, -1)
	// A one-line value is final now; join fixes up the others.
	o.Value = l.Text
	p.addOption(o)
	if name == "" {
		p.curOpt = nil
	} else {
		p.curOpt = o
	}
	return nil
}

// header handles a section header line; k is the index of the last ']'
// within the stripped text src[lead:trail].
func (p *parser) header(lineno, start, lead, indent, trail, k int) error {
	name := p.src[lead+1 : lead+k]
	r := p.rng(lineno, start, lead, indent, lead+k+1, -1)
	nr := hcl.Range{Filename: p.filename, Start: hcl.Pos{Line: lineno, Column: r.Start.Column + 1, Byte: lead + 1}}
	nr.End = hcl.Pos{Line: lineno, Column: r.End.Column - 1, Byte: lead + k}
	// So sections cannot start with a continuation line.
	p.curOpt = nil
	if name == DefaultSection {
		// [DEFAULT] may appear any number of times; its options collect in
		// one place (a repeated option is still a duplicate).
		d := p.f.Defaults
		if !d.seen {
			d.Range, d.NameRange, d.seen = r, nr, true
		}
		p.cur = d
		return nil
	}
	if prev := p.section(name); prev != nil {
		return &Error{
			PythonClass: "DuplicateSectionError",
			Summary:     fmt.Sprintf("Section [%s] appears twice", name),
			Detail: fmt.Sprintf("It was already started on line %d. batou rejects a file that repeats a section: merge the options of both into the first one and remove this header.",
				prev.Range.Start.Line),
			Range: r,
			Other: []hcl.Range{prev.Range},
		}
	}
	s := p.newSection()
	s.Name, s.Range, s.NameRange, s.defaults = name, r, nr, p.f.Defaults
	p.f.Sections = append(p.f.Sections, s)
	if p.sectIndex != nil {
		p.sectIndex[name] = s
	} else if len(p.f.Sections) > indexThreshold {
		p.sectIndex = make(map[string]*Section, cap(p.f.Sections))
		for _, s := range p.f.Sections {
			p.sectIndex[s.Name] = s
		}
	}
	p.cur = s
	return nil
}

// section finds a section other than DEFAULT while parsing.
func (p *parser) section(name string) *Section {
	if p.sectIndex != nil {
		return p.sectIndex[name]
	}
	for _, s := range p.f.Sections {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func (p *parser) missingHeader(lineno, start, lead, indent, trail int) error {
	e := &Error{
		PythonClass: "MissingSectionHeaderError",
		Summary:     "Line before the first section header",
		Detail:      "Every option belongs to a section: add a header such as [environment] above this line, or remove the line.",
		Range:       p.rng(lineno, start, lead, indent, trail, -1),
	}
	if start == 0 && strings.HasPrefix(p.src, "\ufeff") {
		e.Summary = "File starts with a UTF-8 byte-order mark"
		e.Detail = "batou's parser reads the byte-order mark as part of the first line and rejects the file: save environment.cfg as UTF-8 without BOM."
	}
	return e
}

func (p *parser) parsingError(lineno, start, lead, indent, trail int, noName bool) {
	r := p.rng(lineno, start, lead, indent, trail, -1)
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

func (p *parser) duplicateOption(name string, nameRange hcl.Range, prev *Option) error {
	return &Error{
		PythonClass: "DuplicateOptionError",
		Summary:     fmt.Sprintf("Option %q is set twice in section [%s]", name, p.cur.Name),
		Detail: fmt.Sprintf("It was already set on line %d. batou rejects a repeated option: keep one of them. Note that only a line indented deeper than the option above continues its value.",
			prev.NameRange.Start.Line),
		Range: nameRange,
		Other: []hcl.Range{prev.NameRange},
	}
}

// firstLine starts o's Lines in the shared line arena and returns the new
// line for the caller to fill in.
func (p *parser) firstLine(o *Option) *ValueLine {
	o.Lines = p.lineSlab.extend(0)
	p.tailOpt = o
	return &o.Lines[0]
}

// nextLine adds a continuation (or blank) line to the current option and
// returns it for the caller to fill in.
func (p *parser) nextLine() *ValueLine {
	o := p.curOpt
	n := len(o.Lines)
	if n == 1 {
		p.multi = append(p.multi, o)
	}
	if p.tailOpt == o {
		o.Lines = p.lineSlab.extend(n)
	} else {
		o.Lines = append(o.Lines, ValueLine{})
	}
	return &o.Lines[n]
}

// join mirrors _join_multiline_values: '\n'.join(lines).rstrip(). Each
// line is already stripped, so rstrip only removes trailing empty lines.
// One-line values were final when they were read.
func (p *parser) join() {
	for _, o := range p.multi {
		n := len(o.Lines)
		for n > 1 && o.Lines[n-1].Text == "" {
			n--
		}
		o.Lines = o.Lines[:n:n]
		if n == 1 {
			o.Value = o.Lines[0].Text
			continue
		}
		size := n - 1
		for _, l := range o.Lines {
			size += len(l.Text)
		}
		var b strings.Builder
		b.Grow(size)
		for i, l := range o.Lines {
			if i > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(l.Text)
		}
		o.Value = b.String()
	}
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

// rng builds the range src[from:to] on line lineno starting at byte start.
// fromCol/toCol are the 0-based code point columns when the caller knows
// them, or -1 to count.
func (p *parser) rng(lineno, start, from, fromCol, to, toCol int) hcl.Range {
	var r hcl.Range
	p.setRange(&r, lineno, start, from, fromCol, to, toCol)
	return r
}

// setRange is rng writing into r, which saves copies in the hot path.
func (p *parser) setRange(r *hcl.Range, lineno, start, from, fromCol, to, toCol int) {
	if fromCol < 0 {
		if p.ascii {
			fromCol = p.indent + from - p.lead
		} else {
			fromCol = runeCount(p.src[start:from])
		}
	}
	if toCol < 0 {
		if p.ascii {
			toCol = fromCol + to - from
		} else {
			toCol = fromCol + runeCount(p.src[from:to])
		}
	}
	r.Filename = p.filename
	r.Start = hcl.Pos{Line: lineno, Column: fromCol + 1, Byte: from}
	r.End = hcl.Pos{Line: lineno, Column: toCol + 1, Byte: to}
}

func runeCount(s string) int { return utf8.RuneCountInString(s) }

// isASCII reports whether s has no byte above 0x7f, eight bytes at a time.
func isASCII(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if s[i]|s[i+1]|s[i+2]|s[i+3]|s[i+4]|s[i+5]|s[i+6]|s[i+7] >= utf8.RuneSelf {
			return false
		}
	}
	for ; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
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
			Filename: p.filename,
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
