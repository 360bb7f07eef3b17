package generator

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// exchange atomically swaps the directory entries a and b.
func exchange(a, b string) error {
	err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
		return errNoExchange
	}
	return err
}

// syncFS flushes the file system holding dir (syncfs(2)).
func syncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer func() { _ = d.Close() }()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		if errors.Is(err, unix.ENOSYS) {
			return errNoSyncfs
		}
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return nil
}
