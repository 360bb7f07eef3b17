//go:build linux

package cli

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// openProvision opens a provision.nix named by the caller. Through sudo it
// runs as root, and merely opening a device (a watchdog, a tape) or a FIFO
// has effects or blocks: so the path is first opened with O_PATH, which
// opens nothing but names the inode, and only a regular file is then
// opened for reading, through /proc/self/fd (the same inode, so a path
// swapped meanwhile cannot substitute another file). f is nil, with fi
// set, when it is not a regular file.
func openProvision(path string) (f *os.File, fi os.FileInfo, err error) {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	pf := os.NewFile(uintptr(fd), path)
	defer func() { _ = pf.Close() }()
	if fi, err = pf.Stat(); err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fi, nil
	}
	f, err = os.Open(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return nil, nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return f, fi, nil
}
