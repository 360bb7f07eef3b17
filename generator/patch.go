package generator

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rogpeppe/go-internal/lockedfile"
)

// Patch changes some files of the set written in dir, in place: files maps
// a path (relative to the set) to its new content, or to nil to remove it.
// Every file is written to a temporary file beside it, fsynced and renamed
// over the old one, so a reader sees a file whole, old or new; the
// directories changed are fsynced once each at the end, nothing else is
// flushed. The order keeps every state in between readable by the host's
// evaluation: new and changed files first, then the index (which imports
// them), then removals (which the index no longer imports), and a
// container's directory is removed once empty. That the set as a whole
// goes from old to new, or back, is the caller's part: it records what it
// replaces before it calls Patch (the lifecycle's journal), and patches
// back after a crash or a failed rebuild. Patch takes the same lock as
// Write.
func Patch(dir string, files map[string][]byte) error {
	dir = filepath.Clean(dir)
	for p := range files {
		if !validRel(p) {
			return fmt.Errorf("patch generated set %s: invalid file name %q", dir, p)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("patch generated set %s: %w", dir, err)
	}
	parent, base := filepath.Split(dir)
	if parent == "" {
		parent = "."
	}
	unlock, err := lockedfile.MutexAt(filepath.Join(parent, "."+base+".lock")).Lock()
	if err != nil {
		return fmt.Errorf("patch generated set %s: lock: %w", dir, err)
	}
	defer unlock()

	var writes, removes []string
	for p, b := range files {
		if b == nil {
			removes = append(removes, p)
		} else if p != IndexFile {
			writes = append(writes, p)
		}
	}
	slices.Sort(writes)
	slices.Sort(removes)
	if b, ok := files[IndexFile]; ok && b != nil {
		writes = append(writes, IndexFile)
	}
	synced := map[string]bool{}
	for _, p := range writes {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := mkdirs(dir, path.Dir(p), synced); err != nil {
			return fmt.Errorf("patch generated set %s: %w", dir, err)
		}
		if err := replaceFile(full, files[p]); err != nil {
			return fmt.Errorf("patch generated set %s: %w", dir, err)
		}
		synced[filepath.Dir(full)] = true
	}
	for _, p := range removes {
		full := filepath.Join(dir, filepath.FromSlash(p))
		switch err := os.Remove(full); {
		case err == nil:
			synced[filepath.Dir(full)] = true
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("patch generated set %s: %w", dir, err)
		}
		// Absent already (the patch back of a write killed before it
		// created the file), its directory may be absent too: nothing to
		// sync. A container's directory goes with its last file.
		if d := path.Dir(p); d != "." && !strings.Contains(d, "/") && d != "containers" && d != wwwDir {
			full := filepath.Join(dir, d)
			if err := os.Remove(full); err == nil {
				synced[dir] = true
				delete(synced, full)
			}
		}
	}
	for _, d := range slices.Sorted(maps.Keys(synced)) {
		if err := syncDir(d); err != nil {
			return fmt.Errorf("patch generated set %s: %w", dir, err)
		}
	}
	return nil
}

// mkdirs creates the set's directory rel (slash-separated, under dir) and
// its parents, mode 0755; a created directory's parent is marked for sync.
func mkdirs(dir, rel string, synced map[string]bool) error {
	if rel == "." {
		return nil
	}
	if err := mkdirs(dir, path.Dir(rel), synced); err != nil {
		return err
	}
	full := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.Mkdir(full, 0o755); errors.Is(err, fs.ErrExist) {
		return nil
	} else if err != nil {
		return err
	}
	synced[filepath.Dir(full)] = true
	return os.Chmod(full, 0o755)
}

// replaceFile atomically replaces path with data, mode 0644.
func replaceFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = f.Chmod(0o644)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}
