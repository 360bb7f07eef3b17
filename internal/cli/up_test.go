package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/provision"
)

// The parts of `devhost up` that need no devhost: planning, refusing bad
// input before anything is touched. tests/up runs the rest over real ssh.
func TestUpDryRun(t *testing.T) {
	dir := repoDir(t)
	before := treeHash(t, filepath.Join(dir, "examples", "shop"))
	code, out, errOut := runMain(t, dir, "up", "--root", "examples/shop", "--dry-run", "--json", "dev")
	require.Equal(t, 0, code, errOut)
	var res struct {
		Environment string
		DryRun      bool `json:"dry_run"`
		Hosts       []struct {
			Host, Name, State, Devhost string
			NewName                    bool `json:"new_name"`
			Aliases, URLs              []string
		}
	}
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	assert.True(t, res.DryRun)
	require.Len(t, res.Hosts, 2)
	assert.Equal(t, "web", res.Hosts[0].Host)
	assert.True(t, res.Hosts[0].NewName)
	assert.Equal(t, []string{"shop", "admin", "api"}, res.Hosts[0].Aliases)
	assert.Equal(t, "planned", res.Hosts[0].State)
	assert.Equal(t, "db", res.Hosts[1].Host)
	assert.Equal(t, before, treeHash(t, filepath.Join(dir, "examples", "shop")), "a dry run writes nothing")
}

func TestUpRefusesBadInput(t *testing.T) {
	dir := repoDir(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"broken environment", []string{"up", "--root", "examples/shop", "broken"}, "error(s); nothing was changed"},
		{"unknown environment", []string{"up", "--root", "examples/shop", "nope"}, "Missing environment `nope`"},
		{"unknown host", []string{"up", "--root", "examples/shop", "--host", "mailer", "dev"}, "--host mailer: environment dev has no provisioned host of that name (provisioned hosts: web, db)"},
		{"missing identity", []string{"up", "--root", "examples/shop", "--identity", "/no/such/key", "dev"}, "--identity /no/such/key"},
		{"no argument", []string{"up"}, "accepts 1 arg(s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := treeHash(t, filepath.Join(dir, "examples", "shop"))
			code, _, errOut := runMain(t, dir, tt.args...)
			assert.Equal(t, 1, code, errOut)
			assert.Contains(t, errOut, tt.want)
			assert.Equal(t, before, treeHash(t, filepath.Join(dir, "examples", "shop")))
		})
	}
}

func TestUpHelpHasExample(t *testing.T) {
	code, out, _ := runMain(t, repoDir(t), "up", "--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "devhost up dev --host web --rebuild")
	_, err := os.Stat(filepath.Join(repoDir(t), "examples", "shop", "ssh_config_dev"))
	assert.True(t, os.IsNotExist(err))
}

// The ssh line of the summary is pasted into a shell: a deployment root
// with a space must come out quoted.
func TestWriteUpQuotesSSHConfig(t *testing.T) {
	tests := []struct{ path, want string }{
		{"/home/al/shop/ssh_config_dev", "ssh: ssh -F /home/al/shop/ssh_config_dev <host>\n"},
		{"/Users/Jane Doe/shop/ssh_config_dev", "ssh: ssh -F '/Users/Jane Doe/shop/ssh_config_dev' <host>\n"},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		require.NoError(t, writeUp(&b, &provision.Result{SSHConfig: tt.path}))
		assert.Equal(t, tt.want, b.String())
	}
}
