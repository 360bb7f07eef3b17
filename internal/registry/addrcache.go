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

// addrCache is the addresses of every entry as last decoded, by the entry
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
	// Address6 is the entry's IPv6 address (zero: none); Has6 marks a
	// record that carries it, so a cache written before IPv6 is read again.
	Address6 netip.Addr `json:"address6"`
	Has6     bool       `json:"has6"`
}

func (r *Registry) addrCachePath() string {
	return filepath.Join(r.stateDir, "registry-addresses.json")
}

// usedAddresses returns the IPv4 and the IPv6 addresses of every entry,
// decoding only those whose file changed since the cache was written. An
// invalid entry is an error (it might hold an address), reported as Get
// reports it. Call under Lock.
func (r *Registry) usedAddresses() (used, used6 map[netip.Addr]bool, err error) {
	var old addrCache
	if b, err := os.ReadFile(r.addrCachePath()); err == nil {
		_ = json.Unmarshal(b, &old) // a broken cache is rebuilt
	}
	files, err := r.entryFiles()
	if err != nil {
		return nil, nil, err
	}
	next := make(addrCache, len(files))
	used, used6 = make(map[netip.Addr]bool, len(files)), map[netip.Addr]bool{}
	add := func(c cachedAddr) {
		used[c.Address.Unmap()] = true
		if c.Address6.IsValid() {
			used6[c.Address6] = true
		}
	}
	for _, f := range files {
		name := strings.TrimSuffix(f, ".hcl")
		fi, err := os.Lstat(filepath.Join(r.Dir(), f))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, nil, fmt.Errorf("registry: %w", err)
		}
		id := cachedAddr{Size: fi.Size(), MTime: fi.ModTime().UnixNano()}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			id.Ino = st.Ino
		}
		if c, ok := old[name]; ok && c.Has6 && c.Ino == id.Ino && c.Size == id.Size && c.MTime == id.MTime && fi.Mode().IsRegular() {
			next[name] = c
			add(c)
			continue
		}
		if _, err := inputfile.ReadNoFollow(filepath.Join(r.Dir(), f), MaxEntrySize); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		c, err := r.Get(name)
		if err != nil {
			return nil, nil, err
		}
		id.Address, id.Address6, id.Has6 = c.Address, c.Address6, true
		next[name] = id
		add(id)
	}
	b, err := json.Marshal(next)
	if err != nil {
		return nil, nil, fmt.Errorf("registry: %w", err)
	}
	if err := atomicfile.WriteFile(r.addrCachePath(), b, 0o640); err != nil {
		return nil, nil, fmt.Errorf("registry: %w", err)
	}
	return used, used6, nil
}
