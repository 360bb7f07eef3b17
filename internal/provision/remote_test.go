package provision

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

func TestSSHDevhostRefusesBadValuesBeforeConnecting(t *testing.T) {
	ssh, log := fakeSSH(t, "exit 0")
	d := &SSHDevhost{SSH: ssh, Host: "dev.example.com"}
	for _, req := range []EnsureRequest{
		{Name: "Bad_Name", Channel: "https://example.com/c"},
		{Name: "ok", Channel: `https://example.com/"; rm -rf /`},
		{Name: "ok", Channel: "https://example.com/c", Aliases: []string{"a b"}},
		{Name: "ok", Channel: "https://example.com/c", ServiceUser: "root;id"},
		{Name: "ok", Channel: "https://example.com/c", SSHKeys: []string{"not a key"}},
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
