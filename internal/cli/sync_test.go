package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syncDeployment is examples/shop's dev environment after `devhost up`:
// hostmap.json and ssh_config_dev name web's container.
func syncDeployment(t *testing.T, withSSHConfig bool) string {
	t.Helper()
	root := t.TempDir()
	cfg, err := os.ReadFile(filepath.Join(repoDir(t), "examples", "shop", "environments", "dev", "environment.cfg"))
	require.NoError(t, err)
	dir := filepath.Join(root, "environments", "dev")
	require.NoError(t, os.MkdirAll(filepath.Join(root, "src"), 0o755))
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "environment.cfg"), cfg, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hostmap.json"), []byte(`{"web": "3f2a9c01b7e", "db": "0a1b2c3d4e5"}`), 0o644))
	if withSSHConfig {
		require.NoError(t, os.WriteFile(filepath.Join(root, "ssh_config_dev"), []byte("\nHost 3f2a9c01b7e web\n    HostName 3f2a9c01b7e\n    ProxyJump dev.example.com\n"), 0o644))
	}
	return root
}

// Bad input is refused with one message, before rsync runs (there is no
// devhost here: a run would fail with exit status 2, not 1).
func TestSyncRefusesBadInput(t *testing.T) {
	tests := []struct {
		name      string
		sshConfig bool
		gitignore string
		args      []string
		want      string
	}{
		{"before devhost up", false, "", []string{"dev", "web", "src"}, "ssh_config_dev does not exist: run `devhost up dev` first"},
		{"host not yet up", true, "", []string{"dev", "db", "src"}, "ssh_config_dev has no entry for host db: run `devhost up dev --host db` first"},
		{"unknown host", true, "", []string{"dev", "mailer", "src"}, "environment dev has no provisioned host mailer (provisioned hosts: web, db)"},
		{"not provisioned", true, "", []string{"dev", "legacy", "src"}, "no provisioned host legacy"},
		{"source missing", true, "", []string{"dev", "web", "nope"}, "SRC nope: not a directory"},
		{"destination is the home", true, "", []string{"dev", "web", "src", "/srv/s-shop"}, "DEST /srv/s-shop would delete everything in it that is not in SRC"},
		{"destination is a parent", true, "", []string{"dev", "web", "src", "/srv/"}, "DEST /srv would delete"},
		{"destination escapes to the root", true, "", []string{"dev", "web", "src", "../.."}, "DEST / would delete"},
		{"bad .gitignore", true, "ok\n[oops\n", []string{"dev", "web", "src"}, "exclude file src/.gitignore:2: pattern \"[oops\": malformed"},
		{"missing exclude file", true, "", []string{"dev", "web", "src", "--exclude-from", "nope"}, "exclude file nope:"},
		{"unknown environment", true, "", []string{"prod", "web", "src"}, "Missing environment `prod`"},
		{"too few arguments", true, "", []string{"dev", "web"}, "accepts between 3 and 4 arg(s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := syncDeployment(t, tt.sshConfig)
			if tt.gitignore != "" {
				require.NoError(t, os.WriteFile(filepath.Join(root, "src", ".gitignore"), []byte(tt.gitignore), 0o644))
			}
			before := treeHash(t, root)
			code, out, errOut := runMain(t, root, append([]string{"sync"}, tt.args...)...)
			assert.Equal(t, 1, code, errOut)
			assert.Contains(t, errOut, tt.want)
			assert.Empty(t, out)
			assert.Equal(t, before, treeHash(t, root))
		})
	}
}

func TestSyncCompletion(t *testing.T) {
	root := syncDeployment(t, true)
	require.NoError(t, os.MkdirAll(filepath.Join(root, "environments", "prod"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "environments", "prod", "environment.cfg"), nil, 0o644))
	code, out, _ := runMain(t, root, "__complete", "sync", "")
	assert.Equal(t, 0, code)
	assert.Equal(t, "dev\nprod\n:4\n", out)
	code, out, _ = runMain(t, root, "__complete", "sync", "dev", "")
	assert.Equal(t, 0, code)
	assert.Equal(t, "web\ndb\n:4\n", out)
	code, out, _ = runMain(t, repoDir(t), "__complete", "sync", "--root", "examples/shop", "")
	assert.Equal(t, 0, code)
	assert.Equal(t, "broken\ndev\nreview\n:4\n", out)
}
