package registry

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/rogpeppe/go-internal/lockedfile"

	"github.com/flyingcircusio/devhost/internal/atomicfile"
	"github.com/flyingcircusio/devhost/internal/diag"
	"github.com/flyingcircusio/devhost/internal/inputfile"
	"github.com/flyingcircusio/devhost/internal/names"
)

// ErrNotFound is returned (wrapped) by Get and Delete for a container that
// is not registered.
var ErrNotFound = errors.New("container not registered")

// Registry is the directory of registry entries, <stateDir>/containers.
// Reads need no lock (every write is an atomic rename); a read-modify-write
// sequence and Allocate must run under Lock.
type Registry struct {
	stateDir string
}

// Open returns the registry kept under stateDir. Nothing is touched until
// it is used; a missing directory is an empty registry.
func Open(stateDir string) *Registry {
	return &Registry{stateDir: stateDir}
}

// Dir is the directory holding one <name>.hcl file per container.
func (r *Registry) Dir() string { return filepath.Join(r.stateDir, "containers") }

// Path is the file of container name.
func (r *Registry) Path(name string) string { return filepath.Join(r.Dir(), name+".hcl") }

// Entries hold owners, deployment roots and last errors (which may quote
// what a failed command printed), so they are private: readable by root and
// by the directory's group (the NixOS module makes that the admin group and
// sets the directory's setgid bit, so new entries get that group), by
// nobody else. The directory itself is 0750: its listing holds only
// container names, which are public anyway (the status page shows them),
// but without search permission for others, an entry an older devhost
// wrote 0644 is unreadable too until its next write tightens it.
const (
	EntryPerm os.FileMode = 0o640
	DirPerm   os.FileMode = 0o750
)

// WriteEntry atomically replaces name's entry with src, mode EntryPerm,
// and restricts the registry directory to DirPerm (creating it when
// missing). Put writes through it; so do those that put an entry's earlier
// bytes back (rollbacks), since those bytes are as private as the entry.
// Call it under Lock, as Put.
func (r *Registry) WriteEntry(name string, src []byte) error {
	if err := names.Container(name); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	c, diags := Decode(r.Path(name), src)
	if diags.HasErrors() {
		c = nil // the address cache reads it again
	}
	return r.writeEntry(name, src, c)
}

// writeEntry is WriteEntry of src, the encoding of c (nil: src does not
// decode), keeping the address cache up to date.
func (r *Registry) writeEntry(name string, src []byte, c *Container) error {
	if err := atomicfile.PrivateDir(r.Dir(), DirPerm); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	before, ok := r.dirID()
	if err := atomicfile.WriteFile(r.Path(name), src, EntryPerm); err != nil {
		return err
	}
	if ok {
		r.noteWrite(name, c, false, before)
	}
	return nil
}

// looser reports whether path exists with permissions beyond EntryPerm.
func looser(path string) bool {
	fi, err := os.Lstat(path)
	return err == nil && fi.Mode().Perm()&^EntryPerm != 0
}

// Lock takes the registry's exclusive lock (flock on
// <stateDir>/registry.lock), waiting until it is free or ctx ends. It
// serialises all mutations between processes; call unlock when done.
func (r *Registry) Lock(ctx context.Context) (unlock func(), err error) {
	if err := os.MkdirAll(r.stateDir, 0o755); err != nil {
		return nil, fmt.Errorf("registry lock: %w", err)
	}
	mu := lockedfile.MutexAt(filepath.Join(r.stateDir, "registry.lock"))
	type result struct {
		unlock func()
		err    error
	}
	ch := make(chan result, 1)
	go func() {
		u, err := mu.Lock()
		ch <- result{u, err}
	}()
	select {
	case res := <-ch:
		if res.err != nil {
			return nil, fmt.Errorf("registry lock: %w", res.err)
		}
		return res.unlock, nil
	case <-ctx.Done():
		// flock cannot be interrupted: release the lock as soon as the
		// waiting goroutine gets it.
		go func() {
			if res := <-ch; res.err == nil {
				res.unlock()
			}
		}()
		return nil, fmt.Errorf("registry lock %s: %w", filepath.Join(r.stateDir, "registry.lock"), ctx.Err())
	}
}

// entryFiles lists the container files, sorted by name. Hidden files
// (temporary files of writes in progress) and other extensions are ignored.
func (r *Registry) entryFiles() ([]string, error) {
	ents, err := os.ReadDir(r.Dir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", r.Dir(), err)
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".hcl") || e.IsDir() {
			continue
		}
		out = append(out, n)
	}
	return out, nil
}

// Names lists the containers' names, sorted, from the entries' file names
// without reading them (for shell completion); names that could not be a
// container's are left out.
func (r *Registry) Names() ([]string, error) {
	files, err := r.entryFiles()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(files))
	for _, f := range files {
		n := strings.TrimSuffix(f, ".hcl")
		if names.Container(n) == nil {
			out = append(out, n)
		}
	}
	return out, nil
}

