package lifecycle

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/flyingcircusio/devhost/generator"
	"github.com/flyingcircusio/devhost/internal/atomicfile"
	"github.com/flyingcircusio/devhost/internal/inputfile"
	"github.com/flyingcircusio/devhost/internal/registry"
)

// The live set is kept up to date piece by piece: a rebuild renders only
// the containers whose registry file changed since the set was written
// (known by the file's identity, recorded in the set index), compares
// their files, the index and the status page with the live ones, and
// patches what differs. What a patch replaces is recorded first in the
// set journal; the journal is what makes the change whole: a failed
// rebuild, or the next rebuild after a killed one, patches the previous
// contents back, and readers that need the applied state (is a container
// still declared? is it declared as it is now?) read a journaled file's
// previous content while the journal exists.

// setJournal is a change of the live set in progress (rebuild/journal.json,
// rebuild lock): every file it changes, with its previous content (nil:
// absent; base64 in the JSON, which costs a fraction of escaping the
// status page's HTML), and the containers it rendered anew.
type setJournal struct {
	Files map[string][]byte `json:"files"`
	Names []string          `json:"names"`
	// Prev is Files as an older devhost wrote it (strings), read so that a
	// journal an upgrade finds is undone all the same.
	Prev map[string]*string `json:"prev,omitempty"`
}

// previous returns the journal's files and their previous contents.
func (j *setJournal) previous() map[string][]byte {
	out := make(map[string][]byte, len(j.Files)+len(j.Prev))
	for f, b := range j.Files {
		out[f] = b
	}
	for f, s := range j.Prev {
		if s == nil {
			out[f] = nil
		} else {
			out[f] = []byte(*s)
		}
	}
	return out
}

// setPlan is a change of the live set: what the registry describes now,
// compared with what the set holds.
type setPlan struct {
	// files are the changes: new content, or nil to remove a file.
	files map[string][]byte
	// index is the set index once the change is written; prev the one
	// it was planned against (nil: none).
	index setIndex
	prev  *indexLog
	// snap are the registry bytes of the entries it read (changed ones,
	// and all of them when full).
	snap map[string]string
	// full is true when every entry was rendered.
	full bool
	// cur is the live content of every file in files as planned against
	// (nil: absent); the rebuild lock keeps it so until the write.
	cur map[string][]byte
}

// hostChanged lists the containers whose host-side declaration the plan
// changes (added, changed or removed).
func (p *setPlan) hostChanged() []string {
	var out []string
	for f := range p.files {
		if n, ok := strings.CutPrefix(f, "containers/"); ok {
			out = append(out, strings.TrimSuffix(n, ".nix"))
		}
	}
	slices.Sort(out)
	return out
}

// changesHost reports whether the host's evaluation reads any file the
// plan changes.
func (p *setPlan) changesHost() bool {
	for f := range p.files {
		if generator.IsHostFile(f) {
			return true
		}
	}
	return false
}

