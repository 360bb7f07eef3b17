package provision

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const connectKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGc7V2c2zFPRMl8/gmBv1/MEldEuJau8jHjhx+2qziYs"

func TestConnectWritesPinnedConfig(t *testing.T) {
	ssh, log := fakeSSH(t, `echo '{"name":"shop","owner":"alice","host_key":"`+connectKey+` root@shop","shared_with":["jane"]}'`)
	dir := filepath.Join(t.TempDir(), "my work")
	require.NoError(t, os.Mkdir(dir, 0o755))
	c, err := Connect(context.Background(), &SSHDevhost{SSH: ssh, Host: "dev.example.com"}, "shop", dir, "")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "ssh_config_shop"), c.SSHConfig)
	assert.Equal(t, connectKey, c.HostKey)

	data, err := os.ReadFile(log)
	require.NoError(t, err)
	assert.Equal(t, "--\ndev.example.com\nsudo -n -- devhost status --json shop\n---\n", string(data))
	kh, err := os.ReadFile(c.KnownHosts)
	require.NoError(t, err)
	assert.Equal(t, "shop "+connectKey+"\n", string(kh))

	// What the real ssh makes of the file.
	sshBin, err := exec.LookPath("ssh")
	if err != nil {
		t.Skip("no ssh to check the file with")
	}
	out, err := exec.CommandContext(context.Background(), sshBin, "-G", "-F", c.SSHConfig, "shop").CombinedOutput()
	require.NoError(t, err, string(out))
	got := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(l, " ")
		got[k] = v
	}
	assert.Equal(t, "shop", got["hostname"])
	assert.Equal(t, "developer", got["user"])
	assert.Equal(t, "dev.example.com", got["proxyjump"])
	assert.Equal(t, "true", got["stricthostkeychecking"])
	assert.Equal(t, "shop", got["hostkeyalias"])
	assert.Contains(t, got["userknownhostsfile"], "ssh_known_hosts_shop")
	assert.Equal(t, "no", got["identitiesonly"], "the user's own keys are offered")
}

func TestConnectRefusesBadAnswers(t *testing.T) {
	for _, tt := range []struct{ name, answer, want string }{
		{"other container", `{"name":"evil","host_key":"` + connectKey + `"}`, `got "evil"`},
		{"no host key", `{"name":"shop"}`, "no host key yet"},
		{"bad host key", `{"name":"shop","host_key":"ssh-ed25519 AAAA\nProxyCommand x"}`, "host key"},
		{"not json", `ProxyCommand sh`, "unexpected answer"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ssh, _ := fakeSSH(t, "printf '%s' "+Quote(tt.answer))
			dir := t.TempDir()
			_, err := Connect(context.Background(), &SSHDevhost{SSH: ssh, Host: "dev.example.com"}, "shop", dir, "")
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			ents, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Empty(t, ents, "nothing is written")
		})
	}
}

func TestConnectedDevhostRereadsTheConfig(t *testing.T) {
	ssh, _ := fakeSSH(t, `echo '{"name":"shop","host_key":"`+connectKey+`"}'`)
	dir := t.TempDir()
	host, err := ConnectedDevhost(dir, "shop")
	require.NoError(t, err)
	assert.Empty(t, host)
	_, err = Connect(context.Background(), &SSHDevhost{SSH: ssh, Host: "dev.example.com"}, "shop", dir, "")
	require.NoError(t, err)
	host, err = ConnectedDevhost(dir, "shop")
	require.NoError(t, err)
	assert.Equal(t, "dev.example.com", host)
}
