package provision

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeBin writes test doubles for ssh, rsync and sudo into a directory:
// ssh records its argv (one word a line) and its stdin, then runs the
// remote command with sh locally; sudo drops its options; rsync records its
// argv and copies the file into <root><remote path>.
func fakeBin(t *testing.T, root string) (bin, log string) {
	t.Helper()
	bin = t.TempDir()
	log = filepath.Join(t.TempDir(), "log")
	write := func(name, body string) {
		require.NoError(t, os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body), 0o755))
	}
	write("ssh", `{ echo "ssh"; for a in "$@"; do echo "arg:$a"; done; } >>`+Quote(log)+`
for cmd; do :; done
export ROOT=`+Quote(root)+` PATH=`+Quote(bin)+`:"$PATH"
exec sh -c "$cmd"
`)
	write("sudo", `while :; do case "$1" in -n|-i) shift;; -u) shift 2;; --) shift; break;; *) break;; esac; done
exec "$@"
`)
	write("cat", `exec /bin/cat "$@"`)
	write("rsync", `{ echo "rsync"; echo "rsh:$RSYNC_RSH"; for a in "$@"; do echo "arg:$a"; done; } >>`+Quote(log)+`
for last; do :; done
dest=${last#*:}
mkdir -p "$(dirname `+Quote(root)+`"$dest")"
eval "src=\${$(($#-1))}"
/bin/cp "$src" `+Quote(root)+`"$dest"
`)
	return bin, log
}

func testScript(t *testing.T, provisionSh string) (*Script, string, string) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found: the provision wrapper needs bash")
	}
	envDir := t.TempDir()
	root := t.TempDir()
	bin, log := fakeBin(t, root)
	if provisionSh != "" {
		require.NoError(t, os.WriteFile(filepath.Join(envDir, "provision.sh"), []byte(provisionSh), 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(envDir, "provision.nix"), []byte("{ }\n"), 0o644))
	s := &Script{
		SSH: filepath.Join(bin, "ssh"), Rsync: filepath.Join(bin, "rsync"),
		EnvDir: envDir, HasScript: provisionSh != "", CopyNix: true, ServiceUser: "s-shop",
		Env: []string{
			"PATH=" + bin + ":/usr/bin:/bin",
			"SSH_CONFIG=/p/ssh_config_dev", "PROVISION_CONTAINER=abc0123def4", "RSYNC_RSH=ssh -F /p/ssh_config_dev",
			"COMPONENT_DB_PASSWORD=it's $(secret) `x` \"q\"",
		},
		TempDir: t.TempDir(),
	}
	return s, root, log
}

func TestScriptCopyRunEcho(t *testing.T) {
	// Remote paths are relative to ROOT in the doubles, hence $ROOT in RUN.
	s, root, log := testScript(t, `COPY seed.sql /srv/s-shop/schema.sql
RUN mkdir -p '$ROOT/srv/s-shop/uploads'
RUN echo "ran as $(id -un)" '>' '$ROOT/run.out'
ECHO "$COMPONENT_DB_PASSWORD" /nonexistent-devhost-test/pass
`)
	require.NoError(t, os.WriteFile(filepath.Join(s.EnvDir, "seed.sql"), []byte("create table x;\n"), 0o644))
	// The doubles map COPY's and RUN's paths under ROOT but not ECHO's
	// (TestScriptEchoWritesStdin covers that): the last ECHO fails, and
	// its ssh command line is what is checked here.
	var out, errOut strings.Builder
	err := s.Run(context.Background(), &out, &errOut)
	var se *ScriptError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 4, se.Line)
	logData, rerr := os.ReadFile(log)
	require.NoError(t, rerr)
	l := string(logData)

	copied, cerr := os.ReadFile(filepath.Join(root, "srv/s-shop/schema.sql"))
	require.NoError(t, cerr)
	assert.Equal(t, "create table x;\n", string(copied))
	nix, nerr := os.ReadFile(filepath.Join(root, "etc/local/nixos/provision-container.nix"))
	require.NoError(t, nerr)
	assert.Equal(t, "{ }\n", string(nix))
	assert.DirExists(t, filepath.Join(root, "srv/s-shop/uploads"))

	assert.Contains(t, l, "arg:--rsync-path=sudo -n -u s-shop rsync\n")
	// No ssh of the wrapper may prompt: it is in a background process
	// group, where reading the terminal stops it (SIGTTIN) for good.
	assert.Contains(t, l, "rsh:ssh -F /p/ssh_config_dev -o BatchMode=yes\n")
	var sshRuns int
	for _, rec := range strings.Split(l, "\nssh\n")[1:] {
		sshRuns++
		assert.True(t, strings.HasPrefix(rec, "arg:-o\narg:BatchMode=yes\narg:-F\n"), "ssh in batch mode: %s", rec)
	}
	assert.Equal(t, 3, sshRuns, "two RUNs and an ECHO:\n%s", l)
	assert.Contains(t, l, "arg:abc0123def4:/srv/s-shop/schema.sql\n")
	assert.Contains(t, l, "arg:sudo -n -- sh -c 'mkdir -p $ROOT/srv/s-shop/uploads'\n")
	assert.Contains(t, l, "arg:sudo -n -- sh -c 'cat > '\\''/nonexistent-devhost-test/pass'\\'''\n")
	// The secret never appears in any argv.
	assert.NotContains(t, l, "secret")
	assert.NotContains(t, out.String()+errOut.String(), "secret")
}

