package tests

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/generator"
)

// glibcAccepts reports whether the C library's crypt(3), which nginx
// checks basic auth with, accepts password for hash (through Python's
// crypt module, the password on stdin).
func glibcAccepts(t *testing.T, password, hash string) bool {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	cmd := exec.Command(py, "-W", "ignore", "-c", "import crypt, sys; print(crypt.crypt(sys.stdin.readline().rstrip('\\n'), sys.argv[1]) == sys.argv[1])", hash)
	cmd.Stdin = strings.NewReader(password + "\n")
	out, err := cmd.Output()
	require.NoError(t, err)
	return strings.TrimSpace(string(out)) == "True"
}

// filesContaining lists the files under dir whose content has s.
func filesContaining(t *testing.T, dir, s string) []string {
	t.Helper()
	var found []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(s)) {
			found = append(found, p)
		}
		return nil
	}))
	return found
}

// TestProtect: through the real binary, protect puts a SHA-512 crypt hash
// glibc accepts into a 0640 file of the state directory, the vhost names
// it in the generated set (evaluated by real Nix in the rebuild double),
// status and the status page say so, the password is printed once and
// lands in no file; another protect replaces it without a rebuild, and
// --off takes it all away again.
func TestProtect(t *testing.T) {
	t.Parallel()
	needNix(t)
	s := newSandbox(t, sandboxOpts{})
	s.ok("alice", "ensure", "shop", "--channel", channel)
	s.ok("alice", "ensure", "other", "--channel", channel)
	rebuilds := len(s.successfulRebuilds())

	r := s.ok("alice", "protect", "shop")
	m := regexp.MustCompile(`(?m)^password: ([0-9A-Za-z]{20})$`).FindStringSubmatch(r.stdout)
	require.NotNil(t, m, r.stdout)
	pw := m[1]
	assert.Contains(t, r.stdout, "user:     preview\n")
	assert.NotContains(t, r.stderr, pw)
	assert.Len(t, s.successfulRebuilds(), rebuilds+1, "one host rebuild")

	file := generator.BasicAuthPath(s.config(), "shop")
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	user, hash, ok := strings.Cut(strings.TrimSuffix(string(b), "\n"), ":")
	require.True(t, ok, string(b))
	assert.Equal(t, "preview", user)
	assert.True(t, glibcAccepts(t, pw, hash), "glibc's crypt accepts the printed password")
	assert.False(t, glibcAccepts(t, pw[1:], hash))
	fi, err := os.Stat(file)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
	di, err := os.Stat(filepath.Dir(file))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o750), di.Mode().Perm())
	assert.Equal(t, uint32(0), fi.Sys().(*syscall.Stat_t).Uid)
	assert.Equal(t, di.Sys().(*syscall.Stat_t).Gid, fi.Sys().(*syscall.Stat_t).Gid, "the directory's group (nginx')")
	assert.Empty(t, filesContaining(t, s.dir, pw), "the password is in no file (log, registry, record)")

	assert.Equal(t, "preview", s.entry("shop").ProtectUser)
	assert.Contains(t, s.ok("bob", "status", "shop").stdout, "protected:    HTTP basic auth, user preview\n")
	var st struct {
		Protected   bool   `json:"protected"`
		ProtectUser string `json:"protect_user"`
	}
	require.NoError(t, json.Unmarshal([]byte(s.ok("bob", "status", "shop", "--json").stdout), &st))
	assert.True(t, st.Protected)
	assert.Equal(t, "preview", st.ProtectUser)

	page, err := os.ReadFile(filepath.Join(s.config().GeneratedDir, generator.StatusFile))
	require.NoError(t, err)
	assert.Contains(t, string(page), "<td>shop (protected)</td>")
	assert.Contains(t, string(page), "<td>other</td>")
	assert.NotContains(t, string(page), "preview", "the user is not public")
	nixFile, err := os.ReadFile(filepath.Join(s.config().GeneratedDir, "containers", "shop.nix"))
	require.NoError(t, err)
	assert.Contains(t, string(nixFile), `basicAuthFile = "`+file+`";`)

	// Others may not; bad users change nothing.
	before, _ := os.ReadFile(file)
	r = s.runAs("bob", "protect", "shop")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, `belongs to "alice"`)
	r = s.runAs("alice", "protect", "shop", "--user", "a:b")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "user name")
	r = s.runAs("alice", "protect", "shop", "--off", "--user", "x")
	assert.Equal(t, 1, r.code)
	after, _ := os.ReadFile(file)
	assert.Equal(t, before, after)

	// A new password, for another user, as JSON; no rebuild needed.
	rebuilds = len(s.successfulRebuilds())
	var out struct {
		Name      string `json:"name"`
		Protected bool   `json:"protected"`
		User      string `json:"user"`
		Password  string `json:"password"`
	}
	require.NoError(t, json.Unmarshal([]byte(s.ok("carol", "protect", "shop", "--user", "acme-corp", "--json").stdout), &out))
	assert.Equal(t, "shop", out.Name)
	assert.True(t, out.Protected)
	assert.Equal(t, "acme-corp", out.User)
	assert.Len(t, out.Password, 20)
	assert.NotEqual(t, pw, out.Password)
	assert.Len(t, s.successfulRebuilds(), rebuilds)
	b, err = os.ReadFile(file)
	require.NoError(t, err)
	user, hash, _ = strings.Cut(strings.TrimSuffix(string(b), "\n"), ":")
	assert.Equal(t, "acme-corp", user)
	assert.True(t, glibcAccepts(t, out.Password, hash))
	assert.False(t, glibcAccepts(t, pw, hash), "the old password no longer works")

	r = s.ok("alice", "protect", "shop", "--off")
	assert.Contains(t, r.stdout, "no longer protected")
	assert.NoFileExists(t, file)
	assert.Empty(t, s.entry("shop").ProtectUser)
	assert.NotContains(t, s.ok("bob", "status", "shop").stdout, "protected")
	page, err = os.ReadFile(filepath.Join(s.config().GeneratedDir, generator.StatusFile))
	require.NoError(t, err)
	assert.NotContains(t, string(page), "(protected)")
	nixFile, err = os.ReadFile(filepath.Join(s.config().GeneratedDir, "containers", "shop.nix"))
	require.NoError(t, err)
	assert.NotContains(t, string(nixFile), "basicAuthFile")
	s.checkConsistent()
}
