package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const connectTestKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGc7V2c2zFPRMl8/gmBv1/MEldEuJau8jHjhx+2qziYs"

// connect asks the devhost the way the ssh_config it writes reaches it:
// through the directory's ssh_config (which ssh_config_NAME includes) when
// there is one, else the user's own configuration.
func TestConnectReachesTheDevhostThroughTheLocalSSHConfig(t *testing.T) {
	for _, local := range []bool{false, true} {
		dir := t.TempDir()
		if local {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "ssh_config"), []byte("Host dev.example.com\n    HostName 127.0.0.1\n"), 0o644))
		}
		args := filepath.Join(dir, "args")
		ssh := filepath.Join(t.TempDir(), "ssh")
		require.NoError(t, os.WriteFile(ssh, []byte("#!/bin/sh\nprintf '%s\\n' \"$@\" > '"+args+"'\n"+
			`echo '{"name":"shop","host_key":"`+connectTestKey+`"}'`+"\n"), 0o755))
		var out bytes.Buffer
		err := connectRun(&connectOptions{IO: &IOStreams{Out: &out, ErrOut: &bytes.Buffer{}, Dir: dir}, Name: "shop", Devhost: "dev.example.com", SSH: ssh})
		require.NoError(t, err)
		got, err := os.ReadFile(args)
		require.NoError(t, err)
		want := "--\ndev.example.com\nsudo -n -- devhost status --json shop\n"
		if local {
			want = "-F\n" + filepath.Join(dir, "ssh_config") + "\n" + want
		}
		assert.Equal(t, want, string(got), "local ssh_config: %t", local)
	}
}
