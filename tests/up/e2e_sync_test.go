package up

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serviceUID is s-shop's uid in the test's containers.
const serviceUID = 1500

// syncContainerSudo is the containers' sudo for the sync test: it records its
// argv, and for -u USER really becomes that user (setpriv, with the
// container's own /etc/passwd), so what rsync writes is owned by USER as
// on a real container, and a write the user may not make fails.
const syncContainerSudo = `#!/bin/sh
printf '%s\n' "$*" >> /sudo.log
user=
while :; do
  case "$1" in
    -n|-i|-E|-H) shift ;;
    -u) user=$2; shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
if [ -n "$user" ]; then
  exec setpriv --reuid="$user" --regid="$user" --clear-groups -- "$@"
fi
exec "$@"
`

// syncCmd runs `devhost sync` (the real binary) on the laptop side.
func (e *e2e) syncCmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + e.netns, "--", filepath.Join(binDir, "devhost"), "sync"}, args...)...)
	cmd.Dir = e.deploy
	cmd.Env = e.env
	return cmd
}

func TestSyncEndToEnd(t *testing.T) {
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv (util-linux) not found: the containers' sudo needs it to become the service user")
	}
	e := newE2E(t, e2eOpts{})

	// Before devhost up: a clear message, nothing run.
	r := e.run("sync", "dev", "web", ".")
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, "ssh_config_dev does not exist: run `devhost up dev` first")

	r = e.up("dev")
	require.Equal(t, 0, r.code, "devhost up dev:\n%s%s", r.stderr, r.stdout)
	web := e.hostmap()["web"]
	croot := e.path("containers", web)

	// The container as NixOS makes it: the service user with its home.
	write(t, filepath.Join(croot, "etc/passwd"), "root:x:0:0::/root:/bin/sh\ns-shop:x:1500:1500::/srv/s-shop:/bin/sh\n", 0o644)
	write(t, filepath.Join(croot, "etc/group"), "root:x:0:\ns-shop:x:1500:\n", 0o644)
	require.NoError(t, os.Chown(filepath.Join(croot, "srv/s-shop"), serviceUID, serviceUID))
	write(t, e.path("cbin", "sudo"), syncContainerSudo, 0o755)

	// The code: a .git directory, an exclude file, files it leaves out.
	src := filepath.Join(e.deploy, "src")
	write(t, filepath.Join(src, "app.py"), "print('v1')\n", 0o644)
	write(t, filepath.Join(src, "pkg", "mod.py"), "x = 1\n", 0o644)
	write(t, filepath.Join(src, "pkg", "mod.pyc"), "bytecode", 0o644)
	write(t, filepath.Join(src, "node_modules", "dep.js"), "dep", 0o644)
	write(t, filepath.Join(src, ".git", "HEAD"), "ref: refs/heads/main\n", 0o644)
	write(t, filepath.Join(src, ".gitignore"), "*.pyc\nnode_modules/\n", 0o644)
	write(t, filepath.Join(src, "gone.txt"), "deleted locally later", 0o644)

	r = e.run("sync", "dev", "web", "./src")
	require.Equal(t, 0, r.code, "devhost sync:\n%s%s", r.stderr, r.stdout)
	assert.Regexp(t, `^synced 5 files to web:/srv/s-shop/src in [0-9.]+s\n$`, r.stdout)
	dest := filepath.Join(croot, "srv/s-shop/src")
	assert.Equal(t, "print('v1')\n", e.containerFile(web, "srv/s-shop/src/app.py"))
	assert.Equal(t, "x = 1\n", e.containerFile(web, "srv/s-shop/src/pkg/mod.py"))
	assert.NoFileExists(t, filepath.Join(dest, "pkg", "mod.pyc"))
	assert.NoDirExists(t, filepath.Join(dest, "node_modules"))
	assert.NoDirExists(t, filepath.Join(dest, ".git"))
	for _, p := range []string{"", "app.py", "pkg", "pkg/mod.py", ".gitignore"} {
		fi, err := os.Stat(filepath.Join(dest, p))
		require.NoError(t, err)
		st := fi.Sys().(*syscall.Stat_t)
		assert.Equal(t, uint32(serviceUID), st.Uid, "owner of %s", p)
	}
	log := e.containerFile(web, "sudo.log")
	assert.Contains(t, log, "-n -u s-shop -- rsync --server")

	// A deletion is synced; a second run with nothing changed copies nothing.
	require.NoError(t, os.Remove(filepath.Join(src, "gone.txt")))
	r = e.run("sync", "dev", "web", "./src", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var line struct {
		Host, Name, Dest string
		Files, Deleted   int
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &line))
	assert.Equal(t, "web", line.Host)
	assert.Equal(t, web, line.Name)
	assert.Equal(t, "/srv/s-shop/src", line.Dest)
	assert.Equal(t, 0, line.Files)
	assert.Equal(t, 1, line.Deleted)
	assert.NoFileExists(t, filepath.Join(dest, "gone.txt"))

	// The service user may not write where it has no right to: rsync
	// really runs as s-shop.
	r = e.run("sync", "dev", "web", "./src", "/etc/local/nixos/code")
	assert.Equal(t, 2, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stderr, "rsync failed with exit status")
	assert.NoDirExists(t, filepath.Join(croot, "etc/local/nixos/code"))

	// Refused before anything runs: DEST the service user's home.
	r = e.run("sync", "dev", "web", "./src", "/srv/s-shop")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "DEST /srv/s-shop would delete everything in it that is not in SRC")

	t.Run("watch", func(t *testing.T) { e.syncWatch(t, web, src) })
}

