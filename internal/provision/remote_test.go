package provision

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/limits"
	"github.com/flyingcircusio/devhost/internal/progress"
)

// fakeSSH writes an ssh double that records its argv and answers with body
// (a shell script fragment that sees the remote command as $cmd).
func fakeSSH(t *testing.T, body string) (ssh, log string) {
	t.Helper()
	dir := t.TempDir()
	log = filepath.Join(dir, "log")
	ssh = filepath.Join(dir, "ssh")
	require.NoError(t, os.WriteFile(ssh, []byte(`#!/bin/sh
for a in "$@"; do printf '%s\n' "$a"; done >> `+Quote(log)+`
echo --- >> `+Quote(log)+`
for cmd; do :; done
`+body), 0o755))
	return ssh, log
}

func TestSSHDevhostQuotesEveryArgument(t *testing.T) {
	ssh, log := fakeSSH(t, `echo '{"name":"x","host_key":"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGc7V2c2zFPRMl8/gmBv1/MEldEuJau8jHjhx+2qziYs root@x"}'`)
	d := &SSHDevhost{SSH: ssh, Options: []string{"-F", "/p/ssh_config"}, Host: "dev.example.com"}
	res, err := d.Ensure(context.Background(), EnsureRequest{
		Name: "abc", Channel: "https://example.com/a~b/nixexprs.tar.xz", Aliases: []string{"shop"},
		Environment: "dev", Root: "/home/al ice/it's", ServiceUser: "s-shop",
		SSHKeys:      []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGc7V2c2zFPRMl8/gmBv1/MEldEuJau8jHjhx+2qziYs devhost:dev"},
		ProvisionNix: []byte("{ }"),
	})
	require.NoError(t, err)
	assert.Equal(t, "running", res.State)
	assert.Equal(t, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGc7V2c2zFPRMl8/gmBv1/MEldEuJau8jHjhx+2qziYs", res.HostKey)
	data, err := os.ReadFile(log)
	require.NoError(t, err)
	args := strings.Split(strings.TrimSuffix(string(data), "\n---\n"), "\n")
	require.Len(t, args, 5)
	assert.Equal(t, []string{"-F", "/p/ssh_config", "--", "dev.example.com"}, args[:4])
	assert.Equal(t, "sudo -n -- devhost ensure abc --channel 'https://example.com/a~b/nixexprs.tar.xz' --alias shop --environment dev "+
		"--service-user s-shop --root '/home/al ice/it'\\''s' --ssh-key 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGc7V2c2zFPRMl8/gmBv1/MEldEuJau8jHjhx+2qziYs devhost:dev' "+
		"--provision-nix - --json", args[4])
}

// TestSSHDevhostSendsLimits: set limits go all together (unset ones empty,
// so the devhost clears them), the expiry in minutes; none set sends none.
func TestSSHDevhostSendsLimits(t *testing.T) {
	for _, tt := range []struct {
		req  EnsureRequest
		want string
	}{
		{EnsureRequest{Limits: limits.Limits{MemoryMax: "2G", TasksMax: 4096}, ExpireAfter: 72 * time.Hour},
			" --memory-max=2G --cpu-weight= --cpu-quota= --tasks-max=4096 --expire-after=4320m --json"},
		{EnsureRequest{Limits: limits.Limits{CPUWeight: 50, CPUQuota: "200%"}},
			" --memory-max= --cpu-weight=50 --cpu-quota=200% --tasks-max= --json"},
		{EnsureRequest{}, "--channel https://example.com/c --json"},
	} {
		ssh, log := fakeSSH(t, `echo '{"name":"abc"}'`)
		d := &SSHDevhost{SSH: ssh, Host: "dev.example.com"}
		tt.req.Name, tt.req.Channel = "abc", "https://example.com/c"
		_, err := d.Ensure(context.Background(), tt.req)
		require.NoError(t, err)
		data, err := os.ReadFile(log)
		require.NoError(t, err)
		args := strings.Split(strings.TrimSuffix(string(data), "\n---\n"), "\n")
		assert.True(t, strings.HasSuffix(args[len(args)-1], tt.want), "%s", args[len(args)-1])
	}
}

func TestSSHDevhostRefusesBadValuesBeforeConnecting(t *testing.T) {
	ssh, log := fakeSSH(t, "exit 0")
	d := &SSHDevhost{SSH: ssh, Host: "dev.example.com"}
	for _, req := range []EnsureRequest{
		{Name: "Bad_Name", Channel: "https://example.com/c"},
		{Name: "ok", Channel: `https://example.com/"; rm -rf /`},
		{Name: "ok", Channel: "https://example.com/c", Aliases: []string{"a b"}},
		{Name: "ok", Channel: "https://example.com/c", ServiceUser: "root;id"},
		{Name: "ok", Channel: "https://example.com/c", SSHKeys: []string{"not a key"}},
		{Name: "ok", Channel: "https://example.com/c", Limits: limits.Limits{MemoryMax: "1G; id"}},
		{Name: "ok", Channel: "https://example.com/c", Limits: limits.Limits{CPUWeight: 10001}},
		{Name: "ok", Channel: "https://example.com/c", ExpireAfter: 400 * 24 * time.Hour},
		{Name: "ok", Channel: "https://example.com/c", ExpireAfter: time.Second},
	} {
		_, err := d.Ensure(context.Background(), req)
		assert.Error(t, err, "%+v", req)
	}
	_, err := (&SSHDevhost{SSH: ssh, Host: "-oProxyCommand=x"}).Reserve(context.Background())
	assert.Error(t, err)
	_, err = os.Stat(log)
	assert.True(t, os.IsNotExist(err), "ssh never ran")
}

func TestSSHDevhostFallsBackToCompat(t *testing.T) {
	ssh, log := fakeSSH(t, `case "$cmd" in
*"devhost reserve"*) echo "sudo: devhost: command not found" >&2; exit 1;;
*"nixos-container list"*) printf 'aaaaaaaaaaa\nbbbbbbbbbbb\n';;
*) exit 3;;
esac`)
	var notices []string
	d := &SSHDevhost{SSH: ssh, Host: "dev.example.com", AutoCompat: true, Notice: func(s string) { notices = append(notices, s) }}
	name, err := d.Reserve(context.Background())
	require.NoError(t, err)
	assert.Len(t, name, 11)
	assert.True(t, d.Compat)
	require.Len(t, notices, 1)
	assert.Contains(t, notices[0], "fc-build-dev-container")
	data, _ := os.ReadFile(log)
	// batou runs it without sudo, and the old devhost's sudo rules allow
	// only fc-build-dev-container: `sudo -n nixos-container list` is refused.
	assert.Contains(t, string(data), "\nnixos-container list\n")
	assert.NotContains(t, string(data), "sudo -n -- nixos-container")

	// Without AutoCompat the refusal is an error that says so.
	d = &SSHDevhost{SSH: ssh, Host: "dev.example.com"}
	_, err = d.Reserve(context.Background())
	var re *RemoteError
	require.ErrorAs(t, err, &re)
	assert.Contains(t, err.Error(), "the devhost refused: sudo: devhost: command not found")
}

// TestSSHDevhostFallsBackBehindSudo: real sudo cannot match a command it
// cannot find against the old devhost's rules (fc-build-dev-container
// only) and answers "a password is required"; a look for devhost without
// sudo tells a missing command from a refusal.
func TestSSHDevhostFallsBackBehindSudo(t *testing.T) {
	for _, tt := range []struct {
		name    string
		probe   string // how `command -v devhost` ends
		compat  bool
		refusal bool
	}{
		{"devhost missing", "exit 1", true, false},
		{"devhost there, the user may not run it", "echo /run/current-system/sw/bin/devhost", false, true},
		{"devhost unreachable", "exit 255", false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ssh, log := fakeSSH(t, `case "$cmd" in
"sudo -n -- devhost destroy abc") echo "sudo: a password is required" >&2; exit 1;;
"command -v devhost") `+tt.probe+`;;
"sudo -n -- fc-build-dev-container destroy abc") exit 0;;
*) exit 3;;
esac`)
			d := &SSHDevhost{SSH: ssh, Host: "dev.example.com", AutoCompat: true}
			err := d.Destroy(context.Background(), "abc")
			assert.Equal(t, tt.compat, d.Compat)
			if tt.refusal {
				assert.ErrorContains(t, err, "a password is required")
			} else {
				assert.NoError(t, err)
			}
			data, _ := os.ReadFile(log)
			assert.Contains(t, string(data), "\ncommand -v devhost\n", "looked for devhost without sudo")
		})
	}
}

