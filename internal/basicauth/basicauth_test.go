package basicauth

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewPassword(t *testing.T) {
	seen := map[string]bool{}
	counts := map[rune]int{}
	for range 200 {
		pw, err := NewPassword()
		require.NoError(t, err)
		require.Len(t, pw, PasswordLen)
		for _, r := range pw {
			require.Contains(t, alphabet, string(r))
			counts[r]++
		}
		require.False(t, seen[pw], "a password repeated")
		seen[pw] = true
	}
	// 4000 draws over 62 characters: every one appears (the chance one
	// is missing is below 1e-25), and none is drawn twice as often as
	// uniform would (a gross bias; the rejection itself is not testable
	// this way).
	assert.Len(t, counts, len(alphabet))
	for r, n := range counts {
		assert.Less(t, n, 2*4000/len(alphabet), "character %q", r)
	}
}

// glibcCrypt is the C library's crypt(3), the function nginx checks a
// password with, through Python's crypt module.
func glibcCrypt(t *testing.T, password, hash string) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	cmd := exec.Command(py, "-W", "ignore", "-c", "import crypt, sys; print(crypt.crypt(sys.stdin.readline().rstrip('\\n'), sys.argv[1]))", hash)
	cmd.Stdin = strings.NewReader(password + "\n")
	out, err := cmd.Output()
	require.NoError(t, err)
	return strings.TrimSpace(string(out))
}

func TestHashVerifiedByGlibcCrypt(t *testing.T) {
	pw, err := NewPassword()
	require.NoError(t, err)
	h, err := Hash(pw)
	require.NoError(t, err)
	require.Regexp(t, `^\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$`, h)
	assert.Equal(t, h, glibcCrypt(t, pw, h), "glibc accepts the password")
	assert.NotEqual(t, h, glibcCrypt(t, pw+"x", h), "glibc refuses another password")

	h2, err := Hash(pw)
	require.NoError(t, err)
	assert.NotEqual(t, h, h2, "every hash has its own salt")
}

func TestWriteFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "htpasswd")
	require.NoError(t, os.Mkdir(dir, 0o777))
	require.NoError(t, os.Chmod(dir, 0o777))
	gid := os.Getgid()
	if os.Geteuid() == 0 {
		gid = 4242 // as nginx' group would be
		require.NoError(t, os.Chown(dir, 0, gid))
	}
	path := filepath.Join(dir, "shop")
	pw, err := NewPassword()
	require.NoError(t, err)
	h, err := Hash(pw)
	require.NoError(t, err)
	require.NoError(t, WriteFile(path, "preview", h))

	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "preview:"+h+"\n", string(data))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, FileMode, fi.Mode().Perm())
	assert.Equal(t, uint32(gid), fi.Sys().(*syscall.Stat_t).Gid, "the directory's group")
	di, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, DirMode, di.Mode().Perm(), "a too open directory is closed")
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, ents, 1, "no temporary file left")

	// A new password replaces the line.
	h2, err := Hash("other")
	require.NoError(t, err)
	require.NoError(t, WriteFile(path, "customer", h2))
	data, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "customer:"+h2+"\n", string(data))
}

func TestWriteFileRefuses(t *testing.T) {
	h, err := Hash("pw")
	require.NoError(t, err)
	base := t.TempDir()
	real := filepath.Join(base, "real")
	require.NoError(t, os.Mkdir(real, 0o750))
	require.NoError(t, os.Symlink(real, filepath.Join(base, "link")))

	for _, tc := range []struct {
		name, path, user, hash, want string
	}{
		{"colon in user", filepath.Join(real, "a"), "a:b", h, "user name"},
		{"newline in user", filepath.Join(real, "a"), "a\nb", h, "user name"},
		{"empty user", filepath.Join(real, "a"), "", h, "user name"},
		{"plain text", filepath.Join(real, "a"), "preview", "secret", "not a SHA-512 crypt hash"},
		{"newline in hash", filepath.Join(real, "a"), "preview", h + "\nx:y", "not a SHA-512 crypt hash"},
		{"linked directory", filepath.Join(base, "link", "a"), "preview", h, "not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := WriteFile(tc.path, tc.user, tc.hash)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), h, "no hash in an error")
			_, statErr := os.Lstat(filepath.Join(real, "a"))
			assert.True(t, os.IsNotExist(statErr), "nothing written")
		})
	}
}
