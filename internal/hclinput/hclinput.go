// Package hclinput bounds what devhost hands to HCL's parsers: a file's
// size and nesting depth are checked before it is parsed (read it with
// inputfile, which bounds what is read).
//
// HCL's parsers (native syntax and JSON) are recursive descent: each level
// of brackets, braces, parentheses, template interpolation or unary
// operator costs several Go stack frames, and a file of 200,000 nested
// brackets exhausts the stack — a fatal error that no recover() catches, so
// one such registry entry would crash every devhost command. The checks
// here run over the bytes in linear time without recursion and stop at the
// first level past MaxDepth, before the parser ever sees the file.
package hclinput

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
)

// MaxDepth is the deepest nesting accepted. devhost's files nest three or
// four levels; the limit is generous because the count errs on the high
// side (a string counts as a level, and so does each unary operator).
const MaxDepth = 100

// CheckNative returns an error diagnostic when src, in HCL's native syntax,
// is larger than maxSize bytes or nests deeper than MaxDepth; nil when HCL
// may parse it.
//
// It follows the modes of HCL's lexer (code, quoted string, heredoc,
// comment, template sequence) byte by byte, so that a bracket inside a
// string is not counted and one in code always is, and counts: every
// bracket, brace, parenthesis, quoted string, heredoc and template
// sequence opens a level; each unary operator (`!`, `-`) before an operand
// adds one, and so does every open `%{if}`/`%{for}` directive of a
// template. Files that are not UTF-8 are refused. It allocates nothing but the stack of open levels, which it
// never lets grow past MaxDepth.
func CheckNative(filename string, src []byte, maxSize int) hcl.Diagnostics {
	if d := checkSize(filename, src, maxSize); d != nil {
		return d
	}
	// HCL's lexer matches identifiers on bytes and may take an ASCII byte
	// after a broken UTF-8 sequence into one ("\xc6\"" is an identifier),
	// which no byte scanner can follow; HCL refuses such files anyway.
	if !utf8.Valid(src) {
		i := 0
		for i < len(src) {
			r, n := utf8.DecodeRune(src[i:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			i += n
		}
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid UTF-8",
			Detail:   "The file must be UTF-8 text; this byte is not. Re-save the file as UTF-8.",
			Subject:  rangeAt(filename, src, i),
		}}
	}
	_, at, err := nativeDepth(src, MaxDepth)
	switch {
	case err != "":
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Unsupported heredoc marker",
			Detail:   err,
			Subject:  rangeAt(filename, src, at),
		}}
	case at >= 0:
		return tooDeep(rangeAt(filename, src, at))
	}
	return nil
}

// frame is one open level of nativeDepth.
type frame struct {
	kind   byte // 'c' code (the file), '{', '[', '(', 'i' template sequence, '"' string, 'h' heredoc
	level  int  // its nesting level
	open   int  // open %{if}/%{for} directives of a string or heredoc
	marker []byte
	sol    bool // heredoc: at the start of a line
}

