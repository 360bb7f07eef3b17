package up

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUpKeepsSecretVariablesFromChildren: BATOU_AGE_IDENTITY_PASSPHRASE and
// the 1Password CLI's session token are in devhost up's environment, but
// neither reaches provision.sh, nor any ssh (to the devhost, RUN, ECHO,
// rsync's transport, the container's own rebuild), nor rsync. Recording
// wrappers named ssh and rsync, first on PATH, dump their environment and
// exec the real programs; provision.sh dumps its own. The recordings hold
// what provision.sh needs (its COMPONENT_ secret, SSH_AUTH_SOCK for the
// agent), so they show the environment really was recorded.
func TestUpKeepsSecretVariablesFromChildren(t *testing.T) {
	e := newE2E(t, e2eOpts{})
	rec, wrap := t.TempDir(), t.TempDir()
	for _, prog := range []string{"ssh", "rsync"} {
		real, err := exec.LookPath(prog)
		require.NoError(t, err)
		write(t, filepath.Join(wrap, prog), fmt.Sprintf("#!/bin/sh\nenv > %s/%s.$$.env\nexec %s \"$@\"\n", rec, prog, real), 0o755)
	}
	f, err := os.OpenFile(filepath.Join(e.deploy, "environments", "dev", "provision.sh"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = fmt.Fprintf(f, "env > %s/provision.$$.env\n", rec)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	const passphrase, opToken, agent = "passphrase-4711-never-passed-on", "op-session-token-4711", "/run/e2e-agent.sock"
	for i, kv := range e.env {
		if strings.HasPrefix(kv, "PATH=") {
			e.env[i] = "PATH=" + wrap + ":" + strings.TrimPrefix(kv, "PATH=")
		}
	}
	e.env = append(e.env, "BATOU_AGE_IDENTITY_PASSPHRASE="+passphrase, "OP_SESSION_e2e="+opToken, "SSH_AUTH_SOCK="+agent)

	r := e.up("dev")
	require.Equal(t, 0, r.code, "devhost up dev failed:\n%s%s", r.stderr, r.stdout)

	files, err := filepath.Glob(filepath.Join(rec, "*.env"))
	require.NoError(t, err)
	count := map[string]int{}
	for _, p := range files {
		prog, _, _ := strings.Cut(filepath.Base(p), ".")
		count[prog]++
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		env := string(b)
		assert.NotContains(t, env, passphrase, "%s got BATOU_AGE_IDENTITY_PASSPHRASE", p)
		assert.NotContains(t, env, opToken, "%s got the 1Password session token", p)
		assert.NotContains(t, env, "BATOU_AGE_IDENTITIES=", "%s got BATOU_AGE_IDENTITIES", p)
		assert.Contains(t, env, "SSH_AUTH_SOCK="+agent+"\n", "%s lost the ssh agent", p)
		if prog == "provision" {
			assert.Contains(t, env, "COMPONENT_REDIS_PASSWORD="+e.secret+"\n", "provision.sh gets its secrets")
		}
	}
	assert.Equal(t, 2, count["provision"], "provision.sh ran once per container: %v", files)
	assert.GreaterOrEqual(t, count["ssh"], 4, "ssh: reserve, ensure, RUN, ECHO, rebuild: %v", files)
	assert.GreaterOrEqual(t, count["rsync"], 2, "rsync: COPY: %v", files)
}
