package channel_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/channel"
	"github.com/flyingcircusio/devhost/internal/channel/channeltest"
	"github.com/flyingcircusio/devhost/internal/names"
)

// TestPolicyFileOnRealFileSystem checks file:// channels against real
// directories, symlinks and modes. Unprivileged, it trusts its own user
// like root; as root it runs the devhost's rule unchanged.
func TestPolicyFileOnRealFileSystem(t *testing.T) {
	uid := uint32(os.Getuid())
	var owners []uint32
	if uid != 0 {
		owners = []uint32{uid}
	}
	base := channeltest.Dir(t, owners...)
	mkdir := func(rel string, mode os.FileMode) string {
		p := filepath.Join(base, rel)
		require.NoError(t, os.MkdirAll(p, 0o755))
		require.NoError(t, os.Chmod(p, mode))
		return p
	}
	channels := mkdir("channels", 0o755)
	nixos := mkdir("channels/nixos", 0o755)
	mkdir("channels/gw", 0o775)
	mkdir("channels/ow/sub", 0o755)
	require.NoError(t, os.Chmod(filepath.Join(channels, "ow"), 0o757))
	outside := mkdir("outside", 0o755)
	mkdir("channelsx/a", 0o755)
	store := mkdir("store", 0o755)
	storeChannel := mkdir("store/abc-nixos-20.09", 0o555)
	require.NoError(t, os.Chmod(store, 0o775|os.ModeSticky))
	require.NoError(t, os.WriteFile(filepath.Join(channels, "file"), nil, 0o644))
	require.NoError(t, os.Symlink(outside, filepath.Join(channels, "out")))
	require.NoError(t, os.Symlink(nixos, filepath.Join(channels, "current")))
	require.NoError(t, os.Symlink("../..", filepath.Join(channels, "up")))
	require.NoError(t, os.Symlink(storeChannel, filepath.Join(channels, "profile")))

	pr, err := channel.ParsePrefix("file://" + channels + "/")
	require.NoError(t, err)
	pol := channel.Policy{Prefixes: []channel.Prefix{pr}, Owners: owners, StoreDir: store}
	tests := []struct {
		rel      string
		location string // on success
		why      string
	}{
		{"channels/nixos", nixos, ""},
		{"channels/current", nixos, ""},
		{"channels/profile", storeChannel, ""},
		{"channels/out", "", "which lies under none of the allowed prefixes"},
		{"channels/up", "", "which lies under none of the allowed prefixes"},
		{"outside", "", "none of this devhost's allowed prefixes"},
		{"channelsx/a", "", "none of this devhost's allowed prefixes"},
		{"channels/gw", "", "gw is writable by its group or by others"},
		{"channels/ow/sub", "", "ow is writable by its group or by others"},
		{"channels/missing", "", "does not exist"},
		{"channels/file", "", "is not a directory"},
	}
	for _, tt := range tests {
		c, err := channel.Parse("file://" + filepath.Join(base, tt.rel))
		require.NoError(t, err, tt.rel)
		r, err := pol.Check(c)
		if tt.why != "" {
			assert.ErrorContains(t, err, tt.why, tt.rel)
			var ne *names.Error
			if assert.ErrorAs(t, err, &ne) && !strings.Contains(tt.why, "none of this devhost's") {
				assert.Contains(t, ne.Hint, "owned by root and writable by nobody else", "the hint says what a file:// channel needs")
			}
			continue
		}
		require.NoError(t, err, tt.rel)
		assert.Equal(t, tt.location, r.Location(), tt.rel)
		assert.Equal(t, c, r.Channel())
		assert.Equal(t, []string{"-I", "nixpkgs=" + tt.location, "-I", tt.location}, r.NixArgs(),
			"Nix gets the resolved directory, not the symlink that was checked")
	}

	// The store directory may be group-writable only with its sticky bit,
	// as Nix keeps it.
	require.NoError(t, os.Chmod(store, 0o775))
	c, err := channel.Parse("file://" + filepath.Join(channels, "profile"))
	require.NoError(t, err)
	_, err = pol.Check(c)
	assert.ErrorContains(t, err, "store is writable by its group")

	// A symlink into the store is still a symlink out of the prefix when
	// the target is not the store.
	pol.StoreDir = filepath.Join(base, "elsewhere")
	_, err = pol.Check(c)
	assert.ErrorContains(t, err, "which lies under none of the allowed prefixes")
}

// TestPolicyRefusesOtherOwners: as root, a channel directory (or a
// parent) owned by another user is refused, since that user could swap
// what Nix reads as root.
func TestPolicyRefusesOtherOwners(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to give a directory away")
	}
	base := channeltest.Dir(t)
	mine := filepath.Join(base, "alice", "nixos")
	require.NoError(t, os.MkdirAll(mine, 0o755))
	require.NoError(t, os.Chown(filepath.Join(base, "alice"), 65534, 65534))
	pr, err := channel.ParsePrefix("file://" + base)
	require.NoError(t, err)
	c, err := channel.Parse("file://" + mine)
	require.NoError(t, err)
	_, err = channel.Policy{Prefixes: []channel.Prefix{pr}}.Check(c)
	assert.ErrorContains(t, err, "alice is owned by uid 65534, not by root")
}
