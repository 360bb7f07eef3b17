package provision

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh/knownhosts"
)

func TestSSHConfigRender(t *testing.T) {
	c := SSHConfig{
		Hosts: []SSHHost{
			{Real: "3f2a9c01b7e", EnvName: "web", Devhost: "dev.example.com", HostKey: "ssh-ed25519 AAAAkey"},
			{Real: "shopreview", EnvName: "shopreview", Devhost: "dev.example.com"},
		},
		IdentityFile: "/p/ssh_key_dev",
		KnownHosts:   "/p/ssh_known_hosts_dev",
		Includes:     []string{"~/.ssh/config", "/p/ssh_config"},
	}
	want := `
Host 3f2a9c01b7e web
    HostName 3f2a9c01b7e
    ProxyJump dev.example.com
    User developer
    IdentityFile /p/ssh_key_dev
    IdentitiesOnly yes
    StrictHostKeyChecking yes
    UserKnownHostsFile /p/ssh_known_hosts_dev
    HostKeyAlias 3f2a9c01b7e


Host shopreview
    HostName shopreview
    ProxyJump dev.example.com
    User developer
    IdentityFile /p/ssh_key_dev
    IdentitiesOnly yes
    StrictHostKeyChecking accept-new
    UserKnownHostsFile /p/ssh_known_hosts_dev
    HostKeyAlias shopreview

Host *
  Include ~/.ssh/config
Host *
  Include /p/ssh_config
`
	assert.Equal(t, want, string(c.Render()))

	// Round trip of the parts `up --host` needs.
	path := filepath.Join(t.TempDir(), "ssh_config_dev")
	require.NoError(t, WriteSSHConfig(path, c))
	hosts, err := ReadSSHHosts(path)
	require.NoError(t, err)
	assert.Equal(t, []SSHHost{
		{Real: "3f2a9c01b7e", EnvName: "web", Devhost: "dev.example.com"},
		{Real: "shopreview", EnvName: "shopreview", Devhost: "dev.example.com"},
	}, hosts)
}

// TestSSHConfigPathsAsRealSSHReadsThem: a deployment root with spaces,
// quotes or % (e.g. "/Users/Jane Doe/…") must still give one argument per
// path; unquoted, ssh rejects the whole file.
func TestSSHConfigPathsAsRealSSHReadsThem(t *testing.T) {
	sshProg, err := exec.LookPath("ssh")
	if err != nil {
		t.Skip("ssh not found: install openssh-client to check ssh_config with real ssh")
	}
	for _, dirName := range []string{"Jane Doe", "100% it's", `say "hi"`, "plain"} {
		t.Run(dirName, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), dirName)
			require.NoError(t, os.MkdirAll(root, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(root, "ssh_config"), []byte("Port 2345\n"), 0o644))
			cfgPath, kh := SSHConfigPaths(root, "dev")
			priv, _ := KeyPaths(root, "dev")
			c := SSHConfig{
				Hosts:        []SSHHost{{Real: "3f2a9c01b7e", EnvName: "web", Devhost: "dev.example.com", HostKey: "ssh-ed25519 AAAA"}},
				IdentityFile: priv, KnownHosts: kh, Includes: DefaultIncludes("", root),
			}
			require.NoError(t, WriteSSHConfig(cfgPath, c))
			cmd := exec.Command(sshProg, "-G", "-F", cfgPath, "web")
			cmd.Stdin = nil
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "ssh -G: %s\n%s", out, c.Render())
			got := map[string]string{}
			for _, l := range strings.Split(string(out), "\n") {
				if k, v, ok := strings.Cut(l, " "); ok {
					got[k] = v
				}
			}
			assert.Equal(t, kh, got["userknownhostsfile"])
			// ssh -G shows IdentityFile before %-expansion.
			assert.Equal(t, strings.ReplaceAll(priv, "%", "%%"), got["identityfile"])
			assert.Equal(t, "2345", got["port"], "the Include in the deployment root is read")
			assert.Equal(t, "3f2a9c01b7e", got["hostkeyalias"])
		})
	}
}

func TestDefaultIncludes(t *testing.T) {
	home, root := t.TempDir(), t.TempDir()
	assert.Empty(t, DefaultIncludes(home, root))
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".ssh"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(home, ".ssh", "config"), nil, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(root, "ssh_config"), nil, 0o600))
	assert.Equal(t, []string{"~/.ssh/config", filepath.Join(root, "ssh_config")}, DefaultIncludes(home, root))
	assert.Equal(t, []string{filepath.Join(root, "ssh_config")}, DefaultIncludes("", root))
}

func TestKnownHosts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kh")
	kh, err := ReadKnownHosts(path)
	require.NoError(t, err)
	assert.Empty(t, kh)

	key, err := ParseHostKey("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGc7V2c2zFPRMl8/gmBv1/MEldEuJau8jHjhx+2qziYs root@container")
	require.NoError(t, err)
	assert.Equal(t, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGc7V2c2zFPRMl8/gmBv1/MEldEuJau8jHjhx+2qziYs", key)
	kh["b0000000001"] = key
	kh["a0000000001"] = key
	require.NoError(t, kh.Write(path))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "a0000000001 "+key+"\nb0000000001 "+key+"\n", string(data))
	again, err := ReadKnownHosts(path)
	require.NoError(t, err)
	assert.Equal(t, kh, again)

	_, err = ParseHostKey("ssh-ed25519 not-base64!")
	assert.Error(t, err)
}

// TestKnownHostsRemove: entries ssh wrote itself with HashKnownHosts yes
// (compatibility mode, accept-new) are removed too, as `ssh-keygen -R`
// removes them for batou; others stay.
func TestKnownHostsRemove(t *testing.T) {
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGc7V2c2zFPRMl8/gmBv1/MEldEuJau8jHjhx+2qziYs"
	path := filepath.Join(t.TempDir(), "kh")
	content := knownhosts.HashHostname("a0000000001") + " " + key + "\n" +
		knownhosts.HashHostname("b0000000002") + " " + key + "\n" +
		"a0000000001 " + key + "\nc0000000003 " + key + "\n"
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	kh, err := ReadKnownHosts(path)
	require.NoError(t, err)
	require.Len(t, kh, 4)
	kh.Remove("a0000000001")
	require.Len(t, kh, 2)
	assert.Equal(t, key, kh["c0000000003"])
	for h := range kh {
		if h != "c0000000003" {
			assert.True(t, hashedHostIs(h, "b0000000002"), h)
		}
	}
	assert.False(t, hashedHostIs("|1|bad", "x"))
}

// BenchmarkSSHConfigRender renders ssh_config for an environment of 50
// containers (every up writes it once per host).
func BenchmarkSSHConfigRender(b *testing.B) {
	c := SSHConfig{IdentityFile: "/p/ssh_key_dev", KnownHosts: "/p/ssh_known_hosts_dev", Includes: []string{"~/.ssh/config"}}
	for i := 0; i < 50; i++ {
		c.Hosts = append(c.Hosts, SSHHost{Real: "3f2a9c01b7e", EnvName: "web", Devhost: "dev.example.com", HostKey: "ssh-ed25519 AAAA"})
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = c.Render()
	}
}
