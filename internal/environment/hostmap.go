package environment

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf16"

	"github.com/hashicorp/hcl/v2"

	"github.com/flyingcircusio/devhost/internal/atomicfile"
	"github.com/flyingcircusio/devhost/internal/inputfile"
	"github.com/flyingcircusio/devhost/internal/names"
)

// HostMapFile is the name of the file in the environment directory that
// remembers dynamic host names.
const HostMapFile = "hostmap.json"

// HostMap is environments/<env>/hostmap.json: {"<name in environment>":
// "<real name>"}, in the order batou's dict keeps (file order, new names
// appended). Entries for hosts the environment no longer has are kept, as
// batou keeps them.
type HostMap struct {
	// Path is the file on disk ("" for a map that is never saved); Name is
	// the file's name in diagnostics.
	Path, Name string
	// Exists tells whether the file existed when read.
	Exists  bool
	entries []HostMapEntry
	// index maps each key to its entry, so that reading a big file and
	// looking up every host stay linear.
	index map[string]int
}

// HostMapEntry is one entry; the ranges are zero for entries not read from
// the file.
type HostMapEntry struct {
	Key, Value           string
	KeyRange, ValueRange hcl.Range
}

// Entries returns the entries in order.
func (m *HostMap) Entries() []HostMapEntry { return append([]HostMapEntry(nil), m.entries...) }

func (m *HostMap) entry(key string) *HostMapEntry {
	if m == nil {
		return nil
	}
	if i, ok := m.index[key]; ok {
		return &m.entries[i]
	}
	return nil
}

// add appends a new entry.
func (m *HostMap) add(e HostMapEntry) {
	if m.index == nil {
		m.index = map[string]int{}
	}
	m.index[e.Key] = len(m.entries)
	m.entries = append(m.entries, e)
}

// Get returns the real name recorded for a name in the environment.
func (m *HostMap) Get(key string) (string, bool) {
	if e := m.entry(key); e != nil {
		return e.Value, true
	}
	return "", false
}

// Set records a real name, keeping the entry's position if it exists (as a
// Python dict does).
func (m *HostMap) Set(key, value string) {
	if e := m.entry(key); e != nil {
		e.Value = value
		return
	}
	m.add(HostMapEntry{Key: key, Value: value})
}

// Needed reports whether batou keeps the file: only when some name differs
// from its real name.
func (m *HostMap) Needed() bool {
	for _, e := range m.entries {
		if e.Key != e.Value {
			return true
		}
	}
	return false
}

// ReadHostMap reads path, shown as name in diagnostics. A missing file is an
// empty map. Like Python's json.load, a repeated key keeps its first
// position and its last value.
func ReadHostMap(path, name string) (*HostMap, []byte, hcl.Diagnostics) {
	m := &HostMap{Path: path, Name: name}
	src, err := inputfile.Read(path, MaxHostMap)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil, nil
	}
	if err != nil {
		return m, nil, hcl.Diagnostics{{Severity: hcl.DiagError,
			Summary: fmt.Sprintf("cannot read %s", name), Detail: err.Error()}}
	}
	m.Exists = true
	diags := m.parse(src)
	return m, src, diags
}

// parse decodes src, keeping every key's and value's range.
func (m *HostMap) parse(src []byte) hcl.Diagnostics {
	ix := newLineIndex(m.Name, src)
	fail := func(off int, what string) hcl.Diagnostics {
		r := ix.rng(off, off+1)
		return hcl.Diagnostics{{Severity: hcl.DiagError,
			Summary: fmt.Sprintf("%s is not a JSON object of names: %s", filepath.Base(m.Name), what),
			Detail:  `batou writes it as {"<name in environment>": "<real name>"}; fix the file, or delete it to get new names on the next up.`,
			Subject: &r}}
	}
	dec := json.NewDecoder(bytes.NewReader(src))
	// start of the next token: skip whitespace and the delimiters the
	// decoder consumes silently.
	next := func(off int64) int {
		i := int(off)
		for i < len(src) && strings.IndexByte(" \t\r\n,:", src[i]) >= 0 {
			i++
		}
		return i
	}
	tok, err := dec.Token()
	if err != nil {
		return fail(next(0), jsonWhat(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fail(next(0), "it must be an object")
	}
	for dec.More() {
		ka := next(dec.InputOffset())
		kt, err := dec.Token()
		if err != nil {
			return fail(ka, jsonWhat(err))
		}
		key, _ := kt.(string)
		kb := int(dec.InputOffset())
		va := next(dec.InputOffset())
		vt, err := dec.Token()
		if err != nil {
			return fail(va, jsonWhat(err))
		}
		val, ok := vt.(string)
		if !ok {
			return fail(va, fmt.Sprintf("the real name of %q must be a string", key))
		}
		vb := int(dec.InputOffset())
		if e := m.entry(key); e != nil {
			e.Value, e.ValueRange = val, ix.rng(va, vb)
			continue
		}
		m.add(HostMapEntry{Key: key, Value: val, KeyRange: ix.rng(ka, kb), ValueRange: ix.rng(va, vb)})
	}
	if _, err := dec.Token(); err != nil {
		return fail(next(dec.InputOffset()), jsonWhat(err))
	}
	end := next(dec.InputOffset())
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fail(end, "extra data after the object")
	}
	return nil
}

func jsonWhat(err error) string {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "it ends too early"
	}
	return err.Error()
}

