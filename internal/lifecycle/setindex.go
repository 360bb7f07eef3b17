package lifecycle

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"

	"github.com/flyingcircusio/devhost/generator"
	"github.com/flyingcircusio/devhost/internal/atomicfile"
	"github.com/flyingcircusio/devhost/internal/registry"
)

// setIndex is what the live set was written from (rebuild lock): the
// render key and, per container, its registry file's identity, its address
// (to find two entries sharing one without reading them) and its status
// page row. Without it, or under another render key, the next rebuild
// renders the whole registry.
type setIndex struct {
	Key     string
	Entries map[string]indexEntry
}

type indexEntry struct {
	ID      registry.FileID
	Address string
	Status  generator.StatusRow
}

func (e indexEntry) equal(o indexEntry) bool {
	return e.ID == o.ID && e.Address == o.Address && e.Status.Equal(o.Status)
}

// The set index is kept in rebuild/index.log, a log a rebuild appends its
// changes to instead of writing 10,000 rows anew:
//
//	devhost set index 2 <render key>
//	E "<name>" <ino> <size> <mtime> "<address>" "<state>" <protected 0|1> <n> "<url>"…   a container's row
//	D "<name>"                a container gone
//	C                         the end of one change
//
// Only the lines up to the last C count: a change cut short (a killed
// rebuild) is left out, and the next append starts where it began. A
// rebuild that renders everything, or finds the log grown to more than
// twice its rows, writes it anew (temporary file and rename).
const setIndexHeader = "devhost set index 2 "

// indexLog is the set index as read from its log: end is the offset after
// its last C line, size the file's size, lines the rows it holds.
type indexLog struct {
	setIndex
	end, size int64
	lines     int
}

// readSetIndex reads the set index; nil when there is none or it is
// broken (a broken index is only a cache: it is removed, and the next
// rebuild renders everything).
func (h *Host) readSetIndex() (*indexLog, error) {
	b, err := os.ReadFile(h.paths().setIndex())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("read %s: %w", h.paths().setIndex(), err)
	}
	x, ok := parseSetIndex(b)
	if !ok {
		return nil, atomicfile.Remove(h.paths().setIndex())
	}
	return x, nil
}

func parseSetIndex(b []byte) (*indexLog, bool) {
	header, rest, ok := bytes.Cut(b, []byte("\n"))
	key, isIndex := bytes.CutPrefix(header, []byte(setIndexHeader))
	if !ok || !isIndex {
		return nil, false
	}
	x := &indexLog{setIndex: setIndex{Key: string(key), Entries: make(map[string]indexEntry, bytes.Count(rest, []byte("\nE ")))}, size: int64(len(b))}
	x.end = int64(len(header) + 1)
	// The rows of the change being read, applied at its C line.
	type row struct {
		name string
		e    *indexEntry // nil: gone
	}
	var change []row
	pos := x.end
	for len(rest) > 0 {
		line, tail, complete := bytes.Cut(rest, []byte("\n"))
		if !complete {
			break // cut short
		}
		rest = tail
		pos += int64(len(line)) + 1
		x.lines++
		switch {
		case len(line) == 1 && line[0] == 'C':
			for _, r := range change {
				if r.e == nil {
					delete(x.Entries, r.name)
				} else {
					x.Entries[r.name] = *r.e
				}
			}
			change, x.end = change[:0], pos
		case bytes.HasPrefix(line, []byte("E ")):
			name, e, ok := parseIndexRow(line[2:])
			if !ok {
				return nil, false
			}
			change = append(change, row{name, &e})
		case bytes.HasPrefix(line, []byte("D ")):
			f := fields{rest: line[2:]}
			name := f.str()
			if !f.done() {
				return nil, false
			}
			change = append(change, row{name: name})
		default:
			return nil, false
		}
	}
	return x, true
}

func parseIndexRow(line []byte) (string, indexEntry, bool) {
	f := fields{rest: line}
	var e indexEntry
	name := f.str()
	e.ID.Ino = f.uint()
	e.ID.Size = f.int()
	e.ID.MTime = f.int()
	e.Address = f.str()
	e.Status.Name = name
	e.Status.State = f.str()
	e.Status.Protected = f.int() == 1
	n := f.int()
	if n < 0 || n > int64(len(line)) {
		return "", indexEntry{}, false
	}
	if n > 0 {
		e.Status.URLs = make([]string, n)
		for i := range e.Status.URLs {
			e.Status.URLs[i] = f.str()
		}
	}
	return name, e, f.done()
}

