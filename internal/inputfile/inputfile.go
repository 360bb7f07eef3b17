// Package inputfile reads the files devhost takes as input (environment.cfg,
// hostmap.json, provision.nix, secrets files) so that no such file can hang
// or exhaust a command: only a regular file is read, and only up to a
// limit.
//
// os.ReadFile on a named pipe blocks until some process writes to it, and on
// a device it may never end: `devhost check` or `up` would hang with no
// word about the file. A file far larger than any real one would be read
// whole into memory. Read refuses both with an error that names the file
// and the limit.
package inputfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// NotRegularError is a path that is no regular file (after following
// symbolic links): a named pipe, device, socket or directory.
type NotRegularError struct {
	Path string
	Mode fs.FileMode
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s is %s, not a regular file; devhost reads only regular files: replace it with the file itself", e.Path, kind(e.Mode))
}

func kind(m fs.FileMode) string {
	switch t := m.Type(); {
	case t&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case t&fs.ModeSocket != 0:
		return "a socket"
	case t&fs.ModeDevice != 0:
		return "a device"
	case t&fs.ModeDir != 0:
		return "a directory"
	case t&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "a special file"
}

// TooLargeError is a file with more than Limit bytes.
type TooLargeError struct {
	Path  string
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s is larger than %s, the most devhost reads from this file; a real one is far smaller: check that it is the right file", e.Path, Size(e.Limit))
}

// Size writes a byte count the way the limits are chosen: in KiB or MiB
// when it is a whole number of them.
func Size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Read returns the contents of the regular file at path (symbolic links
// are followed), refusing anything else and any file of more than limit
// bytes. A missing file gives an error for which errors.Is(err,
// fs.ErrNotExist) holds, as os.ReadFile does.
//
// The path is checked before it is opened, so a named pipe or device is
// never opened at all; it is opened non-blocking and checked again, so a
// pipe swapped in between cannot block either.
func Read(path string, limit int64) ([]byte, error) {
	return read(path, limit, os.Stat, 0)
}

// ReadNoFollow is Read for files that must not be symbolic links either
// (registry entries: a link would let whoever can write its target edit
// the registry). The link itself is refused, not its target read.
func ReadNoFollow(path string, limit int64) ([]byte, error) {
	return read(path, limit, os.Lstat, syscall.O_NOFOLLOW)
}

func read(path string, limit int64, stat func(string) (fs.FileInfo, error), flags int) ([]byte, error) {
	fi, err := stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &NotRegularError{Path: path, Mode: fi.Mode()}
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY|flags, 0)
	if errors.Is(err, syscall.ELOOP) && flags&syscall.O_NOFOLLOW != 0 {
		return nil, &NotRegularError{Path: path, Mode: fs.ModeSymlink} // swapped in since the check
	}
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	ofi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !ofi.Mode().IsRegular() {
		return nil, &NotRegularError{Path: path, Mode: ofi.Mode()}
	}
	if ofi.Size() > limit {
		return nil, &TooLargeError{Path: path, Limit: limit}
	}
	// The size may have changed since the stat: read one byte more than
	// allowed to notice.
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, &TooLargeError{Path: path, Limit: limit}
	}
	return b, nil
}
