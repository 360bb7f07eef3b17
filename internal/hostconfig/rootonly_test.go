package hostconfig

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rootOwnedBase returns a fresh directory whose every parent is root's
// alone (not under /tmp, which everybody may write), or skips the test when
// not running as root.
func rootOwnedBase(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: it plays files owned by another user")
	}
	for _, parent := range []string{"/run", "/var/lib", "/var/tmp"} {
		if _, err := walkRootOnly(parent); err != nil {
			continue
		}
		dir, err := os.MkdirTemp(parent, "devhost-rootonly-")
		if err != nil {
			continue
		}
		require.NoError(t, os.Chmod(dir, 0o755))
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
		return dir
	}
	t.Skip("no root-owned directory to work in")
	return ""
}

const nobody = 65534

// TestCheckRootOnly: a template directory that a user could change (the
// directory, a parent, a link on the way, a link's target, a template in
// it) is refused; one only root can change, or a missing one nobody else
// could create, is accepted.
func TestCheckRootOnly(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, base string) string // returns the template_dir
		refused string                                 // part of the error; "" = accepted
	}{
		{"root's own", func(t *testing.T, base string) string {
			return mkTemplates(t, filepath.Join(base, "etc", "templates"))
		}, ""},
		{"missing under root's directory", func(t *testing.T, base string) string {
			return filepath.Join(base, "etc", "nothing-here")
		}, ""},
		{"root's link to root's directory", func(t *testing.T, base string) string {
			mkTemplates(t, filepath.Join(base, "etc", "templates"))
			require.NoError(t, os.Symlink("etc/templates", filepath.Join(base, "link")))
			return filepath.Join(base, "link")
		}, ""},
		{"owned by a user", func(t *testing.T, base string) string {
			d := mkTemplates(t, filepath.Join(base, "etc", "templates"))
			require.NoError(t, os.Chown(d, nobody, nobody))
			return d
		}, "owned by uid 65534"},
		{"group-writable", func(t *testing.T, base string) string {
			d := mkTemplates(t, filepath.Join(base, "etc", "templates"))
			require.NoError(t, os.Chmod(d, 0o775))
			return d
		}, "writable by its group or others"},
		{"parent owned by a user", func(t *testing.T, base string) string {
			d := mkTemplates(t, filepath.Join(base, "home", "alice", "templates"))
			require.NoError(t, os.Chown(filepath.Join(base, "home", "alice"), nobody, nobody))
			return d
		}, "owned by uid 65534"},
		{"missing under a user's directory", func(t *testing.T, base string) string {
			d := filepath.Join(base, "home", "alice")
			require.NoError(t, os.MkdirAll(d, 0o755))
			require.NoError(t, os.Chown(d, nobody, nobody))
			return filepath.Join(d, "templates")
		}, "owned by uid 65534"},
		{"template owned by a user", func(t *testing.T, base string) string {
			d := mkTemplates(t, filepath.Join(base, "etc", "templates"))
			require.NoError(t, os.Chown(filepath.Join(d, "vhost.nix.tmpl"), nobody, nobody))
			return d
		}, "vhost.nix.tmpl is owned by uid 65534"},
		{"template writable by others", func(t *testing.T, base string) string {
			d := mkTemplates(t, filepath.Join(base, "etc", "templates"))
			require.NoError(t, os.Chmod(filepath.Join(d, "vhost.nix.tmpl"), 0o666))
			return d
		}, "writable by its group or others"},
		{"root's link in a user's directory", func(t *testing.T, base string) string {
			mkTemplates(t, filepath.Join(base, "etc", "templates"))
			home := filepath.Join(base, "home", "alice")
			require.NoError(t, os.MkdirAll(home, 0o755))
			require.NoError(t, os.Symlink(filepath.Join(base, "etc", "templates"), filepath.Join(home, "t")))
			require.NoError(t, os.Chown(home, nobody, nobody))
			return filepath.Join(home, "t")
		}, "owned by uid 65534"},
		{"root's link to a user's directory", func(t *testing.T, base string) string {
			d := mkTemplates(t, filepath.Join(base, "home", "alice", "templates"))
			require.NoError(t, os.Chown(filepath.Dir(d), nobody, nobody))
			require.NoError(t, os.MkdirAll(filepath.Join(base, "etc"), 0o755))
			require.NoError(t, os.Symlink(d, filepath.Join(base, "etc", "templates")))
			return filepath.Join(base, "etc", "templates")
		}, "owned by uid 65534"},
		{"template linked to a user's file", func(t *testing.T, base string) string {
			d := mkTemplates(t, filepath.Join(base, "etc", "templates"))
			evil := filepath.Join(base, "home", "evil.tmpl")
			require.NoError(t, os.MkdirAll(filepath.Dir(evil), 0o755))
			require.NoError(t, os.WriteFile(evil, []byte("{ }"), 0o644))
			require.NoError(t, os.Chown(evil, nobody, nobody))
			require.NoError(t, os.Remove(filepath.Join(d, "vhost.nix.tmpl")))
			require.NoError(t, os.Symlink(evil, filepath.Join(d, "vhost.nix.tmpl")))
			return d
		}, "evil.tmpl is owned by uid 65534"},
		{"a user's link, .. after it", func(t *testing.T, base string) string {
			mkTemplates(t, filepath.Join(base, "etc", "templates"))
			home := filepath.Join(base, "home", "alice")
			require.NoError(t, os.MkdirAll(filepath.Join(home, "sub"), 0o755))
			require.NoError(t, os.Chown(filepath.Join(home, "sub"), nobody, nobody))
			require.NoError(t, os.Symlink(filepath.Join(home, "sub"), filepath.Join(base, "etc", "l")))
			// Not filepath.Join, which would remove "l/.." lexically.
			return base + "/etc/l/../../etc/templates"
		}, "owned by uid 65534"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := rootOwnedBase(t)
			dir := tt.setup(t, base)
			err := CheckRootOnly(dir)
			if tt.refused == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.refused)
		})
	}
	assert.Error(t, CheckRootOnly("relative/templates"))
}

func mkTemplates(t *testing.T, dir string) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "vhost.nix.tmpl"), []byte("{ }"), 0o644))
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat(dir, &st))
	require.Equal(t, uint32(0), st.Uid)
	return dir
}
