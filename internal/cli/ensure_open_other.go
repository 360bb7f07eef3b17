//go:build !linux

package cli

import "os"

// openProvision opens a provision.nix named by the caller (see the Linux
// version, which never opens a device or FIFO).
func openProvision(path string) (*os.File, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, fi, err
	}
	return f, fi, nil
}
