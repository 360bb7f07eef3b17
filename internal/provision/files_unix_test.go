//go:build unix

package provision

import (
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNamedPipesRefused: a named pipe as the environment's known-hosts file,
// private key or ssh_config is refused at once; devhost up, sync and
// connect used to wait on it.
func TestNamedPipesRefused(t *testing.T) {
	root := t.TempDir()
	priv, _ := KeyPaths(root, "dev")
	cfg, kh := SSHConfigPaths(root, "dev")
	for _, p := range []string{priv, kh, cfg} {
		require.NoError(t, syscall.Mkfifo(p, 0o600))
	}
	for name, read := range map[string]func() error{
		"known hosts": func() error { _, err := ReadKnownHosts(kh); return err },
		"key":         func() error { _, err := EnsureKey(root, "dev", false); return err },
		"ssh config":  func() error { _, err := ReadSSHHosts(cfg); return err },
		"connect":     func() error { _, err := ConnectedDevhost(root, "dev"); return err },
	} {
		t.Run(name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { done <- read() }()
			select {
			case err := <-done:
				require.Error(t, err)
				assert.Contains(t, err.Error(), "is a named pipe (FIFO), not a regular file")
			case <-time.After(10 * time.Second):
				t.Fatal("still blocks after 10 s")
			}
		})
	}
}