// syncWatch runs `devhost sync --watch`: an atomic save is synced, and
// Ctrl-C ends the watch with status 0.
func (e *e2e) syncWatch(t *testing.T, web, src string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := e.syncCmd(ctx, "dev", "web", "./src", "--watch")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	lines := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func() string {
		t.Helper()
		select {
		case l, ok := <-lines:
			require.True(t, ok, "devhost sync --watch ended: %s", stderr.String())
			return l
		case <-time.After(60 * time.Second):
			t.Fatalf("no sync line within a minute; stderr: %s", stderr.String())
		}
		return ""
	}
	assert.Regexp(t, `^synced 0 files to web:/srv/s-shop/src in `, next(), "the initial sync")

	// An editor's atomic save.
	write(t, filepath.Join(src, ".app.py.tmp"), "print('v2')\n", 0o644)
	require.NoError(t, os.Rename(filepath.Join(src, ".app.py.tmp"), filepath.Join(src, "app.py")))
	assert.Regexp(t, `^synced 1 file to web:/srv/s-shop/src in `, next())
	assert.Equal(t, "print('v2')\n", e.containerFile(web, "srv/s-shop/src/app.py"))

	// A new directory, and a file in it.
	write(t, filepath.Join(src, "new", "deep.py"), "y = 2\n", 0o644)
	l := next()
	for !strings.HasPrefix(l, "synced 1 file") && strings.HasPrefix(l, "synced 0 files") {
		l = next() // the directory's own event may come as a batch of its own
	}
	assert.Regexp(t, `^synced 1 file to `, l)
	assert.Equal(t, "y = 2\n", e.containerFile(web, "srv/s-shop/src/new/deep.py"))

	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	err = cmd.Wait()
	assert.NoError(t, err, "Ctrl-C ends the watch cleanly: %s", stderr.String())
}

// run runs the real devhost binary with any command on the laptop side.
func (e *e2e) run(args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + e.netns, "--", filepath.Join(binDir, "devhost")}, args...)...)
	cmd.Dir = e.deploy
	cmd.Env = e.env
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		require.ErrorAs(e.t, err, &ee, "devhost %v", args)
		code = ee.ExitCode()
	}
	return result{stdout.String(), stderr.String(), code}
}
