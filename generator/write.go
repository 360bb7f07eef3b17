package generator

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rogpeppe/go-internal/lockedfile"
)

// OldSuffix names the previous set Write keeps next to the new one
// (<dir>.old), for comparing what the last render changed.
const OldSuffix = ".old"

// Write replaces the directory dir with the set as a whole. The set is
// written into a sibling temporary directory (every file and directory
// fsynced), then swapped in: with an atomic exchange of the two
// directories where the kernel supports it (Linux renameat2
// RENAME_EXCHANGE), so dir always exists and is always one complete set;
// elsewhere with two renames (dir is absent for an instant in between). The
// previous set is kept as <dir>.old. Concurrent Writes to the same dir are
// serialised by a lock file next to it (.<base>.lock). dir and <dir>.old
// must each be absent, an empty directory or a set written before (holding
// default.nix); anything else is refused with ErrNotASet and left alone.
//
// A reader that resolves paths in dir during the swap can still mix an old
// default.nix with a new containers/ file; the lifecycle serialises renders
// and rebuilds, which is what makes that impossible in practice.
func Write(dir string, s *Set) (err error) {
	dir = filepath.Clean(dir)
	for p := range s.Files {
		if !validRel(p) {
			return fmt.Errorf("write generated set %s: invalid file name %q", dir, p)
		}
	}
	parent, base := filepath.Split(dir)
	if parent == "" {
		parent = "."
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("write generated set %s: %w", dir, err)
	}
	// Before the lock file is made next to it: a refused directory gets
	// no litter. (Other Writes only ever turn dir into a set.)
	old := dir + OldSuffix
	for _, p := range []string{dir, old} {
		if err := replaceable(p); err != nil {
			return fmt.Errorf("write generated set %s: %w", dir, err)
		}
	}
	unlock, err := lockedfile.MutexAt(filepath.Join(parent, "."+base+".lock")).Lock()
	if err != nil {
		return fmt.Errorf("write generated set %s: lock: %w", dir, err)
	}
	defer unlock()

	tmp, err := os.MkdirTemp(parent, "."+base+".new-")
	if err != nil {
		return fmt.Errorf("write generated set %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("write generated set %s: %w", dir, err)
	}
	if err := writeTree(tmp, s); err != nil {
		return fmt.Errorf("write generated set %s: %w", dir, err)
	}

	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.Rename(tmp, dir); err != nil {
			return fmt.Errorf("write generated set %s: %w", dir, err)
		}
		return syncDir(parent)
	} else if err != nil {
		return fmt.Errorf("write generated set %s: %w", dir, err)
	}
	if err := exchange(tmp, dir); err != nil {
		if !errors.Is(err, errNoExchange) {
			return fmt.Errorf("write generated set %s: swap: %w", dir, err)
		}
		// No atomic exchange here: two renames.
		if err := os.RemoveAll(old); err != nil {
			return fmt.Errorf("write generated set %s: %w", dir, err)
		}
		if err := os.Rename(dir, old); err != nil {
			return fmt.Errorf("write generated set %s: %w", dir, err)
		}
		if err := os.Rename(tmp, dir); err != nil {
			_ = os.Rename(old, dir)
			return fmt.Errorf("write generated set %s: %w", dir, err)
		}
		return syncDir(parent)
	}
	// tmp now holds the previous set.
	if err := syncDir(parent); err != nil {
		return fmt.Errorf("write generated set %s: %w", dir, err)
	}
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("write generated set %s: the new set is in place, but %w", dir, err)
	}
	if err := os.Rename(tmp, old); err != nil {
		return fmt.Errorf("write generated set %s: the new set is in place, but %w", dir, err)
	}
	return syncDir(parent)
}

// replaceable checks that Write may replace (or, for <dir>.old, delete) p:
// it is absent, an empty directory, or a directory holding default.nix — a
// set written before. Anything else is somebody's data: `devhost render
// --out ~` must not move a home directory aside, and the next render must
// not delete it as the previous set.
func replaceable(p string) error {
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s exists and is not a directory (%w); remove it or choose another directory", p, ErrNotASet)
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	if fi, err := os.Lstat(filepath.Join(p, IndexFile)); err == nil && fi.Mode().IsRegular() {
		return nil
	}
	return fmt.Errorf("%s is not empty and holds no %s, so it is %w; refusing to replace it (remove it or choose another directory)", p, IndexFile, ErrNotASet)
}

// validRel reports whether p is a clean relative slash path inside the set.
func validRel(p string) bool {
	return p != "" && !path.IsAbs(p) && path.Clean(p) == p && p != "." &&
		!strings.HasPrefix(p, "../") && p != ".." && !strings.ContainsRune(p, 0) && !strings.Contains(p, "\\")
}

// writeTree writes every file of s under root and makes all of it durable:
// with one syncfs(2) of the file system where the platform has it (one
// flush instead of thousands of fsyncs), else file by file and directory by
// directory, children before parents. Directories are 0755 and files 0644
// whatever the umask: nginx (not root) serves www/index.html, and a
// `sudo devhost` by a user with umask 077 must not make it unreadable.
func writeTree(root string, s *Set) error {
	dirs := map[string]bool{root: true}
	files := make([]string, 0, len(s.Files))
	for _, p := range s.Paths() {
		full := filepath.Join(root, filepath.FromSlash(p))
		d := filepath.Dir(full)
		if !dirs[d] {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
			for x := d; !dirs[x]; x = filepath.Dir(x) {
				if err := os.Chmod(x, 0o755); err != nil {
					return err
				}
				dirs[x] = true
			}
		}
		if err := writeFile(full, s.Files[p]); err != nil {
			return err
		}
		files = append(files, full)
	}
	if err := syncFS(root); err == nil {
		return nil
	} else if !errors.Is(err, errNoSyncfs) {
		return err
	}
	all := make([]string, 0, len(dirs))
	for d := range dirs {
		all = append(all, d)
	}
	sort.Slice(all, func(i, j int) bool { return len(all[i]) > len(all[j]) })
	for _, f := range append(files, all...) {
		if err := syncDir(f); err != nil {
			return err
		}
	}
	return nil
}

// writeFile creates path with mode 0644 set explicitly (not masked by the
// umask) and writes data.
func writeFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		_ = f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// syncDir fsyncs a file or directory (making renames and new entries in a
// directory durable).
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	if err := d.Close(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
