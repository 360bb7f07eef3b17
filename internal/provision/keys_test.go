package provision

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

func TestEnsureKey(t *testing.T) {
	root := t.TempDir()
	kp, err := EnsureKey(root, "dev", false)
	require.NoError(t, err)
	assert.True(t, kp.Created)
	assert.True(t, strings.HasPrefix(kp.Public, "ssh-ed25519 "))
	assert.True(t, strings.HasSuffix(kp.Public, " devhost:dev"))

	fi, err := os.Stat(kp.PrivatePath)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	data, err := os.ReadFile(kp.PrivatePath)
	require.NoError(t, err)
	signer, err := ssh.ParsePrivateKey(data)
	require.NoError(t, err)
	assert.Equal(t, "ssh-ed25519", signer.PublicKey().Type())

	// OpenSSH itself accepts the key and derives the same public half.
	if keygen, err := exec.LookPath("ssh-keygen"); err == nil {
		out, err := exec.Command(keygen, "-y", "-f", kp.PrivatePath).Output()
		require.NoError(t, err)
		assert.Equal(t, strings.Fields(kp.Public)[:2], strings.Fields(string(out))[:2])
	}

	// Reused on the next run.
	again, err := EnsureKey(root, "dev", false)
	require.NoError(t, err)
	assert.False(t, again.Created)
	assert.Equal(t, kp.Public, again.Public)

	// Rotated on --rebuild.
	rotated, err := EnsureKey(root, "dev", true)
	require.NoError(t, err)
	assert.True(t, rotated.Created)
	assert.NotEqual(t, kp.Public, rotated.Public)
	pub, err := os.ReadFile(rotated.PublicPath)
	require.NoError(t, err)
	assert.Equal(t, rotated.Public+"\n", string(pub))

	// Another environment has its own key.
	other, err := EnsureKey(root, "review", false)
	require.NoError(t, err)
	assert.NotEqual(t, rotated.Public, other.Public)
}

func TestEnsureKeyRefusesBadKeys(t *testing.T) {
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string
	}{
		{"readable by others", "irrelevant", 0o644, "lets others read it"},
		{"garbage", "not a key", 0o600, "remove it or run `devhost up --rebuild`"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			priv, _ := KeyPaths(root, "dev")
			require.NoError(t, os.WriteFile(priv, []byte(tt.content), tt.mode))
			require.NoError(t, os.Chmod(priv, tt.mode))
			_, err := EnsureKey(root, "dev", false)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			// Nothing was replaced.
			data, _ := os.ReadFile(priv)
			assert.Equal(t, tt.content, string(data))
		})
	}
}