// fields reads the space-separated fields of an index line; the first
// malformed one makes done false.
type fields struct {
	rest []byte
	bad  bool
}

func (f *fields) next() []byte {
	if f.bad || len(f.rest) == 0 {
		f.bad = true
		return nil
	}
	tok, rest, _ := bytes.Cut(f.rest, []byte(" "))
	f.rest = rest
	return tok
}

func (f *fields) str() string {
	if f.bad || len(f.rest) == 0 || f.rest[0] != '"' {
		f.bad = true
		return ""
	}
	q, err := strconv.QuotedPrefix(string(f.rest))
	if err != nil {
		f.bad = true
		return ""
	}
	s, err := strconv.Unquote(q)
	if err != nil {
		f.bad = true
		return ""
	}
	f.rest = f.rest[len(q):]
	if len(f.rest) > 0 {
		if f.rest[0] != ' ' {
			f.bad = true
		}
		f.rest = f.rest[1:]
	}
	return s
}

func (f *fields) int() int64 {
	n, err := strconv.ParseInt(string(f.next()), 10, 64)
	if err != nil {
		f.bad = true
	}
	return n
}

func (f *fields) uint() uint64 {
	n, err := strconv.ParseUint(string(f.next()), 10, 64)
	if err != nil {
		f.bad = true
	}
	return n
}

func (f *fields) done() bool { return !f.bad && len(f.rest) == 0 }

func appendIndexRow(b []byte, name string, e indexEntry) []byte {
	b = append(b, "E "...)
	b = strconv.AppendQuote(b, name)
	b = fmt.Appendf(b, " %d %d %d ", e.ID.Ino, e.ID.Size, e.ID.MTime)
	b = strconv.AppendQuote(b, e.Address)
	b = append(b, ' ')
	b = strconv.AppendQuote(b, e.Status.State)
	prot := 0
	if e.Status.Protected {
		prot = 1
	}
	b = fmt.Appendf(b, " %d %d", prot, len(e.Status.URLs))
	for _, u := range e.Status.URLs {
		b = append(b, ' ')
		b = strconv.AppendQuote(b, u)
	}
	return append(b, '\n')
}

// writeSetIndex makes next the set index: appended to prev, the index it
// was planned against, as the rows that differ; or, without prev, under
// another key, or when the log has grown to more than twice its rows,
// written anew. Call with the rebuild lock held.
func (h *Host) writeSetIndex(prev *indexLog, next setIndex) error {
	path := h.paths().setIndex()
	if prev == nil || prev.Key != next.Key || prev.lines > 2*len(next.Entries)+256 {
		b := make([]byte, 0, 96*(len(next.Entries)+2))
		b = append(b, setIndexHeader+next.Key+"\n"...)
		for _, n := range sortedNames(next.Entries) {
			b = appendIndexRow(b, n, next.Entries[n])
		}
		b = append(b, "C\n"...)
		if err := atomicfile.WriteFile(path, b, 0o644); err != nil {
			return err
		}
		// The index of devhost before the log, if any.
		return atomicfile.Remove(h.paths().legacySetIndex())
	}
	var changed, gone []string
	for n, e := range next.Entries {
		if old, ok := prev.Entries[n]; !ok || !old.equal(e) {
			changed = append(changed, n)
		}
	}
	for n := range prev.Entries {
		if _, ok := next.Entries[n]; !ok {
			gone = append(gone, n)
		}
	}
	slices.Sort(changed)
	slices.Sort(gone)
	var b []byte
	for _, n := range changed {
		b = appendIndexRow(b, n, next.Entries[n])
	}
	for _, n := range gone {
		b = strconv.AppendQuote(append(b, "D "...), n)
		b = append(b, '\n')
	}
	if len(b) == 0 {
		return nil
	}
	b = append(b, "C\n"...)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("set index: %w", err)
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != prev.size {
		// Not the log prev was read from: write it anew.
		_ = f.Close()
		return h.writeSetIndex(nil, next)
	}
	err = appendChange(f, prev.end, b)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("set index: %w", cerr)
	}
	return err
}

// appendChange writes the change b at end, the end of the log's last
// whole change (what a change cut short left after it is dropped), and
// syncs it.
func appendChange(f *os.File, end int64, b []byte) error {
	if err := f.Truncate(end); err != nil {
		return fmt.Errorf("set index: %w", err)
	}
	if _, err := f.WriteAt(b, end); err != nil {
		return fmt.Errorf("set index: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("set index: %w", err)
	}
	return nil
}
