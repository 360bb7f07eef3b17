//go:build unix

package inputfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readGuarded runs Read and fails the test instead of hanging when Read
// blocks (as os.ReadFile does on a named pipe nobody writes to).
func readGuarded(t *testing.T, path string, limit int64) ([]byte, error) {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := Read(path, limit)
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		return r.b, r.err
	case <-time.After(10 * time.Second):
		t.Fatalf("Read(%s) still blocks after 10 s", path)
		return nil, nil
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	linkToFIFO := filepath.Join(dir, "link-to-fifo")
	require.NoError(t, os.Symlink(fifo, linkToFIFO))
	regular := write("regular", "12345")
	linkToRegular := filepath.Join(dir, "link-to-regular")
	require.NoError(t, os.Symlink(regular, linkToRegular))

	cases := []struct {
		name, path string
		limit      int64
		want       string
		wantErr    string
		check      func(error) bool
	}{
		{name: "regular file", path: regular, limit: 5, want: "12345"},
		{name: "symlink to a regular file", path: linkToRegular, limit: 10, want: "12345"},
		{name: "empty file", path: write("empty", ""), limit: 0, want: ""},
		{name: "one byte too many", path: regular, limit: 4,
			wantErr: regular + " is larger than 4 bytes",
			check:   func(err error) bool { var e *TooLargeError; return errors.As(err, &e) && e.Limit == 4 }},
		{name: "named pipe", path: fifo, limit: 1 << 20,
			wantErr: fifo + " is a named pipe (FIFO), not a regular file",
			check:   func(err error) bool { var e *NotRegularError; return errors.As(err, &e) }},
		{name: "symlink to a named pipe", path: linkToFIFO, limit: 1 << 20,
			wantErr: "is a named pipe (FIFO)"},
		{name: "directory", path: dir, limit: 1 << 20, wantErr: dir + " is a directory, not a regular file"},
		{name: "device", path: "/dev/null", limit: 1 << 20, wantErr: "/dev/null is a device, not a regular file"},
		{name: "missing", path: filepath.Join(dir, "nope"), limit: 1,
			check: func(err error) bool { return errors.Is(err, fs.ErrNotExist) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := readGuarded(t, c.path, c.limit)
			if c.wantErr == "" && c.check == nil {
				require.NoError(t, err)
				assert.Equal(t, c.want, string(b))
				return
			}
			require.Error(t, err)
			assert.Nil(t, b)
			if c.wantErr != "" {
				assert.Contains(t, err.Error(), c.wantErr)
			}
			if c.check != nil {
				assert.True(t, c.check(err), "%T %v", err, err)
			}
		})
	}
}

func TestSize(t *testing.T) {
	assert.Equal(t, "8 MiB", Size(8<<20))
	assert.Equal(t, "64 KiB", Size(64<<10))
	assert.Equal(t, "1000 bytes", Size(1000))
}

// TestReadNoFollow: a symbolic link is refused as such, whatever it points
// to; a regular file reads as with Read.
func TestReadNoFollow(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	require.NoError(t, os.WriteFile(regular, []byte("12345"), 0o600))
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink(regular, link))
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))

	b, err := ReadNoFollow(regular, 5)
	require.NoError(t, err)
	assert.Equal(t, "12345", string(b))
	_, err = ReadNoFollow(link, 5)
	var nr *NotRegularError
	require.ErrorAs(t, err, &nr)
	assert.Contains(t, err.Error(), link+" is a symbolic link")
	_, err = ReadNoFollow(fifo, 5) // refused before it is opened: no hang
	require.ErrorAs(t, err, &nr)
	_, err = ReadNoFollow(regular, 4)
	var tl *TooLargeError
	require.ErrorAs(t, err, &tl)
}