// nativeDepth scans src and returns the deepest level it reaches, or, as
// soon as a level exceeds limit, the offset of the byte that opened it
// (at is -1 when none did). err is set (with at) for the one input whose
// lexing it does not model: a heredoc marker with non-ASCII characters,
// which HCL's Unicode identifier rules decide.
func nativeDepth(src []byte, limit int) (deepest, at int, err string) {
	stack := []frame{{kind: 'c'}}
	run := 0 // unary operators since the last operand
	push := func(f frame, i int) bool {
		top := &stack[len(stack)-1]
		f.level = top.level + top.open + run + 1
		run = 0
		deepest = max(deepest, f.level)
		if f.level > limit {
			at = i
			return false
		}
		stack = append(stack, f)
		return true
	}
	// closeBrace closes the innermost brace or template sequence, and the
	// brackets opened inside it, as HCL's lexer matches braces.
	closeBrace := func() {
		for j := len(stack) - 1; j > 0; j-- {
			if k := stack[j].kind; k == '{' || k == 'i' {
				stack = stack[:j]
				if top := &stack[len(stack)-1]; top.kind == 'h' {
					top.sol = false
				}
				return
			}
		}
	}
	// templateStart handles '$' or '%' at i in a string or heredoc and
	// returns the offset of its last byte.
	templateStart := func(i int) (int, bool) {
		if i+1 >= len(src) {
			return i, true
		}
		if src[i+1] == src[i] && i+2 < len(src) && src[i+2] == '{' {
			return i + 2, true // $${ and %%{ are literal
		}
		if src[i+1] != '{' {
			return i, true
		}
		if src[i] == '%' {
			top := &stack[len(stack)-1]
			if directiveEnds(src[i+2:]) {
				top.open = max(top.open-1, 0)
			} else {
				top.open++
			}
		}
		return i + 1, push(frame{kind: 'i'}, i)
	}
	for i := 0; i < len(src); i++ {
		b := src[i]
		top := &stack[len(stack)-1]
		switch top.kind {
		case '"':
			switch b {
			case '"':
				stack = stack[:len(stack)-1]
				run = 0
			case '\\':
				if i+1 < len(src) && src[i+1] != '\n' && src[i+1] != '\r' {
					i++
				}
			case '$', '%':
				var ok bool
				if i, ok = templateStart(i); !ok {
					return deepest, at, ""
				}
			}
			continue
		case 'h':
			if top.sol {
				end := bytes.IndexByte(src[i:], '\n')
				if end >= 0 && bytes.Equal(bytes.TrimSpace(src[i:i+end]), top.marker) {
					stack = stack[:len(stack)-1]
					run = 0
					i += end
					continue
				}
				top.sol = false
			}
			switch b {
			case '\n':
				top.sol = true
			case '$', '%':
				var ok bool
				if i, ok = templateStart(i); !ok {
					return deepest, at, ""
				}
			}
			continue
		}
		// Code: the file, or inside brackets or a template sequence.
		switch b {
		case ' ', '\t', '\r', '\n':
		case '#':
			i = lineEnd(src, i)
		case '/':
			if i+1 < len(src) && src[i+1] == '/' {
				i = lineEnd(src, i)
			} else if i+1 < len(src) && src[i+1] == '*' {
				// An unterminated comment is no comment to HCL's lexer:
				// the rest is lexed as code.
				if end := bytes.Index(src[i+2:], []byte("*/")); end >= 0 {
					i += 2 + end + 1
				} else {
					run = 0
				}
			} else {
				run = 0
			}
		case '!', '-':
			run++
			deepest = max(deepest, top.level+top.open+run)
			if deepest > limit {
				return deepest, i, ""
			}
		case '"':
			if !push(frame{kind: '"'}, i) {
				return deepest, at, ""
			}
		case '{', '[', '(':
			if !push(frame{kind: b}, i) {
				return deepest, at, ""
			}
		case '}':
			closeBrace()
			run = 0
		case ']', ')':
			if b == ']' && top.kind == '[' || b == ')' && top.kind == '(' {
				stack = stack[:len(stack)-1]
			}
			run = 0
		case '<':
			run = 0
			marker, next, nonASCII := heredocStart(src, i)
			if nonASCII {
				return deepest, i, "A heredoc's marker (<<MARKER) must be an ASCII identifier here."
			}
			if marker != nil {
				if !push(frame{kind: 'h', marker: marker, sol: true}, i) {
					return deepest, at, ""
				}
				i = next - 1
			}
		default:
			run = 0
		}
	}
	return deepest, -1, ""
}

// heredocStart recognises HCL's heredoc introducer at i, `<<` or `<<-`, an
// identifier and a line end, and returns the marker and the offset after
// the line end (marker is nil when there is none). An identifier byte
// outside ASCII makes the answer depend on Unicode's identifier tables, so
// it is reported instead.
func heredocStart(src []byte, i int) (marker []byte, next int, nonASCII bool) {
	j := i + 2
	if j > len(src) || src[i+1] != '<' {
		return nil, 0, false
	}
	if j < len(src) && src[j] == '-' {
		j++
	}
	start := j
	for ; j < len(src); j++ {
		c := src[j]
		if c >= 0x80 {
			return nil, 0, true
		}
		if j == start && !identStart(c) || j > start && !identByte(c) {
			break
		}
	}
	if j == start {
		return nil, 0, false
	}
	marker = src[start:j]
	if j < len(src) && src[j] == '\r' {
		j++
	}
	if j >= len(src) || src[j] != '\n' {
		return nil, 0, false
	}
	return marker, j + 1, false
}

