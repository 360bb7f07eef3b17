// Package nixlit turns Go values into Nix source literals. It is the one
// place where devhost escapes text for Nix: every value a template writes
// into a generated Nix file goes through String, AttrName or Path.
//
// Nix strings are byte strings: any byte except NUL can be held, including
// invalid UTF-8. NUL cannot (the Nix lexer stops at it), so every function
// here returns an error instead of ever emitting one.
package nixlit

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// ErrNUL is returned for input containing a NUL byte, which no Nix string
// can hold.
var ErrNUL = errors.New("contains a NUL byte, which a Nix string cannot hold")

// keywords are the Nix words that cannot be bare attribute names (or, for
// "or", only in some positions, so it is quoted too).
var keywords = map[string]bool{
	"if": true, "then": true, "else": true, "assert": true, "with": true,
	"let": true, "in": true, "rec": true, "inherit": true, "or": true,
}

// String returns s as a double-quoted Nix string literal that evaluates to
// exactly the bytes of s. It escapes `\`, `"` and the interpolation opener
// `${`, and writes newline, carriage return and tab as \n, \r, \t (a raw CR
// would be normalised to LF by the Nix lexer). Other bytes are copied.
func String(s string) (string, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return "", fmt.Errorf("nix string %.40q…: %w", s, ErrNUL)
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '$':
			if i+1 < len(s) && s[i+1] == '{' {
				b.WriteString(`\$`)
			} else {
				b.WriteByte('$')
			}
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String(), nil
}

// IsIdentifier reports whether s can be written as a bare Nix attribute
// name: [A-Za-z_][A-Za-z0-9_'-]* and not a keyword.
func IsIdentifier(s string) bool {
	if s == "" || keywords[s] {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case i > 0 && (c >= '0' && c <= '9' || c == '\'' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// AttrName returns s as an attribute name: bare when it is a valid Nix
// identifier and not a keyword, else a quoted string literal (which Nix
// accepts in attribute position).
func AttrName(s string) (string, error) {
	if IsIdentifier(s) {
		return s, nil
	}
	return String(s)
}

// Path returns the absolute path p as a Nix STRING literal, never a Nix
// path literal: a path value would be copied into the Nix store when it is
// interpolated or coerced, and path syntax cannot hold every character a
// file name may contain. p must be absolute and clean (no "." or ".."
// components, no trailing slash), so what is written is what is meant.
func Path(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("nix path %q: not absolute", p)
	}
	if path.Clean(p) != p {
		return "", fmt.Errorf("nix path %q: not clean (want %q)", p, path.Clean(p))
	}
	return String(p)
}

// Bool returns the Nix literal true or false.
func Bool(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// StringList returns a one-line Nix list of string literals, `[ "a" "b" ]`,
// or `[ ]` for an empty list.
func StringList(ss []string) (string, error) {
	var b strings.Builder
	b.WriteString("[ ")
	for _, s := range ss {
		lit, err := String(s)
		if err != nil {
			return "", err
		}
		b.WriteString(lit)
		b.WriteByte(' ')
	}
	b.WriteByte(']')
	return b.String(), nil
}

// RelPath returns the slash-separated relative path p as a Nix path
// literal, ./p, resolved by Nix against the directory of the file it
// appears in. It is meant for `import ./containers/shop.nix` between files
// of one generated set (importing a path copies nothing to the store).
// Every component must be made of the characters of Nix path syntax
// ([A-Za-z0-9._+-]) and must not be "." or "..".
func RelPath(p string) (string, error) {
	if p == "" {
		return "", errors.New("nix relative path: empty")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("nix relative path %q: empty, . or .. component", p)
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !pathChar(c) {
				return "", fmt.Errorf("nix relative path %q: character %q cannot appear in a Nix path literal", p, c)
			}
		}
	}
	return "./" + p, nil
}

// pathChar reports whether c may appear in a Nix path literal.
func pathChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return c == '.' || c == '_' || c == '+' || c == '-'
}