// Marshal encodes the map byte for byte as batou's json.dump(mapping, f)
// does: Python's default separators ", " and ": ", ASCII only (\uXXXX
// escapes with lowercase hex, surrogate pairs beyond the BMP), no newline.
func (m *HostMap) Marshal() []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range m.entries {
		if i > 0 {
			b.WriteString(", ")
		}
		pyJSONString(&b, e.Key)
		b.WriteString(": ")
		pyJSONString(&b, e.Value)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// pyJSONString is json.encoder.py_encode_basestring_ascii.
func pyJSONString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			switch {
			case r >= ' ' && r <= '~':
				b.WriteRune(r)
			case r > 0xffff:
				r1, r2 := utf16.EncodeRune(r)
				fmt.Fprintf(b, `\u%04x\u%04x`, r1, r2)
			default:
				fmt.Fprintf(b, `\u%04x`, r)
			}
		}
	}
	b.WriteByte('"')
}

// Save writes the map as batou does at the end of loading an environment:
// the whole map when some name differs from its real name, otherwise the
// file is removed. The write is atomic (temporary file, fsync, rename), so
// a concurrent reader sees the old or the new file, never half of one.
func (m *HostMap) Save() error {
	if m.Path == "" {
		return errors.New("hostmap: no path to save to")
	}
	if !m.Needed() {
		if err := os.Remove(m.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("hostmap %s: %w", m.Path, err)
		}
		m.Exists = false
		return nil
	}
	if err := atomicfile.WriteFile(m.Path, m.Marshal(), 0o644); err != nil {
		return fmt.Errorf("hostmap %s: %w", m.Path, err)
	}
	m.Exists = true
	return nil
}

// AssignNames completes the host map as batou's Host.name does for every
// host, in the environment's order: a static host maps to its own name
// (replacing a stale entry), a dynamic host without entry gets suggest's
// name. It updates the hosts' RealName; call HostMap.Save to persist.
// suggest is called only for provisioned hosts; its names are checked.
func (e *Environment) AssignNames(suggest func(h *Host) (string, error)) error {
	for _, h := range e.Hosts {
		if !h.Dynamic {
			e.HostMap.Set(h.Name, h.Name)
			h.RealName = h.Name
			continue
		}
		if v, ok := e.HostMap.Get(h.Name); ok {
			h.RealName = v
			continue
		}
		if !h.Provisioned() {
			return fmt.Errorf("host %s: dynamic name but no provisioner to assign it", h.Name)
		}
		name, err := suggest(h)
		if err != nil {
			return fmt.Errorf("host %s: %w", h.Name, err)
		}
		if err := names.Container(name); err != nil {
			return fmt.Errorf("host %s: suggested name: %w", h.Name, err)
		}
		e.HostMap.Set(h.Name, name)
		h.RealName = name
	}
	return nil
}

// SuggestName returns a new container name the way batou's container
// provisioner does, the first 11 hex digits of a random UUID, skipping names
// taken reports as used and (unlike batou 2.3/2.4) names of digits only,
// which are not valid container names.
func SuggestName(random io.Reader, taken func(string) bool) (string, error) {
	if random == nil {
		random = rand.Reader
	}
	var buf [6]byte
	for range 1000 {
		if _, err := io.ReadFull(random, buf[:]); err != nil {
			return "", fmt.Errorf("suggest container name: %w", err)
		}
		name := hex.EncodeToString(buf[:])[:names.MaxContainerName]
		if names.Container(name) == nil && (taken == nil || !taken(name)) {
			return name, nil
		}
	}
	return "", errors.New("suggest container name: no free name found")
}
