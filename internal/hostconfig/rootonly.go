package hostconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// maxSymlinks bounds the symbolic links followed in one path, as the
// kernel does (ELOOP after 40).
const maxSymlinks = 40

// CheckRootOnly reports an error unless nobody but root can change what
// path names: every directory from / down to it (following symbolic links,
// and checking the directories each link's target passes through too) is
// owned by root and not writable by group or others, and so is every
// symbolic link and the final file or directory. For a directory, each
// entry in it is checked the same way (an admin's template directory: a
// template is read from each). A path that does not exist is fine when
// the deepest directory that does is root's alone: nobody else can create
// it. Because no step of the path can be replaced by anybody but root, the
// files read after the check are the ones checked; no symlink can be
// swapped in between.
func CheckRootOnly(path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%s: not an absolute path", path)
	}
	fi, err := walkRootOnly(path)
	if err != nil || fi == nil || !fi.IsDir() {
		return err
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, e := range entries {
		if _, err := walkRootOnly(filepath.Join(path, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// walkRootOnly resolves path one component at a time as the kernel does
// (".." after a link is the parent of the link's target), checking every
// directory, link and the end (see CheckRootOnly); it returns the end's
// information, nil when it does not exist.
func walkRootOnly(path string) (fs.FileInfo, error) {
	fi, err := os.Lstat("/")
	if err == nil {
		err = rootOnly("/", fi)
	}
	if err != nil {
		return nil, err
	}
	rest := strings.Split(path, "/")
	cur, links := "/", 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, name)
		fi, err = os.Lstat(next)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", next, err)
		}
		if err := rootOnly(next, fi); err != nil {
			return nil, err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if links++; links > maxSymlinks {
			return nil, fmt.Errorf("%s: too many symbolic links", path)
		}
		target, err := os.Readlink(next)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", next, err)
		}
		if filepath.IsAbs(target) {
			cur = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return fi, nil
}

// rootOnly checks one step of a path: owned by root, and, unless it is a
// symbolic link (whose mode means nothing), not writable by group or others.
func rootOnly(path string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: no owner information", path)
	}
	if st.Uid != 0 {
		return fmt.Errorf("%s is owned by uid %d, not root", path, st.Uid)
	}
	if fi.Mode()&fs.ModeSymlink == 0 && fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s is writable by its group or others (mode %s)", path, fi.Mode().Perm())
	}
	return nil
}
