// Package atomicfile writes files so that readers, and a process killed at
// any instant, see either the old or the new content, never a part of it:
// a temporary file in the same directory, fsync, rename, fsync of the
// directory. Every piece of devhost state (registry entries, the lifecycle's
// records, hostmap.json, ssh keys and configs) is written through it.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile replaces path with data. The file has mode perm from its
// creation on (a private key is never briefly readable by others); missing
// parent directories are created with mode 0755.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, -1)
}

// WriteFileGroup is WriteFile giving the file group gid before it
// appears under its name, so the reader that group stands for (nginx
// reading a password file) never finds it unreadable.
func WriteFileGroup(path string, data []byte, perm os.FileMode, gid int) error {
	return write(path, data, perm, gid)
}

// write is WriteFile; a gid of -1 leaves the file's group as created.
func write(path string, data []byte, perm os.FileMode, gid int) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if gid != -1 {
		if err = f.Chown(-1, gid); err != nil {
			return fmt.Errorf("write %s: %w", tmp, err)
		}
	}
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return SyncDir(dir)
}

// PrivateDir makes dir a directory with at most the permissions perm: it
// creates it (and missing parents) with perm, or takes every permission
// beyond perm from an existing one, keeping its setgid and sticky bits. A
// directory that an earlier version created more open is closed on the next
// write into it, and so are the files in it, whatever their own modes.
func PrivateDir(dir string, perm os.FileMode) error {
	if err := os.MkdirAll(dir, perm); err != nil {
		return fmt.Errorf("directory %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("directory %s: not a directory (%s)", dir, fi.Mode().Type())
	}
	if fi.Mode().Perm()&^perm != 0 {
		if err := os.Chmod(dir, fi.Mode()&(os.ModeSetgid|os.ModeSticky|perm)); err != nil {
			return fmt.Errorf("directory %s: %w", dir, err)
		}
	}
	return nil
}

// Remove removes path durably; a missing file is not an error.
func Remove(path string) error {
	if err := os.Remove(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir makes a rename, creation or removal in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer func() { _ = d.Close() }()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
