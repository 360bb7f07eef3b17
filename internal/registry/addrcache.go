package registry

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/flyingcircusio/devhost/internal/atomicfile"
)

// The address cache is what Allocate knows of the entries' addresses
// without reading them: <stateDir>/registry-addresses.log, written under
// Lock. It is a log of lines after a header line:
//
//	E <name> <ino> <size> <mtime> <address> <address6 or ->   an entry and its file's identity
//	U <name>                   an entry whose addresses are unknown (read it)
//	D <name>                   an entry removed
//	S <ino> <mtime>            the registry directory's identity after the lines before
//
// A sweep (list and lstat every entry, decode those whose file's identity
// changed since their E line) writes it anew. Put, WriteEntry and Delete
// append their entry's line and the directory's new identity, when the
// cache was up to date before their write. Allocate trusts the cache
// without listing the directory when its last line is an S line naming the
// directory as it is: every entry created, replaced (devhost and most
// editors write by renaming a new file over the old one) or removed since
// the cache was brought up to date changes the directory's identity. What
// it cannot see is a hand edit that rewrites an entry's file in place and
// changes its address, or an outside change racing a devhost write within
// the file system's timestamp granularity; an address handed out twice
// that way is refused by the next rebuild, which compares every entry's
// file (see lifecycle's set index), before any host applies it.
type addrCache struct {
	entries map[string]cachedAddr
	// dir is the directory's identity of the last line when that is an S
	// line; current is false otherwise.
	dir     dirID
	current bool
	lines   int
}

type cachedAddr struct {
	id FileID
	// unknown: the addresses are unknown, the entry must be read.
	unknown           bool
	address, address6 netip.Addr
}

// FileID identifies one version of a registry file or directory: every
// write of an entry renames a new file over it, so a changed entry has a
// new inode, and every entry created, renamed or removed changes the
// directory's modification time. The address cache and lifecycle's set
// index find what changed by it.
type FileID struct {
	Ino   uint64
	Size  int64
	MTime int64
}

// IDOf is the identity of the file fi describes.
func IDOf(fi fs.FileInfo) FileID {
	id := FileID{Size: fi.Size(), MTime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.Ino = st.Ino
	}
	return id
}

type dirID struct {
	ino   uint64
	mtime int64
}

const addrCacheHeader = "devhost registry addresses 1"

func (r *Registry) addrCachePath() string {
	return filepath.Join(r.stateDir, "registry-addresses.log")
}

// dirID is the registry directory's identity (ok false when it cannot be
// stat'ed).
func (r *Registry) dirID() (dirID, bool) {
	fi, err := os.Stat(r.Dir())
	if err != nil {
		return dirID{}, false
	}
	id := IDOf(fi)
	return dirID{ino: id.Ino, mtime: id.MTime}, true
}

// readAddrCache reads the cache; a missing or broken one is empty and not
// current.
func (r *Registry) readAddrCache() addrCache {
	b, err := os.ReadFile(r.addrCachePath())
	if err != nil {
		return addrCache{}
	}
	c, ok := parseAddrCache(b)
	if !ok {
		return addrCache{}
	}
	return c
}

// parseAddrCache parses the log b. A last line without its newline (an
// append cut short) is left out and makes the cache not current.
func parseAddrCache(b []byte) (addrCache, bool) {
	header, rest, ok := bytes.Cut(b, []byte("\n"))
	if !ok || string(header) != addrCacheHeader {
		return addrCache{}, false
	}
	c := addrCache{entries: make(map[string]cachedAddr, bytes.Count(rest, []byte("\n")))}
	for len(rest) > 0 {
		line, tail, complete := bytes.Cut(rest, []byte("\n"))
		rest = tail
		if !complete {
			c.current = false
			break
		}
		c.lines++
		f := strings.Fields(string(line))
		if len(f) == 0 {
			return addrCache{}, false
		}
		c.current = false
		switch {
		case f[0] == "E" && len(f) == 7:
			var e cachedAddr
			var err1, err2, err3, err4 error
			e.id.Ino, err1 = strconv.ParseUint(f[2], 10, 64)
			e.id.Size, err2 = strconv.ParseInt(f[3], 10, 64)
			e.id.MTime, err3 = strconv.ParseInt(f[4], 10, 64)
			e.address, err4 = netip.ParseAddr(f[5])
			if err := errors.Join(err1, err2, err3, err4); err != nil {
				return addrCache{}, false
			}
			if f[6] != "-" {
				a6, err := netip.ParseAddr(f[6])
				if err != nil {
					return addrCache{}, false
				}
				e.address6 = a6
			}
			c.entries[f[1]] = e
		case f[0] == "U" && len(f) == 2:
			c.entries[f[1]] = cachedAddr{unknown: true}
		case f[0] == "D" && len(f) == 2:
			delete(c.entries, f[1])
		case f[0] == "S":
			d, ok := parseDirLine(f)
			if !ok {
				return addrCache{}, false
			}
			c.dir, c.current = d, true
		default:
			return addrCache{}, false
		}
	}
	return c, true
}

func appendEntryLine(b []byte, name string, e cachedAddr) []byte {
	if e.unknown {
		return fmt.Appendf(b, "U %s\n", name)
	}
	a6 := "-"
	if e.address6.IsValid() {
		a6 = e.address6.String()
	}
	return fmt.Appendf(b, "E %s %d %d %d %s %s\n", name, e.id.Ino, e.id.Size, e.id.MTime, e.address, a6)
}

func appendDirLine(b []byte, d dirID) []byte {
	return fmt.Appendf(b, "S %d %d\n", d.ino, d.mtime)
}

