package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/hostconfig"
)

// TestSudoConfigPath: when root runs devhost for a sudo user, only the
// default host configuration is read; --config or DEVHOST_CONFIG would let
// any member of the users group name the programs devhost runs as root.
func TestSudoConfigPath(t *testing.T) {
	other := "/nix/store/0000000000000000000000000000000-evil.hcl"
	tests := []struct {
		name     string
		euid     int
		sudoUser string
		path     string
		refused  bool
	}{
		{"sudo user, other file", 0, "alice", other, true},
		{"sudo user, default", 0, "alice", hostconfig.DefaultPath, false},
		{"sudo user, default unclean", 0, "alice", "/etc/devhost/../devhost/devhost.hcl", false},
		{"root without sudo", 0, "", other, false},
		{"root through sudo", 0, "root", other, false},
		{"no privilege", 1000, "alice", other, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := func(k string) string {
				if k == "SUDO_USER" {
					return tt.sudoUser
				}
				return ""
			}
			err := checkSudoConfigPath(tt.euid, env, tt.path)
			if !tt.refused {
				assert.NoError(t, err)
				return
			}
			var ie *InputError
			require.ErrorAs(t, err, &ie)
			assert.Contains(t, err.Error(), "through sudo devhost reads only "+hostconfig.DefaultPath)
		})
	}
}

// TestSudoConfigFlagRefused drives the command line: as root playing a sudo
// user, --config is refused before the file is even read (the file here is
// root's own, as a file in /nix/store would be).
func TestSudoConfigFlagRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: TestSudoConfigPath covers the rule with a given euid")
	}
	dir := t.TempDir()
	config := filepath.Join(dir, "devhost.hcl")
	require.NoError(t, os.WriteFile(config, []byte("public_address = \"dev.example.com\"\nstate_dir = \"state\"\n"), 0o444))
	for _, args := range [][]string{
		{"devhost", "--config", config, "list"},
		{"devhost", "status", "--config", config},
	} {
		var out, errOut bytes.Buffer
		env := map[string]string{"SUDO_USER": "nobody"}
		io := &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut, Dir: dir,
			Env: func(k string) string { return env[k] }}
		code := Main(args, io)
		assert.Equal(t, ExitInput, code, "%v: %s", args, errOut.String())
		assert.Contains(t, errOut.String(), "through sudo devhost reads only", args)
		assert.Empty(t, out.String(), args)
	}
}
