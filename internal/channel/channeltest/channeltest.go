// Package channeltest makes directories that pass a channel.Policy's
// ownership rule on the real file system, for tests of file:// channels.
package channeltest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/flyingcircusio/devhost/internal/channel"
)

// Dir returns a new empty directory that channel.Policy accepts as a
// file:// channel when it trusts owners besides root: it and every parent
// owned by root (or one of owners) and writable by nobody else. The
// system's temporary directory is usually world-writable, so Dir also
// tries the user's cache directory and the test's working directory. The
// test is skipped when none qualifies (for owners = nil: when it does not
// run as root). The directory is removed when the test ends.
func Dir(t testing.TB, owners ...uint32) string {
	t.Helper()
	var bases []string
	bases = append(bases, os.TempDir())
	if c, err := os.UserCacheDir(); err == nil {
		bases = append(bases, filepath.Join(c, "devhost-test"))
	}
	if wd, err := os.Getwd(); err == nil {
		bases = append(bases, wd)
	}
	for _, base := range bases {
		if err := os.MkdirAll(base, 0o755); err != nil {
			continue
		}
		dir, err := os.MkdirTemp(base, "devhost-channel-")
		if err != nil {
			continue
		}
		if err := os.Chmod(dir, 0o755); err == nil && accepts(dir, owners) {
			t.Cleanup(func() { _ = os.RemoveAll(dir) })
			return dir
		}
		_ = os.RemoveAll(dir)
	}
	t.Skipf("no directory here is owned by root (or uids %v) all the way up and writable by nobody else; a file:// channel needs one", owners)
	return ""
}

// accepts reports whether dir passes the real policy as a channel.
func accepts(dir string, owners []uint32) bool {
	ch, err := channel.Parse("file://" + dir)
	if err != nil {
		return false
	}
	pr, err := channel.ParsePrefix("file://" + dir)
	if err != nil {
		return false
	}
	_, err = channel.Policy{Prefixes: []channel.Prefix{pr}, Owners: owners}.Check(ch)
	return err == nil
}