func TestRemoteErrorMessages(t *testing.T) {
	tests := []struct {
		err  RemoteError
		want string
	}{
		{RemoteError{Host: "d", What: "reserve a name", Status: 255, Stderr: "ssh: connect to host d port 22: Connection refused\n"},
			"d: cannot reserve a name: the devhost cannot be reached: ssh: connect to host d port 22: Connection refused; check the provisioner's host and that `ssh d true` works"},
		{RemoteError{Host: "d", What: "reserve a name", Status: 255, Stderr: "root@d: Permission denied (publickey).\n"},
			"d: cannot reserve a name: the devhost refused the ssh key (root@d: Permission denied (publickey).); check that `ssh d` works with your keys or ssh_config"},
		{RemoteError{Host: "d", What: "ensure container x", Status: 2, Stderr: "boom"},
			"d: cannot ensure container x: remote command failed with exit status 2: boom"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.err.Error())
	}
}

// A devhost with --progress streams JSON lines on stderr: they become
// events, not output or error text; one without the flag (an older
// devhost, whose cobra refuses it) is asked again without, once.
func TestSSHDevhostEnsureProgress(t *testing.T) {
	ssh, log := fakeSSH(t, `case "$cmd" in
*--progress=json*)
  if [ -e "$(dirname "$0")/old" ]; then echo "devhost: unknown flag: --progress" >&2; exit 1; fi
  echo '{"devhost":"progress","phase":"building","container":"abc","elapsed_ms":1500,"detail":"building x"}' >&2
  echo 'a plain line' >&2
  printf '{"devhost":"progress","phase":"done","container":"abc","elapsed_ms":9000}' >&2
  echo '{"name":"abc"}';;
*) echo '{"name":"abc"}';;
esac`)
	var (
		events []progress.Event
		stderr strings.Builder
	)
	rep := progress.Func(func(e progress.Event) { events = append(events, e) })
	d := &SSHDevhost{SSH: ssh, Host: "dev.example.com", Stderr: &stderr}
	req := EnsureRequest{Name: "abc", Channel: "https://example.com/c", Progress: rep}
	_, err := d.Ensure(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, []progress.Event{
		{Phase: progress.Building, Container: "abc", Elapsed: 1500 * time.Millisecond, Detail: "building x"},
		{Phase: progress.Done, Container: "abc", Elapsed: 9 * time.Second},
	}, events)
	assert.Equal(t, "a plain line\n", stderr.String())

	// The old devhost.
	require.NoError(t, os.WriteFile(filepath.Join(filepath.Dir(ssh), "old"), nil, 0o644))
	require.NoError(t, os.Remove(log))
	events = nil
	for range 2 {
		_, err = d.Ensure(context.Background(), req)
		require.NoError(t, err)
	}
	assert.Empty(t, events)
	data, err := os.ReadFile(log)
	require.NoError(t, err)
	// Asked with the flag once, then without, and without from then on.
	assert.Equal(t, 1, strings.Count(string(data), "--progress=json"))
	assert.Equal(t, 3, strings.Count(string(data), "devhost ensure abc"))
}
