package registry

import (
	"net/netip"
	"path/filepath"
	"strings"
	"time"
)

// decodeFast reads the common shape of a registry entry — one
// `key = literal` per line, literals being strings without templates,
// booleans, one-line lists of strings and one-line maps of strings, plus #
// and // comments — about ten times faster than hclsyntax, which matters
// for LoadAll over thousands of entries. It accepts only entries that are
// valid in every respect and reports ok=false for anything else (including
// any syntax it does not know), so that Decode falls back to the full HCL
// parser, which alone produces diagnostics. FuzzDecodeFast checks that
// whenever it accepts, it agrees with the full parser.
func decodeFast(filename string, src []byte) (*Container, bool) {
	vals := make(map[string]fastValue, len(attrOrder))
	p := fastParser{src: src}
	for !p.eof() {
		p.spaces()
		if p.eol() {
			continue
		}
		if p.comment() {
			if !p.eol() {
				return nil, false
			}
			continue
		}
		key := p.ident()
		if key == "" || !isAttr(key) {
			return nil, false
		}
		if _, dup := vals[key]; dup {
			return nil, false
		}
		p.spaces()
		if !p.byte('=') {
			return nil, false
		}
		p.spaces()
		v, ok := p.value()
		if !ok {
			return nil, false
		}
		vals[key] = v
		p.spaces()
		p.comment()
		if !p.eol() {
			return nil, false
		}
	}

	c := &Container{}
	for name := range required {
		if _, ok := vals[name]; !ok {
			return nil, false
		}
	}
	str := func(name string, dst *string) bool {
		v, ok := vals[name]
		if !ok {
			return true
		}
		if v.kind != fastString {
			return false
		}
		*dst = v.s
		return true
	}
	list := func(name string, dst *[]string) bool {
		v, ok := vals[name]
		if !ok {
			return true
		}
		if v.kind != fastList {
			return false
		}
		*dst = v.list
		return true
	}
	num := func(name string, dst *int) bool {
		v, ok := vals[name]
		if !ok {
			return true
		}
		if v.kind != fastNumber {
			return false
		}
		*dst = v.n
		return true
	}
	var address, address6, state, created, deployed, expires string
	if !str("name", &c.Name) || !str("owner", &c.Owner) || !str("environment", &c.Environment) ||
		!str("root", &c.Root) || !str("service_user", &c.ServiceUser) || !str("channel", &c.Channel) ||
		!str("state_version", &c.StateVersion) ||
		!str("address", &address) || !str("address6", &address6) || !str("state", &state) || !str("created", &created) ||
		!str("deployed", &deployed) || !str("last_error", &c.LastError) ||
		!list("aliases", &c.Aliases) || !list("ssh_keys", &c.SSHKeys) ||
		!list("shared_with", &c.SharedWith) || !list("shared_keys", &c.SharedKeys) ||
		!str("memory_max", &c.Limits.MemoryMax) || !str("cpu_quota", &c.Limits.CPUQuota) ||
		!num("cpu_weight", &c.Limits.CPUWeight) || !num("tasks_max", &c.Limits.TasksMax) ||
		!str("expires_at", &expires) || !str("protect_user", &c.ProtectUser) {
		return nil, false
	}
	if v, ok := vals["keep"]; ok {
		if v.kind != fastBool {
			return nil, false
		}
		c.Keep = v.b
	}
	if v, ok := vals["labels"]; ok {
		if v.kind != fastMap {
			return nil, false
		}
		c.Labels = v.m
	}
	var err error
	if c.Address, err = netip.ParseAddr(address); err != nil {
		return nil, false
	}
	if address6 != "" {
		if c.Address6, err = netip.ParseAddr(address6); err != nil {
			return nil, false
		}
	}
	c.State = State(state)
	if c.Created, err = time.Parse(time.RFC3339, created); err != nil {
		return nil, false
	}
	if deployed != "" {
		if c.Deployed, err = time.Parse(time.RFC3339, deployed); err != nil {
			return nil, false
		}
	}
	if expires != "" {
		if c.ExpiresAt, err = time.Parse(time.RFC3339, expires); err != nil {
			return nil, false
		}
	}
	if strings.TrimSuffix(filepath.Base(filename), ".hcl") != c.Name {
		return nil, false
	}
	if len(c.check(noRange)) > 0 {
		return nil, false
	}
	c.normalize()
	return c, true
}

func isAttr(key string) bool {
	for _, n := range attrOrder {
		if n == key {
			return true
		}
	}
	return false
}

type fastKind int

const (
	fastString fastKind = iota + 1
	fastBool
	fastList
	fastMap
	fastNumber
)

type fastValue struct {
	kind fastKind
	s    string
	b    bool
	list []string
	m    map[string]string
	n    int
}