// directiveEnds reports whether the template directive after "%{" is
// endif or endfor.
func directiveEnds(rest []byte) bool {
	rest = bytes.TrimPrefix(rest, []byte("~"))
	rest = bytes.TrimLeft(rest, " \t\r\n")
	for _, kw := range []string{"endif", "endfor"} {
		if r, ok := bytes.CutPrefix(rest, []byte(kw)); ok {
			return len(r) == 0 || r[0] < 0x80 && !identByte(r[0])
		}
	}
	return false
}

// identStart and identByte are HCL's identifier rules for ASCII.
func identStart(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }

func identByte(c byte) bool { return identStart(c) || c >= '0' && c <= '9' || c == '-' }

// lineEnd is the offset of the last byte before the line end after i.
func lineEnd(src []byte, i int) int {
	if n := bytes.IndexByte(src[i:], '\n'); n >= 0 {
		return i + n - 1
	}
	return len(src) - 1
}

// rangeAt is the one-byte range at offset i of src.
func rangeAt(filename string, src []byte, i int) *hcl.Range {
	line := 1 + bytes.Count(src[:i], []byte("\n"))
	lineStart := bytes.LastIndexByte(src[:i], '\n') + 1
	pos := hcl.Pos{Line: line, Column: column(src[lineStart:i]), Byte: i}
	return &hcl.Range{Filename: filename, Start: pos, End: hcl.Pos{Line: line, Column: pos.Column + 1, Byte: i + 1}}
}

// CheckJSON is CheckNative for HCL's JSON syntax, whose parser recurses on
// arrays and objects. Strings are skipped as hcl's JSON scanner skips them
// (a backslash escapes the next byte; a control character ends them).
func CheckJSON(filename string, src []byte, maxSize int) hcl.Diagnostics {
	if d := checkSize(filename, src, maxSize); d != nil {
		return d
	}
	depth := 0
	for i := 0; i < len(src); i++ {
		switch src[i] {
		case '"':
			escaping := false
			for i++; i < len(src); i++ {
				c := src[i]
				if c < 0x20 {
					i-- // the outer loop looks at it again
					break
				}
				if c == '"' && !escaping {
					break
				}
				escaping = c == '\\' && !escaping
			}
		case '[', '{':
			depth++
			if depth > MaxDepth {
				return tooDeep(rangeAt(filename, src, i))
			}
		case ']', '}':
			depth = max(depth-1, 0)
		}
	}
	return nil
}

// column is the 1-based column after prefix, counting characters as HCL
// does closely enough for a diagnostic.
func column(prefix []byte) int {
	n := 1
	for _, b := range prefix {
		if b < 0x80 || b >= 0xc0 {
			n++
		}
	}
	return n
}

func checkSize(filename string, src []byte, maxSize int) hcl.Diagnostics {
	if len(src) <= maxSize {
		return nil
	}
	return hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  "File too large",
		Detail:   fmt.Sprintf("%s has %d bytes; devhost reads at most %d. Shorten it.", filename, len(src), maxSize),
		Subject:  &hcl.Range{Filename: filename, Start: hcl.InitialPos, End: hcl.InitialPos},
	}}
}

func tooDeep(r *hcl.Range) hcl.Diagnostics {
	return hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  "Nesting too deep",
		Detail: fmt.Sprintf("Brackets, braces, parentheses, strings and operators nest more than %d levels deep here; "+
			"devhost refuses the file before parsing it (HCL's parser would run out of stack). Flatten the value.", MaxDepth),
		Subject: r,
	}}
}