// LoadAll reads every entry, sorted by name. When any entry is invalid the
// error is a *diag.Error listing every problem of every entry (including
// two containers sharing an address) with its position; the valid entries
// are still returned, for callers that can carry on without the broken ones.
func (r *Registry) LoadAll() ([]*Container, error) {
	files, err := r.entryFiles()
	if err != nil {
		return nil, err
	}
	type result struct {
		c     *Container
		diags hcl.Diagnostics
		src   []byte
		err   error
	}
	results := make([]result, len(files))
	workers := min(runtime.GOMAXPROCS(0), len(files))
	var wg sync.WaitGroup
	next := make(chan int, len(files))
	for i := range files {
		next <- i
	}
	close(next)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				path := filepath.Join(r.Dir(), files[i])
				src, err := readEntry(path)
				switch {
				case errors.Is(err, fs.ErrNotExist): // deleted meanwhile: skip
					continue
				case errors.As(err, new(*inputfile.NotRegularError)) || errors.As(err, new(*inputfile.TooLargeError)):
					// One bad file is reported like an invalid entry:
					// the others are still returned.
					results[i].diags = unreadable(path, err)
					continue
				case err != nil:
					results[i].err = fmt.Errorf("registry %s: %w", path, err)
					continue
				}
				c, diags := Decode(path, src)
				results[i] = result{c: c, diags: diags}
				if diags.HasErrors() {
					results[i].src = src
				}
			}
		}()
	}
	wg.Wait()

	var (
		out    = make([]*Container, 0, len(files))
		diags  hcl.Diagnostics
		srcs   = map[string][]byte{}
		byAddr = make(map[[16]byte]*Container, len(files))
	)
	for i, res := range results {
		if res.err != nil {
			return nil, res.err
		}
		path := filepath.Join(r.Dir(), files[i])
		if res.src != nil {
			srcs[path] = res.src
		}
		diags = append(diags, res.diags...)
		if res.c == nil {
			continue
		}
		// One map for both families: a valid address6 is never an
		// IPv4-mapped address, so the keys cannot collide across families.
		clash := false
		for _, at := range []struct {
			attr string
			addr netip.Addr
		}{{"address", res.c.Address}, {"address6", res.c.Address6}} {
			if !at.addr.IsValid() {
				continue
			}
			other := byAddr[at.addr.Unmap().As16()]
			if other == nil {
				continue
			}
			src, _ := readEntry(path)
			srcs[path] = src
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Address used twice",
				Detail: fmt.Sprintf("%s is also an address of %q (%s); two containers never share one. Give one of them an unused address of the pool.",
					at.addr, other.Name, r.Path(other.Name)),
				Subject: addressRange(path, src, at.attr),
			})
			clash = true
		}
		if clash {
			continue
		}
		byAddr[res.c.Address.Unmap().As16()] = res.c
		if res.c.Address6.IsValid() {
			byAddr[res.c.Address6.As16()] = res.c
		}
		out = append(out, res.c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, diag.NewError(diags, srcs)
}

// readEntry reads a registry file: a regular file (never a symbolic link,
// never a FIFO that would block the command) of at most MaxEntrySize bytes.
func readEntry(path string) ([]byte, error) {
	return inputfile.ReadNoFollow(path, MaxEntrySize)
}

// unreadable is the diagnostic for an entry file readEntry refuses.
func unreadable(path string, err error) hcl.Diagnostics {
	return hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  "Registry entry cannot be read",
		Detail:   err.Error() + ".",
		Subject:  &hcl.Range{Filename: path, Start: hcl.InitialPos, End: hcl.InitialPos},
	}}
}

// addressRange finds the value of attribute attr (address or address6) in
// src for a diagnostic.
func addressRange(filename string, src []byte, attr string) *hcl.Range {
	f, _ := parseNative(filename, src)
	if f == nil {
		return nil
	}
	if a := f.Attributes[attr]; a != nil {
		r := a.Expr.Range()
		return &r
	}
	return nil
}

// Get reads one entry. errors.Is(err, ErrNotFound) when it does not
// exist; a *diag.Error when it is invalid.
func (r *Registry) Get(name string) (*Container, error) {
	c, _, err := r.GetSource(name)
	return c, err
}

// GetSource is Get that also returns the entry's bytes as read: what a
// change records in order to undo it, from the same read as the entry it
// decided on.
func (r *Registry) GetSource(name string) (*Container, []byte, error) {
	if err := names.Container(name); err != nil {
		return nil, nil, fmt.Errorf("registry: %w", err)
	}
	path := r.Path(name)
	src, err := readEntry(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("registry: %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("registry %s: %w", path, err)
	}
	c, diags := Decode(path, src)
	if diags.HasErrors() {
		return nil, nil, diag.NewError(diags, map[string][]byte{path: src})
	}
	return c, src, nil
}

// Delete removes an entry (errors.Is(err, ErrNotFound) when there is none).
// Its address stays recorded as used, so it is reused only once the pool
// is exhausted. Call it under Lock, as Put.
func (r *Registry) Delete(name string) error {
	if err := names.Container(name); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	path := r.Path(name)
	before, ok := r.dirID()
	if err := os.Remove(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("registry: %q: %w", name, ErrNotFound)
		}
		return fmt.Errorf("registry: %w", err)
	}
	if ok {
		r.noteWrite(name, nil, true, before)
	}
	return atomicfile.SyncDir(r.Dir())
}
