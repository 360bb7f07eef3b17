package authkeys

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

const (
	edKey  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGQPC30WXqaikLEy9uKsPVU6a381YNdKieYn+LJjXYLK"
	edKey2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
)

// home makes a home directory for jane with authorized_keys content.
func home(t *testing.T, content string) (Account, string) {
	t.Helper()
	h := filepath.Join(t.TempDir(), "jane")
	require.NoError(t, os.MkdirAll(filepath.Join(h, ".ssh"), 0o700))
	if content != "" {
		require.NoError(t, os.WriteFile(filepath.Join(h, Path), []byte(content), 0o600))
	}
	return Account{User: "jane", Home: h, UID: uint32(os.Getuid())}, filepath.Join(h, Path)
}

func TestReadTakesPlainKeys(t *testing.T) {
	a, _ := home(t, strings.Join([]string{
		"# my keys",
		"",
		edKey + " jane@laptop $(evil) ${x}",
		`command="/bin/date" ` + edKey2 + " restricted",
		"ssh-rsa not-base64",
		"garbage",
		edKey + " again, a duplicate",
		"  " + edKey2 + "\tjane@phone  ",
	}, "\n"))
	got, err := Read(a)
	require.NoError(t, err)
	assert.Equal(t, []string{edKey + " shared:jane", edKey2 + " shared:jane"}, got.Keys)
	require.Len(t, got.Warnings, 3)
	assert.Contains(t, got.Warnings[0], "authorized_keys:4: the key has options")
	assert.Contains(t, got.Warnings[1], "authorized_keys:5: not a public key")
	assert.Contains(t, got.Warnings[2], "authorized_keys:6: not a public key")
	for _, w := range got.Warnings {
		assert.NotContains(t, w, "date", "a warning never echoes the line")
	}
}

func TestParseKeepsAtMostMaxKeys(t *testing.T) {
	var b strings.Builder
	var want []string
	for i := range MaxKeys + 3 {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		k, err := ssh.NewPublicKey(pub)
		require.NoError(t, err)
		line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
		b.WriteString(line + "\n" + line + " duplicate\n")
		if i < MaxKeys {
			want = append(want, line+" shared:jane")
		}
	}
	got := parse("f", "jane", []byte(b.String()))
	assert.Equal(t, want, got.Keys)
	require.Len(t, got.Warnings, 1)
	assert.Contains(t, got.Warnings[0], "more than 64 keys")
}

func TestReadMissingFileWarns(t *testing.T) {
	a, _ := home(t, "")
	got, err := Read(a)
	require.NoError(t, err)
	assert.Empty(t, got.Keys)
	require.Len(t, got.Warnings, 1)
	assert.Contains(t, got.Warnings[0], "does not exist")
}

func TestReadRefuses(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "shadow")
	require.NoError(t, os.WriteFile(outside, []byte(edKey+" root's\n"), 0o600))
	tests := []struct {
		name  string
		setup func(t *testing.T, a Account, file string)
		want  string
	}{
		{"symlink out of the home", func(t *testing.T, _ Account, file string) {
			require.NoError(t, os.Symlink(outside, file))
		}, "link out of it"},
		{"relative symlink out of the home", func(t *testing.T, a Account, file string) {
			rel, err := filepath.Rel(filepath.Dir(file), outside)
			require.NoError(t, err)
			require.NoError(t, os.Symlink(rel, file))
		}, "link out of it"},
		{".ssh a link out of the home", func(t *testing.T, a Account, _ string) {
			require.NoError(t, os.Rename(filepath.Join(a.Home, ".ssh"), filepath.Join(a.Home, "old")))
			require.NoError(t, os.Symlink(filepath.Dir(outside), filepath.Join(a.Home, ".ssh")))
			require.NoError(t, os.Rename(outside, filepath.Join(filepath.Dir(outside), "authorized_keys")))
			t.Cleanup(func() { _ = os.Rename(filepath.Join(filepath.Dir(outside), "authorized_keys"), outside) })
		}, "link out of it"},
		{"fifo", func(t *testing.T, _ Account, file string) {
			require.NoError(t, syscall.Mkfifo(file, 0o600))
		}, "not a regular file"},
		{"directory", func(t *testing.T, _ Account, file string) {
			require.NoError(t, os.Mkdir(file, 0o700))
		}, "not a regular file"},
		{"too big", func(t *testing.T, _ Account, file string) {
			require.NoError(t, os.WriteFile(file, []byte(strings.Repeat(edKey+" x\n", MaxFile/len(edKey)+1)), 0o600))
		}, "larger than"},
		{"group-writable", func(t *testing.T, _ Account, file string) {
			require.NoError(t, os.WriteFile(file, []byte(edKey+"\n"), 0o600))
			require.NoError(t, os.Chmod(file, 0o620))
		}, "writable by nobody else"},
		{"someone else's", func(t *testing.T, a Account, file string) {
			require.NoError(t, os.WriteFile(file, []byte(edKey+"\n"), 0o600))
		}, "must belong to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, file := home(t, "")
			tt.setup(t, a, file)
			if tt.name == "someone else's" {
				// The file is neither jane's nor root's.
				if os.Getuid() == 0 {
					require.NoError(t, os.Chown(file, 4242, 4242))
					a.UID = 4343
				} else {
					a.UID++
				}
			}
			got, err := Read(a)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), a.Home)
			assert.Empty(t, got.Keys)
		})
	}
}

func TestReadFollowsLinksInsideTheHome(t *testing.T) {
	a, file := home(t, "")
	require.NoError(t, os.WriteFile(filepath.Join(a.Home, "keys"), []byte(edKey+"\n"), 0o600))
	require.NoError(t, os.Symlink("../keys", file))
	got, err := Read(a)
	require.NoError(t, err)
	assert.Equal(t, []string{edKey + " shared:jane"}, got.Keys)
}