// writeAddrCache writes the cache anew: entries, then the directory's
// identity d as it was before they were listed.
func (r *Registry) writeAddrCache(entries map[string]cachedAddr, d dirID) error {
	b := make([]byte, 0, 64*(len(entries)+2))
	b = append(b, addrCacheHeader+"\n"...)
	for name, e := range entries {
		b = appendEntryLine(b, name, e)
	}
	b = appendDirLine(b, d)
	if err := atomicfile.WriteFile(r.addrCachePath(), b, 0o640); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	return nil
}

// usedAddresses returns the IPv4 and the IPv6 addresses of every entry:
// from the cache alone when it is current, else by a sweep that decodes
// only the entries whose file changed since the cache was written. An
// invalid entry is an error (it might hold an address), reported as Get
// reports it. Call under Lock.
func (r *Registry) usedAddresses() (used, used6 map[netip.Addr]bool, err error) {
	old := r.readAddrCache()
	d, ok := r.dirID()
	if !ok {
		// No directory (or none readable): the sweep finds no entries,
		// or reports why.
		d = dirID{}
	}
	if ok && old.current && old.dir == d {
		used, used6, err = addressSets(r, old.entries)
		if err == nil && old.lines > 2*len(old.entries)+64 {
			err = r.writeAddrCache(old.entries, d) // compact the log
		}
		return used, used6, err
	}
	files, err := r.entryFiles()
	if err != nil {
		return nil, nil, err
	}
	next := make(map[string]cachedAddr, len(files))
	for _, f := range files {
		name := strings.TrimSuffix(f, ".hcl")
		fi, err := os.Lstat(filepath.Join(r.Dir(), f))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, nil, fmt.Errorf("registry: %w", err)
		}
		id := IDOf(fi)
		if c, ok := old.entries[name]; ok && !c.unknown && c.id == id && fi.Mode().IsRegular() {
			next[name] = c
			continue
		}
		c, err := r.Get(name)
		if errors.Is(err, ErrNotFound) {
			continue // removed since the listing
		} else if err != nil {
			return nil, nil, err
		}
		next[name] = cachedAddr{id: id, address: c.Address, address6: c.Address6}
	}
	used, used6, err = addressSets(r, next)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		// Without the directory's identity the cache cannot be current.
		_ = atomicfile.Remove(r.addrCachePath())
		return used, used6, nil
	}
	return used, used6, r.writeAddrCache(next, d)
}

// addressSets collects the addresses of entries, reading those whose
// addresses the cache does not know.
func addressSets(r *Registry, entries map[string]cachedAddr) (used, used6 map[netip.Addr]bool, err error) {
	used, used6 = make(map[netip.Addr]bool, len(entries)), map[netip.Addr]bool{}
	for name, e := range entries {
		if e.unknown {
			c, err := r.Get(name)
			if errors.Is(err, ErrNotFound) {
				continue
			} else if err != nil {
				return nil, nil, err
			}
			e.address, e.address6 = c.Address, c.Address6
		}
		used[e.address.Unmap()] = true
		if e.address6.IsValid() {
			used6[e.address6] = true
		}
	}
	return used, used6, nil
}

// noteWrite appends to the address cache what a write of entry name did:
// c is the entry written (nil: its addresses are unknown), removed true
// when the entry was removed. before is the directory's identity taken
// before the write: only a cache that was current then is kept current
// (one that was not stays so, and the next allocation sweeps). A failure
// leaves the cache not current; it is only a cache. Call under Lock.
func (r *Registry) noteWrite(name string, c *Container, removed bool, before dirID) {
	f, err := os.OpenFile(r.addrCachePath(), os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		return // no cache: the next allocation sweeps
	}
	defer func() { _ = f.Close() }()
	if d, ok := lastDirLine(f); !ok || d != before {
		return
	}
	after, ok := r.dirID()
	if !ok {
		return
	}
	var b []byte
	switch {
	case removed:
		b = fmt.Appendf(b, "D %s\n", name)
	case c == nil:
		b = appendEntryLine(b, name, cachedAddr{unknown: true})
	default:
		fi, err := os.Lstat(r.Path(name))
		if err != nil {
			return
		}
		b = appendEntryLine(b, name, cachedAddr{id: IDOf(fi), address: c.Address, address6: c.Address6})
	}
	b = appendDirLine(b, after)
	_, _ = f.Write(b)
}

// lastDirLine returns the directory identity of the cache's last line, when
// that is an S line.
func lastDirLine(f *os.File) (dirID, bool) {
	fi, err := f.Stat()
	if err != nil {
		return dirID{}, false
	}
	const tail = 64
	off := max(fi.Size()-tail, 0)
	buf := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return dirID{}, false
	}
	if !bytes.HasSuffix(buf, []byte("\n")) {
		return dirID{}, false
	}
	buf = buf[:len(buf)-1]
	line := buf[bytes.LastIndexByte(buf, '\n')+1:]
	if len(line) == len(buf) && off > 0 {
		return dirID{}, false // longer than any S line
	}
	return parseDirLine(strings.Fields(string(line)))
}

// parseDirLine parses the fields of an S line (appendDirLine).
func parseDirLine(f []string) (dirID, bool) {
	if len(f) != 3 || f[0] != "S" {
		return dirID{}, false
	}
	ino, err1 := strconv.ParseUint(f[1], 10, 64)
	mtime, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil {
		return dirID{}, false
	}
	return dirID{ino: ino, mtime: mtime}, true
}
