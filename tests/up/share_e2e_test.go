package up

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/registry"
)

// colleague is alice on her own laptop: her key, a directory with an
// ssh_config saying how she reaches the devhost (as a deployment's does),
// and her laptop's home.
type colleague struct {
	e    *e2e
	key  string // private key file
	dir  string // where she runs devhost connect and ssh
	home string
}

// newColleague gives alice (otherMember) a key of her own, authorised only
// by her ~/.ssh/authorized_keys in her devhost home (hers, 0600, as she
// would write it), and a laptop directory.
func newColleague(t *testing.T, e *e2e) *colleague {
	c := &colleague{e: e, key: e.path("keys", "alice"), dir: t.TempDir(), home: t.TempDir()}
	runCmd(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice@laptop", "-f", c.key)
	pub, err := os.ReadFile(c.key + ".pub")
	require.NoError(t, err)
	uid, gid := -1, -1
	for _, p := range people {
		if p.name == otherMember {
			uid, gid = p.uid, p.gid
		}
	}
	sshDir := e.path("home", otherMember, ".ssh")
	write(t, filepath.Join(sshDir, "authorized_keys"), string(pub), 0o600)
	require.NoError(t, os.Chmod(sshDir, 0o700))
	for _, p := range []string{sshDir, filepath.Join(sshDir, "authorized_keys")} {
		require.NoError(t, os.Chown(p, uid, gid))
	}
	write(t, filepath.Join(c.dir, "ssh_config"), fmt.Sprintf(`Host dev.example.com
    HostName 127.0.0.1
    User %s
    UserKnownHostsFile %s
    StrictHostKeyChecking yes
Host *
    Port %d
    IdentityFile %s
    IdentitiesOnly yes
    BatchMode yes
    ConnectTimeout 5
    LogLevel ERROR
`, otherMember, e.path("keys", "devhost_known_hosts"), e.port, c.key), 0o644)
	return c
}

// run runs a program on alice's laptop (in the sshd's network namespace).
func (c *colleague) run(name string, args ...string) result {
	c.e.t.Helper()
	cmd := exec.Command("nsenter", append([]string{"--net=" + c.e.netns, "--", name}, args...)...)
	cmd.Dir = c.dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + c.home, "LANG=C.UTF-8"}
	return runResult(c.e.t, cmd)
}

// onDevhost runs argv on the devhost as alice, logged in with her own key.
func (c *colleague) onDevhost(argv ...string) result {
	c.e.t.Helper()
	return c.run("ssh", "-F", filepath.Join(c.dir, "ssh_config"), "dev.example.com", strings.Join(argv, " "))
}

// login logs into container name as ssh_config_<name> says.
func (c *colleague) login(name string) result {
	c.e.t.Helper()
	return c.run("ssh", "-F", filepath.Join(c.dir, "ssh_config_"+name), name, "true")
}