// fastParser is a cursor over the entry's bytes. Every method either
// consumes what it recognises or nothing.
type fastParser struct {
	src []byte
	pos int
}

func (p *fastParser) eof() bool { return p.pos >= len(p.src) }

func (p *fastParser) spaces() {
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t') {
		p.pos++
	}
}

// eol consumes a line end (or accepts the end of the file).
func (p *fastParser) eol() bool {
	if p.eof() {
		return true
	}
	if p.src[p.pos] == '\n' {
		p.pos++
		return true
	}
	return false
}

func (p *fastParser) byte(b byte) bool {
	if p.pos < len(p.src) && p.src[p.pos] == b {
		p.pos++
		return true
	}
	return false
}

// comment consumes a # or // comment up to (not including) the line end.
// Comments with anything but printable ASCII are left to the full parser.
func (p *fastParser) comment() bool {
	rest := p.src[p.pos:]
	isComment := len(rest) > 0 && rest[0] == '#' || len(rest) > 1 && rest[0] == '/' && rest[1] == '/'
	if !isComment {
		return false
	}
	end := p.pos
	for end < len(p.src) && p.src[end] != '\n' {
		if c := p.src[end]; c >= 0x7f || c < 0x20 && c != '\t' {
			return false
		}
		end++
	}
	p.pos = end
	return true
}

// ident reads an ASCII HCL identifier.
func (p *fastParser) ident() string {
	start := p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' ||
			p.pos > start && (c >= '0' && c <= '9' || c == '-') {
			p.pos++
			continue
		}
		break
	}
	return string(p.src[start:p.pos])
}

// str reads a quoted string with only the escapes \" \\ \n \t \r, no
// template sequences and only printable ASCII.
func (p *fastParser) str() (string, bool) {
	if !p.byte('"') {
		return "", false
	}
	var b strings.Builder
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == '"':
			p.pos++
			return b.String(), true
		case c == '\\':
			if p.pos+1 >= len(p.src) {
				return "", false
			}
			switch p.src[p.pos+1] {
			case '"', '\\':
				b.WriteByte(p.src[p.pos+1])
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			default:
				return "", false
			}
			p.pos += 2
			continue
		case (c == '$' || c == '%') && p.pos+1 < len(p.src) && (p.src[p.pos+1] == '{' || p.src[p.pos+1] == c):
			return "", false // template sequence or its escape: full parser
		case c < 0x20 || c >= 0x7f:
			return "", false
		}
		b.WriteByte(c)
		p.pos++
	}
	return "", false
}

func (p *fastParser) value() (fastValue, bool) {
	if p.eof() {
		return fastValue{}, false
	}
	switch p.src[p.pos] {
	case '"':
		s, ok := p.str()
		return fastValue{kind: fastString, s: s}, ok
	case '[':
		p.pos++
		v := fastValue{kind: fastList}
		for {
			p.spaces()
			if p.byte(']') {
				return v, true
			}
			s, ok := p.str()
			if !ok {
				return v, false
			}
			v.list = append(v.list, s)
			p.spaces()
			if !p.byte(',') {
				p.spaces()
				return v, p.byte(']')
			}
		}
	case '{':
		p.pos++
		v := fastValue{kind: fastMap, m: map[string]string{}}
		for {
			p.spaces()
			if p.byte('}') {
				return v, true
			}
			var key string
			if p.pos < len(p.src) && p.src[p.pos] == '"' {
				k, ok := p.str()
				if !ok {
					return v, false
				}
				key = k
			} else {
				key = p.ident()
				if key == "" || key == "true" || key == "false" || key == "null" {
					return v, false
				}
			}
			if _, dup := v.m[key]; dup {
				return v, false
			}
			p.spaces()
			if !p.byte('=') {
				return v, false
			}
			p.spaces()
			s, ok := p.str()
			if !ok {
				return v, false
			}
			v.m[key] = s
			p.spaces()
			if !p.byte(',') {
				p.spaces()
				return v, p.byte('}')
			}
		}
	case '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		// A whole number of at most 9 digits without a leading zero;
		// anything else (fractions, exponents, 012) is the full parser's.
		start := p.pos
		for p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
			p.pos++
		}
		d := p.src[start:p.pos]
		if len(d) > 9 || len(d) > 1 && d[0] == '0' {
			return fastValue{}, false
		}
		n := 0
		for _, b := range d {
			n = n*10 + int(b-'0')
		}
		return fastValue{kind: fastNumber, n: n}, true
	default:
		w := p.ident()
		switch w {
		case "true":
			return fastValue{kind: fastBool, b: true}, true
		case "false":
			return fastValue{kind: fastBool, b: false}, true
		}
		return fastValue{}, false
	}
}
