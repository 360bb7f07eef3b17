// Package codesync copies a directory from the laptop into a container
// with rsync over the environment's ssh_config, as the environment's
// service user, and watches the directory to copy it again on change:
// `devhost sync`.
//
// What is left out is decided once, here, in two forms that agree: Rules
// answers for the watcher (which changes are worth a sync) and hands rsync
// the same rules as filter arguments. The exclude file is read with
// .gitignore's syntax and meaning (last match wins, "!" re-includes, a
// trailing "/" matches directories only, a "/" elsewhere anchors the
// pattern at the synced directory, "**" spans directories), and translated
// into rsync's first-match-wins rules, so that rsync leaves out exactly what
// git would ignore. A test runs the real rsync to hold the two together.
//
// Nothing here prints; the CLI decides what a person sees.
package codesync

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"path"
	"strings"
)

// Limits of an exclude file: the file is read into argv (one rsync
// --filter argument per pattern), so it stays small.
const (
	maxRulesBytes = 64 << 10
	maxRules      = 1000
	// maxDoubleStars bounds the "**" segments of one pattern: each one
	// that may match no directory doubles the rsync rules it becomes.
	maxDoubleStars = 4
)

// Rules are the patterns of an exclude file, in file order.
type Rules struct {
	rules []rule
}

// rule is one pattern line of the file.
type rule struct {
	segs     []string // the pattern split at "/", each a path.Match pattern
	negate   bool     // "!pattern": re-include
	dirOnly  bool     // "pattern/": directories only
	anchored bool     // contains "/" (not trailing): relative to the root
	line     int
}

// RulesError is a line of an exclude file that cannot be used.
type RulesError struct {
	File string
	Line int
	Msg  string
}