// Sharing end to end: jane.doe deploys, shares her container with alice
// through real sudo with the module's rules; alice, with nothing but her
// own devhost key, runs `devhost connect` on her laptop and logs into the
// container as developer through the devhost; she may keep it but not
// destroy or share it; after unshare her login is refused again.
func TestShareEndToEnd(t *testing.T) {
	e := newE2E(t, e2eOpts{})
	r := e.up("dev")
	require.Equal(t, 0, r.code, "devhost up dev:\n%s%s", r.stderr, r.stdout)
	web := e.hostmap()["web"]
	require.NotEmpty(t, web)
	alice := newColleague(t, e)
	entry := e.path("state", "containers", web+".hcl")
	addr := addressOf(t, e, web)

	// connect works before the share (status is every member's), the
	// login does not: the container does not know alice's key.
	r = alice.run(filepath.Join(binDir, "devhost"), "connect", web, "--devhost", "dev.example.com", "--json")
	require.Equal(t, 0, r.code, "devhost connect:\n%s%s", r.stderr, r.stdout)
	var conn struct {
		SSHConfig  string `json:"ssh_config"`
		KnownHosts string `json:"known_hosts"`
		HostKey    string `json:"host_key"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &conn))
	assert.Equal(t, filepath.Join(alice.dir, "ssh_config_"+web), conn.SSHConfig)
	hostPub, err := os.ReadFile(e.path("keys", "host_ed25519.pub"))
	require.NoError(t, err)
	assert.Equal(t, strings.Join(strings.Fields(string(hostPub))[:2], " "), conn.HostKey, "the container's host key, pinned")
	assert.Equal(t, web+" "+conn.HostKey+"\n", readOr(conn.KnownHosts))
	r = alice.login(web)
	assert.NotEqual(t, 0, r.code, "alice logged in before the share")
	assert.Contains(t, r.stderr, "Permission denied")

	// alice may not share the container with herself.
	before := readOr(entry)
	r = alice.onDevhost("sudo", "-n", "--", "devhost", "share", web, otherMember)
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, "may not share")
	assert.Equal(t, before, readOr(entry), "a refused share changes nothing")

	// jane.doe shares it.
	r = e.onDevhost(member, "sudo", "-n", "--", "devhost", "share", web, otherMember)
	require.Equal(t, 0, r.code, "share:\n%s%s", r.stderr, r.stdout)
	assert.Equal(t, fmt.Sprintf("container %s is shared with %s (unit switched)\n", web, otherMember), r.stdout)
	assert.Empty(t, r.stderr, "alice's key file is read without warnings")
	pub, err := os.ReadFile(alice.key + ".pub")
	require.NoError(t, err)
	aliceKey := strings.Join(strings.Fields(string(pub))[:2], " ")
	assert.Contains(t, readOr(e.path("ckeys", addr)), aliceKey+" shared:"+otherMember,
		"the container authorises alice's key")

	r = alice.login(web)
	assert.Equal(t, 0, r.code, "alice's login after the share:\n%s", r.stderr)
	r = alice.run("ssh", "-F", filepath.Join(alice.dir, "ssh_config_"+web), web, "id -u; cat /etc/local/nixos/redis.passwd")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "0\n"+e.secret+"\n", r.stdout, "alice is developer in jane.doe's container")

	// status shows it; alice may keep the container, not destroy, share
	// or unshare it.
	r = alice.onDevhost("sudo", "-n", "--", "devhost", "status", "--json", web)
	require.Equal(t, 0, r.code, r.stderr)
	var st struct {
		Owner      string   `json:"owner"`
		SharedWith []string `json:"shared_with"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st))
	assert.Equal(t, member, st.Owner)
	assert.Equal(t, []string{otherMember}, st.SharedWith)
	r = alice.onDevhost("sudo", "-n", "--", "devhost", "keep", web)
	require.Equal(t, 0, r.code, r.stderr)
	c, err := registry.Open(e.path("state")).Get(web)
	require.NoError(t, err)
	assert.True(t, c.Keep, "alice kept it")
	before = readOr(entry)
	for _, argv := range [][]string{
		{"devhost", "destroy", web},
		{"devhost", "share", web, outsider},
		{"devhost", "unshare", web, otherMember},
	} {
		r := alice.onDevhost(append([]string{"sudo", "-n", "--"}, argv...)...)
		assert.Equal(t, 1, r.code, "%v: %s", argv, r.stderr)
		assert.Contains(t, r.stderr, "permission denied", argv)
	}
	assert.Equal(t, before, readOr(entry), "refused commands change nothing")
	assert.DirExists(t, e.path("containers", web))
	assert.Equal(t, 0, alice.login(web).code, "still shared")

	// Someone outside the devhost groups is refused by sudo itself.
	r = e.onDevhost(outsider, "sudo", "-n", "--", "devhost", "share", web, outsider)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "sudo: a password is required")

	// jane.doe takes it back: alice's key leaves the container.
	r = e.onDevhost(member, "sudo", "-n", "--", "devhost", "unshare", web, otherMember, "--json")
	require.Equal(t, 0, r.code, "unshare:\n%s%s", r.stderr, r.stdout)
	var out struct {
		SharedWith []string `json:"shared_with"`
		Unit       string   `json:"unit"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	assert.Empty(t, out.SharedWith)
	assert.Equal(t, "switched", out.Unit)
	assert.NotContains(t, readOr(e.path("ckeys", addr)), aliceKey)
	r = alice.login(web)
	assert.NotEqual(t, 0, r.code, "alice logged in after the unshare")
	assert.Contains(t, r.stderr, "Permission denied")
	r = alice.onDevhost("sudo", "-n", "--", "devhost", "keep", web, "--off")
	assert.Equal(t, 1, r.code, "no longer shared: keep is refused too")
	assert.Contains(t, r.stderr, "permission denied")

	// jane.doe's own deployment still reaches the container.
	out2, err := e.ssh(web, "true")
	assert.NoError(t, err, out2)
}

// addressOf is container name's address, as status reports it.
func addressOf(t *testing.T, e *e2e, name string) string {
	t.Helper()
	var st struct {
		Address string `json:"address"`
	}
	r := e.onDevhost(member, "sudo", "-n", "--", "devhost", "status", "--json", name)
	require.Equal(t, 0, r.code, r.stderr)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st))
	require.NotEmpty(t, st.Address)
	return st.Address
}