// planSet compares the registry (minus containers being created) with the
// live set. It reads and renders only the entries whose file changed since
// the set index was written, unless full (or the index is missing, or was
// written with other templates or host configuration, or default.nix is an
// override that may depend on more than names): then every entry. Call
// under the registry lock.
func (h *Host) planSet(full bool) (*setPlan, error) {
	t := h.Render.Templates
	key, err := generator.RenderKey(h.Cfg, t)
	if err != nil {
		return nil, err
	}
	prev, err := h.readSetIndex()
	if err != nil {
		return nil, err
	}
	var old setIndex
	if prev != nil {
		old = prev.setIndex
	}
	if prev == nil || old.Key != key || !generator.IndexByName(t) {
		full = true
	}
	creating, err := h.creating()
	if err != nil {
		return nil, err
	}
	var marked []string
	if _, err := readJSON(h.paths().marked(), &marked); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(h.Reg.Dir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("registry %s: %w", h.Reg.Dir(), err)
	}
	p := &setPlan{files: map[string][]byte{}, cur: map[string][]byte{}, index: setIndex{Key: key, Entries: make(map[string]indexEntry, len(ents))}, prev: prev, snap: map[string]string{}, full: full}
	ids := map[string]registry.FileID{}
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".hcl") {
			continue
		}
		name := strings.TrimSuffix(n, ".hcl")
		if creating[name] {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("registry: %w", err)
		}
		id := registry.IDOf(fi)
		if ie, ok := old.Entries[name]; ok && !full && ie.ID == id && !slices.Contains(marked, name) {
			p.index.Entries[name] = ie
			continue
		}
		b, err := inputfile.ReadNoFollow(filepath.Join(h.Reg.Dir(), n), registry.MaxEntrySize)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("registry: %w", err)
		}
		p.snap[name], ids[name] = string(b), id
	}
	cs, err := h.decodeEntries(p.snap)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		p.index.Entries[c.Name] = indexEntry{ID: ids[c.Name], Address: c.Address.String(), Status: generator.Status(h.Cfg, c)}
	}
	if err := p.index.checkAddresses(); err != nil {
		return nil, err
	}
	r, err := h.Render.Render(cs)
	if err != nil {
		return nil, err
	}
	if full {
		return p, h.planFull(p, r)
	}
	return p, h.planIncremental(p, &old, r, cs)
}

// planIncremental adds to p the files of the rendered containers cs, of
// the containers gone since old, and the index and status page when they
// changed.
func (h *Host) planIncremental(p *setPlan, old *setIndex, r *Rendered, cs []*registry.Container) error {
	statusChanged := false
	for _, c := range cs {
		for _, f := range []string{generator.HostFile(c.Name), generator.ConfigurationFile(c.Name)} {
			if err := h.planFile(p, f, r.Set.Files[f]); err != nil {
				return err
			}
		}
		prev, ok := old.Entries[c.Name]
		statusChanged = statusChanged || !ok || !prev.Status.Equal(p.index.Entries[c.Name].Status)
	}
	namesChanged := false
	for n := range old.Entries {
		if _, ok := p.index.Entries[n]; !ok {
			namesChanged = true
			p.files[generator.HostFile(n)], p.files[generator.ConfigurationFile(n)] = nil, nil
		}
	}
	for _, c := range cs {
		if _, ok := old.Entries[c.Name]; !ok {
			namesChanged = true
		}
	}
	// The index and the status page are rendered from the set index, so
	// a rebuild after a lost change (the live file differs) repairs them
	// too when their inputs changed.
	if namesChanged {
		b, err := generator.GenerateIndex(h.Cfg, sortedNames(p.index.Entries), h.Render.Templates)
		if err != nil {
			return err
		}
		if err := h.planFile(p, generator.IndexFile, b); err != nil {
			return err
		}
	}
	if namesChanged || statusChanged {
		rows := make([]generator.StatusRow, 0, len(p.index.Entries))
		for _, e := range p.index.Entries {
			rows = append(rows, e.Status)
		}
		b, err := generator.GenerateStatus(h.Cfg, rows, h.Render.Templates)
		if err != nil {
			return err
		}
		return h.planFile(p, generator.StatusFile, b)
	}
	return nil
}