func TestScriptEchoWritesStdin(t *testing.T) {
	// bashCompat "32": the quoting of macOS's /bin/bash 3.2 (and every
	// bash before 4.3), where the replacement of ${x//pat/rep} inside
	// double quotes keeps its backslashes and quotes.
	for _, bashCompat := range []string{"", "32", "42"} {
		t.Run("BASH_COMPAT="+bashCompat, func(t *testing.T) {
			s, root, _ := testScript(t, `ECHO "$COMPONENT_DB_PASSWORD" "$ROOT/pass file"
ECHO "second" "$ROOT/it's \$(x) \"q\""
RUN echo "\"it's\"" '>' '"$ROOT/run it'"'"'s"'
`)
			s.Env = append(s.Env, "ROOT="+root)
			if bashCompat != "" {
				s.Env = append(s.Env, "BASH_COMPAT="+bashCompat)
			}
			require.NoError(t, s.Run(context.Background(), os.Stderr, os.Stderr))
			got, err := os.ReadFile(filepath.Join(root, "pass file"))
			require.NoError(t, err)
			assert.Equal(t, "it's $(secret) `x` \"q\"\n", string(got))
			// The remote path went through the container's shell quoted.
			got, err = os.ReadFile(filepath.Join(root, `it's $(x) "q"`))
			require.NoError(t, err)
			assert.Equal(t, "second\n", string(got))
			got, err = os.ReadFile(filepath.Join(root, "run it's"))
			require.NoError(t, err)
			assert.Equal(t, "it's\n", string(got))
			// The wrapper directory is gone.
			entries, err := os.ReadDir(s.TempDir)
			require.NoError(t, err)
			assert.Empty(t, entries)
		})
	}
}

func TestScriptFailureNamesLine(t *testing.T) {
	tests := []struct {
		name, script string
		line         int
		status       int
		text         string
	}{
		{"plain command", "true\n\nfalse\ntrue\n", 3, 1, "false"},
		{"RUN fails remotely", "# comment\nRUN 'exit 7'\n", 2, 7, "RUN 'exit 7'"},
		{"ECHO without target", "true\nECHO $UNSET_VALUE /path\n", 2, 2, "ECHO $UNSET_VALUE /path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, _ := testScript(t, tt.script)
			s.CopyNix = false
			err := s.Run(context.Background(), &strings.Builder{}, &strings.Builder{})
			var se *ScriptError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tt.line, se.Line)
			assert.Equal(t, tt.status, se.Status)
			assert.Equal(t, tt.text, se.Text)
			entries, _ := os.ReadDir(s.TempDir)
			assert.Empty(t, entries, "wrapper directory removed")
		})
	}
}

func TestScriptCancelRemovesWrapper(t *testing.T) {
	s, _, _ := testScript(t, "sleep 30\n")
	s.CopyNix = false
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, &strings.Builder{}, &strings.Builder{}) }()
	// Wait for the wrapper to exist, then interrupt.
	require.Eventually(t, func() bool {
		e, _ := os.ReadDir(s.TempDir)
		return len(e) == 1
	}, 5*time.Second, 10*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.Error(t, err)
		assert.True(t, errors.Is(err, context.Canceled))
	case <-time.After(10 * time.Second):
		t.Fatal("script not stopped")
	}
	entries, _ := os.ReadDir(s.TempDir)
	assert.Empty(t, entries)
}

func TestWrapperPrivate(t *testing.T) {
	s, _, _ := testScript(t, "true\n")
	w, err := s.Wrapper("/tmp/x/status")
	require.NoError(t, err)
	assert.NotContains(t, string(w), "secret", "no value in the script")
	// bash accepts it.
	cmd := exec.Command("bash", "-n")
	cmd.Stdin = strings.NewReader(string(w))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
}
