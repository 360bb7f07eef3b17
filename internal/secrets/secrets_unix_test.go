//go:build unix

package secrets

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSecretsFileNamedPipe: a named pipe as the secrets file (of any kind,
// gpg included) is refused at once instead of blocking devhost up.
func TestSecretsFileNamedPipe(t *testing.T) {
	for _, kind := range []string{"age", "age-diffable", "gpg"} {
		t.Run(kind, func(t *testing.T) {
			envDir := t.TempDir()
			fifo := filepath.Join(envDir, "secrets.cfg."+kind)
			require.NoError(t, syscall.Mkfifo(fifo, 0o600))
			done := make(chan error, 1)
			go func() {
				_, err := Load(context.Background(), envDir, Options{Identities: []string{filepath.Join(envDir, "none")}, GPG: "true"})
				done <- err
			}()
			select {
			case err := <-done:
				require.Error(t, err)
				assert.Contains(t, err.Error(), fifo+" is a named pipe (FIFO), not a regular file")
			case <-time.After(10 * time.Second):
				t.Fatal("Load still blocks after 10 s")
			}
		})
	}
}