func (e *RulesError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// ParseRules reads an exclude file in .gitignore syntax; name is the file
// as error messages show it. It refuses a file over 64 KiB or 1000
// patterns, and patterns .gitignore itself would not understand.
func ParseRules(name string, r io.Reader) (*Rules, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxRulesBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > maxRulesBytes {
		return nil, &RulesError{File: name, Msg: fmt.Sprintf("more than %d KiB of exclude patterns; keep the file to the patterns the sync needs", maxRulesBytes>>10)}
	}
	rs := &Rules{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxRulesBytes+1)
	n := 0
	for sc.Scan() {
		n++
		r, ok, err := parseLine(strings.TrimSuffix(sc.Text(), "\r"))
		if err != nil {
			return nil, &RulesError{File: name, Line: n, Msg: err.Error()}
		}
		if !ok {
			continue
		}
		r.line = n
		if len(rs.rules) == maxRules {
			return nil, &RulesError{File: name, Line: n, Msg: fmt.Sprintf("more than %d patterns", maxRules)}
		}
		rs.rules = append(rs.rules, r)
	}
	return rs, sc.Err()
}

// parseLine reads one line; ok is false for blank lines and comments.
func parseLine(line string) (rule, bool, error) {
	var r rule
	if strings.IndexByte(line, 0) >= 0 {
		return r, false, fmt.Errorf("NUL byte in pattern")
	}
	line = trimTrailingSpaces(line)
	if line == "" || line[0] == '#' {
		return r, false, nil
	}
	if line[0] == '!' {
		r.negate = true
		line = line[1:]
	}
	if strings.HasSuffix(line, "/") && !strings.HasSuffix(line, `\/`) {
		r.dirOnly = true
		line = strings.TrimRight(line, "/")
	}
	if strings.Contains(line, "/") {
		r.anchored = true
		line = strings.TrimPrefix(line, "/")
	}
	if line == "" {
		return r, false, nil // "/" or "!": git matches nothing with it
	}
	if strings.HasPrefix(line, " ") || strings.HasPrefix(line, `\ `) || strings.HasSuffix(line, " ") {
		return r, false, fmt.Errorf("pattern %q starts or ends with a space; rename the file or use ? for the space", line)
	}
	stars := 0
	for _, s := range strings.Split(line, "/") {
		if s == "" {
			continue // "a//b" is "a/b"
		}
		if s == "**" {
			stars++
		} else {
			s = normalizeSeg(s)
			if _, err := path.Match(s, ""); err != nil {
				return r, false, fmt.Errorf("pattern %q: malformed (an unclosed [ or a trailing \\?)", line)
			}
		}
		r.segs = append(r.segs, s)
	}
	if stars > maxDoubleStars {
		return r, false, fmt.Errorf("pattern %q has more than %d ** parts", line, maxDoubleStars)
	}
	return r, true, nil
}

// trimTrailingSpaces removes unescaped trailing spaces, as git does.
func trimTrailingSpaces(s string) string {
	for strings.HasSuffix(s, " ") && !strings.HasSuffix(s, `\ `) {
		s = s[:len(s)-1]
	}
	return s
}

// normalizeSeg turns runs of unescaped "*" inside a segment into one "*"
// (in .gitignore "a**b" is "a*b", while rsync would let "**" cross "/"),
// and git's class negation "[!" into "[^", which both path.Match and
// rsync read.
func normalizeSeg(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			b.WriteByte(c)
			b.WriteByte(s[i+1])
			i++
		case c == '*' && i+1 < len(s) && s[i+1] == '*':
			// the last star of the run is written
		case c == '[' && i+1 < len(s) && s[i+1] == '!':
			b.WriteString("[^")
			i++
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Excluded reports whether the path rel (slash-separated, relative to the
// synced directory) is left out of the sync: a .git component, a pattern
// that matches rel or one of its parent directories (a file in an excluded
// directory cannot be re-included, as in git).
func (rs *Rules) Excluded(rel string, dir bool) bool {
	rel = strings.Trim(path.Clean("/"+rel), "/")
	if rel == "" {
		return false
	}
	parts := strings.Split(rel, "/")
	for i := range parts {
		isDir := dir || i < len(parts)-1
		if parts[i] == ".git" || rs.matches(parts[:i+1], isDir) {
			return true
		}
	}
	return false
}

// matches applies the rules to one path, the last matching one deciding.
func (rs *Rules) matches(parts []string, dir bool) bool {
	if rs == nil {
		return false
	}
	for i := len(rs.rules) - 1; i >= 0; i-- {
		r := rs.rules[i]
		if r.dirOnly && !dir {
			continue
		}
		var ok bool
		if r.anchored {
			ok = matchSegs(r.segs, parts)
		} else {
			ok = matchSegs(r.segs, parts[len(parts)-1:])
		}
		if ok {
			return !r.negate
		}
	}
	return false
}

// matchSegs matches pattern segments against path segments; "**" matches
// any number of them, including none.
func matchSegs(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			if len(pat) == 1 {
				// A trailing "**" matches everything inside, not the
				// directory itself.
				return len(name) > 0
			}
			for i := 0; i <= len(name); i++ {
				if matchSegs(pat[1:], name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}

// RsyncFilters returns the rules as rsync --filter values that leave out
// exactly what Excluded does: .git first, then the patterns in reverse
// order (rsync's first match wins, git's last). A "**" that may match no
// directory becomes two rsync rules, with and without it, since rsync's
// "/**/" needs at least one.
func (rs *Rules) RsyncFilters() []string {
	out := []string{"- .git"}
	if rs == nil {
		return out
	}
	for i := len(rs.rules) - 1; i >= 0; i-- {
		r := rs.rules[i]
		sign := "- "
		if r.negate {
			sign = "+ "
		}
		suffix := ""
		if r.dirOnly {
			suffix = "/"
		}
		for _, v := range variants(r.segs) {
			p := rsyncPattern(v)
			if r.anchored {
				p = "/" + p
			}
			out = append(out, sign+p+suffix)
		}
	}
	return out
}

// variants expands every "**" segment but a trailing one into "matches
// one or more directories" (kept) and "matches none" (dropped).
func variants(segs []string) [][]string {
	out := [][]string{nil}
	for i, s := range segs {
		var next [][]string
		for _, v := range out {
			next = append(next, append(append([]string(nil), v...), s))
			if s == "**" && i < len(segs)-1 {
				next = append(next, append([]string(nil), v...))
			}
		}
		out = next
	}
	return out
}

// rsyncPattern joins segments into one rsync pattern. rsync reads a
// backslash as an escape only in a pattern with a wildcard in it, so a
// pattern without one (escaped or not) is written with its escapes
// resolved.
func rsyncPattern(segs []string) string {
	p := strings.Join(segs, "/")
	wild := false
	var lit strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '\\' && i+1 < len(p) {
			i++
			c = p[i]
		}
		if strings.IndexByte("*?[", c) >= 0 {
			wild = true
		}
		lit.WriteByte(c)
	}
	if !wild {
		return lit.String()
	}
	return p
}