// planFull makes p turn the live set into exactly r's set: every file
// that differs is written, every other file removed.
func (h *Host) planFull(p *setPlan, r *Rendered) error {
	for _, f := range r.Set.Paths() {
		if err := h.planFile(p, f, r.Set.Files[f]); err != nil {
			return err
		}
	}
	dir := h.Cfg.GeneratedDir
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path == dir {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		if rel = filepath.ToSlash(rel); r.Set.Files[rel] == nil {
			p.files[rel] = nil
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("generated set %s: %w", dir, err)
	}
	return nil
}

// planFile adds rel with content b to p's changes unless the live file
// holds b already.
func (h *Host) planFile(p *setPlan, rel string, b []byte) error {
	cur, err := readOptional(h.livePath(rel))
	if err != nil {
		return err
	}
	if cur == nil || !bytes.Equal(cur, b) {
		p.files[rel], p.cur[rel] = b, cur
	}
	return nil
}

func (h *Host) livePath(rel string) string {
	return filepath.Join(h.Cfg.GeneratedDir, filepath.FromSlash(rel))
}

// checkAddresses refuses two containers sharing an address.
func (x *setIndex) checkAddresses() error {
	by := make(map[netip.Addr]string, len(x.Entries))
	for _, n := range sortedNames(x.Entries) {
		a, err := netip.ParseAddr(x.Entries[n].Address)
		if err != nil {
			continue
		}
		a = a.Unmap()
		if other, ok := by[a]; ok {
			return fmt.Errorf("registry: %s is the address of both %q and %q; give one of them an unused address of the pool", a, other, n)
		}
		by[a] = n
	}
	return nil
}

// writeSet journals what p replaces and patches the live set. Call with
// the rebuild lock held.
func (h *Host) writeSet(p *setPlan) error {
	if len(p.files) == 0 {
		return nil
	}
	j := setJournal{Files: make(map[string][]byte, len(p.files))}
	for f := range p.files {
		b, known := p.cur[f]
		if !known {
			var err error
			if b, err = readOptional(h.livePath(f)); err != nil {
				return err
			}
		}
		j.Files[f] = b
	}
	for n := range p.snap {
		j.Names = append(j.Names, n)
	}
	slices.Sort(j.Names)
	if err := writeCompactJSON(h.paths().setJournal(), j, 0o600); err != nil {
		return err
	}
	return generator.Patch(h.Cfg.GeneratedDir, p.files)
}

// commitSet makes the written set the applied one: the index records what
// it was written from, the journal goes. Call with the rebuild lock held.
func (h *Host) commitSet(p *setPlan) error {
	prev := p.prev
	if p.full {
		prev = nil // it read everything: the index is written anew
	}
	if err := h.writeSetIndex(prev, p.index); err != nil {
		return err
	}
	return atomicfile.Remove(h.paths().setJournal())
}

// undoSet patches the live set back to what the journal recorded, and
// invalidates the index entries of the containers it rendered (the next
// rebuild compares them anew). Without a journal it does nothing. Call
// with the rebuild lock held.
func (h *Host) undoSet() error {
	var j setJournal
	ok, err := readJSON(h.paths().setJournal(), &j)
	if err != nil || !ok {
		return err
	}
	files := j.previous()
	for f := range files {
		// An interrupted patch's temporary file.
		tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(h.livePath(f)), "."+filepath.Base(f)+".tmp*"))
		for _, t := range tmps {
			_ = os.Remove(t)
		}
	}
	if err := generator.Patch(h.Cfg.GeneratedDir, files); err != nil {
		return err
	}
	prev, err := h.readSetIndex()
	if err != nil {
		return err
	}
	if prev != nil {
		idx := setIndex{Key: prev.Key, Entries: maps.Clone(prev.Entries)}
		for _, n := range j.Names {
			// Kept, with no identity a file has: read again if the
			// entry exists, its files removed if it does not.
			if e, ok := idx.Entries[n]; ok {
				e.ID = registry.FileID{Size: -1}
				idx.Entries[n] = e
			}
		}
		if err := h.writeSetIndex(prev, idx); err != nil {
			return err
		}
	}
	return atomicfile.Remove(h.paths().setJournal())
}

// appliedFile is the live set's file rel as the host last applied it: the
// journal's previous content while a change of it is in progress (or was
// interrupted), else the file itself (nil: absent).
func (h *Host) appliedFile(rel string) ([]byte, error) {
	var j setJournal
	if ok, err := readJSON(h.paths().setJournal(), &j); err != nil {
		return nil, err
	} else if ok {
		if prev, in := j.previous()[rel]; in {
			return prev, nil
		}
	}
	return readOptional(h.livePath(rel))
}

// declared reports whether the applied set declares container name.
func (h *Host) declared(name string) (bool, error) {
	b, err := h.appliedFile(generator.HostFile(name))
	return b != nil, err
}
