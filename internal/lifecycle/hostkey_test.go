package lifecycle

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The container's root controls its /etc/ssh; devhost reads the host key
// as the host's root and prints it to a sudo user. Nothing outside the
// container's root may be read through it.
func TestHostKeyStaysInsideTheContainer(t *testing.T) {
	const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGc7V2c2zFPRMl8/gmBv1/MEldEuJau8jHjhx+2qziYs root@shop"
	tests := []struct {
		name  string
		setup func(t *testing.T, keyPath, outside string)
		want  string
	}{
		{"regular file", func(t *testing.T, keyPath, _ string) {
			require.NoError(t, os.WriteFile(keyPath, []byte(key+"\n"), 0o644))
		}, key},
		{"absent", func(*testing.T, string, string) {}, ""},
		{"absolute link out of the container", func(t *testing.T, keyPath, outside string) {
			require.NoError(t, os.Symlink(outside, keyPath))
		}, ""},
		{"relative link out of the container", func(t *testing.T, keyPath, outside string) {
			rel, err := filepath.Rel(filepath.Dir(keyPath), outside)
			require.NoError(t, err)
			require.NoError(t, os.Symlink(rel, keyPath))
		}, ""},
		{"link inside the container", func(t *testing.T, keyPath, _ string) {
			require.NoError(t, os.WriteFile(filepath.Join(filepath.Dir(keyPath), "real.pub"), []byte(key+"\n"), 0o644))
			require.NoError(t, os.Symlink("real.pub", keyPath))
		}, key},
		{"fifo", func(t *testing.T, keyPath, _ string) {
			require.NoError(t, syscall.Mkfifo(keyPath, 0o644))
		}, ""},
		{"not a key", func(t *testing.T, keyPath, _ string) {
			require.NoError(t, os.WriteFile(keyPath, []byte("root:$6$hash:19000:0:99999:7:::\n"), 0o644))
		}, ""},
		{"extra lines are dropped", func(t *testing.T, keyPath, _ string) {
			require.NoError(t, os.WriteFile(keyPath, []byte(key+"\n@cert-authority * ssh-ed25519 AAAA\n"), 0o644))
		}, key},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := testHost(t)
			outside := filepath.Join(t.TempDir(), "shadow")
			require.NoError(t, os.WriteFile(outside, []byte("ssh-ed25519 SECRET-OF-THE-HOST\n"), 0o600))
			keyPath := h.HostKeyPath("shop")
			require.NoError(t, os.MkdirAll(filepath.Dir(keyPath), 0o755))
			tt.setup(t, keyPath, outside)
			assert.Equal(t, tt.want, h.hostKey("shop"))
		})
	}
}

// A name is part of lock, intent and registry paths: a name that is not a
// container name is refused before anything is created, and nothing appears
// outside the state directory.
func TestBadNamesCreateNothing(t *testing.T) {
	for _, name := range []string{"../../../escape", "a/b", "", "UPPER", "..", "x\x00y"} {
		t.Run(name, func(t *testing.T) {
			h, fr := testHost(t)
			ctx := context.Background()
			base := filepath.Dir(h.Cfg.StateDir)
			before := listTree(t, base)
			_, err := h.Destroy(ctx, name, Caller{User: "root", Root: true})
			var ne *NameError
			require.ErrorAs(t, err, &ne)
			_, err = h.Ensure(ctx, EnsureRequest{Name: name, Channel: "https://example.org/c.tar.xz", Caller: alice})
			require.ErrorAs(t, err, &ne)
			_, err = h.Keep(ctx, name, true, alice)
			require.ErrorAs(t, err, &ne)
			_, err = h.Status(ctx, name)
			require.ErrorAs(t, err, &ne)
			assert.Equal(t, before, listTree(t, base))
			assert.NoFileExists(t, filepath.Join(base, "..", "escape.lock"))
			assert.Empty(t, fr.calls)
		})
	}
}

func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		out = append(out, p)
		return err
	}))
	return out
}
