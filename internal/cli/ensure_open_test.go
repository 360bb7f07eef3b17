package cli

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/lifecycle"
)

// readProvision runs as root through sudo: it must refuse what is not a
// regular file without opening it for reading (opening a FIFO blocks,
// opening a device may act on it).
func TestReadProvisionOpensOnlyRegularFiles(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "provision.nix")
	require.NoError(t, os.WriteFile(regular, []byte("{ ... }: { }\n"), 0o644))
	link := filepath.Join(dir, "link.nix")
	require.NoError(t, os.Symlink(regular, link))
	fifo := filepath.Join(dir, "fifo.nix")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	tests := []struct {
		name, path, want, err string
	}{
		{"regular", regular, "{ ... }: { }\n", ""},
		{"link to a regular file", link, "{ ... }: { }\n", ""},
		{"fifo", fifo, "", "not a regular file"},
		{"directory", dir, "", "not a regular file"},
		{"device", "/dev/null", "", "not a regular file"},
		{"missing", filepath.Join(dir, "nope"), "", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			type res struct {
				b   []byte
				err error
			}
			done := make(chan res, 1)
			go func() {
				b, err := readProvision(&IOStreams{}, tt.path, lifecycle.Caller{User: "root", Root: true})
				done <- res{b, err}
			}()
			var r res
			select {
			case r = <-done:
			case <-time.After(5 * time.Second):
				// Unblock the open so the goroutine ends.
				if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					_ = w.Close()
				}
				t.Fatalf("readProvision(%s) blocked", tt.path)
			}
			if tt.err == "" {
				require.NoError(t, r.err)
				assert.Equal(t, tt.want, string(r.b))
				return
			}
			require.Error(t, r.err)
			var ie *InputError
			assert.True(t, errors.As(r.err, &ie), "exit 1")
			assert.Contains(t, r.err.Error(), tt.err)
		})
	}
}
