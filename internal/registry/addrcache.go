package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/flyingcircusio/devhost/internal/atomicfile"
	"github.com/flyingcircusio/devhost/internal/inputfile"
)

// addrCache is the address of every entry as last decoded, by the entry
// file's identity (<stateDir>/registry-addresses.json, written under Lock):
// Allocate decodes only the entries written since, not all of them. Every
// write of an entry renames a new file over it, so a changed entry has a
// new inode; a missing or broken cache is rebuilt.
type addrCache map[string]cachedAddr

type cachedAddr struct {
	Ino     uint64     `json:"ino"`
	Size    int64      `json:"size"`
	MTime   int64      `json:"mtime"`
	Address netip.Addr `json:"address"`
}

func (r *Registry) addrCachePath() string {
	return filepath.Join(r.stateDir, "registry-addresses.json")
}

// usedAddresses returns the address of every entry, decoding only those
// whose file changed since the cache was written. An invalid entry is an
// error (it might hold an address), reported as Get reports it. Call under
// Lock.
func (r *Registry) usedAddresses() (map[netip.Addr]bool, error) {
	var old addrCache
	if b, err := os.ReadFile(r.addrCachePath()); err == nil {
		_ = json.Unmarshal(b, &old) // a broken cache is rebuilt
	}
	files, err := r.entryFiles()
	if err != nil {
		return nil, err
	}
	next := make(addrCache, len(files))
	used := make(map[netip.Addr]bool, len(files))
	for _, f := range files {
		name := strings.TrimSuffix(f, ".hcl")
		fi, err := os.Lstat(filepath.Join(r.Dir(), f))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("registry: %w", err)
		}
		id := cachedAddr{Size: fi.Size(), MTime: fi.ModTime().UnixNano()}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			id.Ino = st.Ino
		}
		if c, ok := old[name]; ok && c.Ino == id.Ino && c.Size == id.Size && c.MTime == id.MTime && fi.Mode().IsRegular() {
			next[name] = c
			used[c.Address.Unmap()] = true
			continue
		}
		if _, err := inputfile.ReadNoFollow(filepath.Join(r.Dir(), f), MaxEntrySize); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		c, err := r.Get(name)
		if err != nil {
			return nil, err
		}
		id.Address = c.Address
		next[name] = id
		used[c.Address.Unmap()] = true
	}
	b, err := json.Marshal(next)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	if err := atomicfile.WriteFile(r.addrCachePath(), b, 0o640); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	return used, nil
}
