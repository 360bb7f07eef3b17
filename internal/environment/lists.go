package environment

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
)

// span is a half-open byte range [a, b) into an option's value.
type span struct{ a, b int }

// pyIsSpace is Python's str.isspace for one character: Unicode White_Space
// plus the ASCII separators \x1c-\x1f, which Go's unicode.IsSpace omits.
// batou splits and strips with Python's defaults, so devhost must agree on
// what counts as whitespace.
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || r >= 0x1c && r <= 0x1f
}

// pyStrip narrows sp to s[sp.a:sp.b] without leading and trailing Python
// whitespace, like str.strip().
func pyStrip(s string, sp span) span {
	for sp.a < sp.b {
		r, n := utf8.DecodeRuneInString(s[sp.a:sp.b])
		if !pyIsSpace(r) {
			break
		}
		sp.a += n
	}
	for sp.b > sp.a {
		r, n := utf8.DecodeLastRuneInString(s[sp.a:sp.b])
		if !pyIsSpace(r) {
			break
		}
		sp.b -= n
	}
	return sp
}

// pyFields splits s on runs of Python whitespace, like str.split() without
// arguments, returning the spans of the words.
func pyFields(s string) []span {
	var out []span
	start := -1
	for i, r := range s {
		if pyIsSpace(r) {
			if start >= 0 {
				out = append(out, span{start, i})
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		out = append(out, span{start, len(s)})
	}
	return out
}

// asList splits a list value exactly as batou's ConfigSection.as_list: on
// commas if the value has one (each item stripped, empty items kept), else
// on newlines (items stripped, empty ones dropped), else the whole value as
// one item.
func asList(s string) []span {
	switch {
	case strings.Contains(s, ","):
		var out []span
		a := 0
		for {
			i := strings.IndexByte(s[a:], ',')
			if i < 0 {
				out = append(out, pyStrip(s, span{a, len(s)}))
				return out
			}
			out = append(out, pyStrip(s, span{a, a + i}))
			a += i + 1
		}
	case strings.Contains(s, "\n"):
		var out []span
		a := 0
		for a <= len(s) {
			i := strings.IndexByte(s[a:], '\n')
			end := len(s)
			if i >= 0 {
				end = a + i
			}
			if sp := pyStrip(s, span{a, end}); sp.a < sp.b {
				out = append(out, sp)
			}
			if i < 0 {
				break
			}
			a = end + 1
		}
		return out
	default:
		return []span{{0, len(s)}}
	}
}

// Component is one entry of a host's component list, "[!]name[:feature]".
// batou merges repeated entries of one component: features accumulate and
// one "!" ignores the component.
type Component struct {
	Name     string
	Features []string
	// Ignore is set by a leading "!": batou configures the component but
	// does not deploy it.
	Ignore bool
	// Range is the first entry naming this component.
	Range hcl.Range
}

// String gives the entries back in batou's syntax, e.g. "!shop:debug".
func (c Component) String() string {
	p := ""
	if c.Ignore {
		p = "!"
	}
	if len(c.Features) == 0 {
		return p + c.Name
	}
	parts := make([]string, len(c.Features))
	for i, f := range c.Features {
		parts[i] = p + c.Name + ":" + f
	}
	return strings.Join(parts, ", ")
}

// componentEntry is one parsed list item before merging.
type componentEntry struct {
	name, feature string
	ignore        bool
}

// parseComponent parses one list item as batou's parse_host_components:
// strip, split off ":feature" at the first colon, then strip every leading
// "!" (each one meaning "ignore").
func parseComponent(item string) componentEntry {
	item = pyStripString(item)
	var e componentEntry
	if i := strings.IndexByte(item, ':'); i >= 0 {
		item, e.feature = item[:i], item[i+1:]
	}
	e.ignore = strings.HasPrefix(item, "!")
	e.name = strings.TrimLeft(item, "!")
	return e
}

func pyStripString(s string) string {
	sp := pyStrip(s, span{0, len(s)})
	return s[sp.a:sp.b]
}
