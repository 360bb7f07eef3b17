package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/generator"
	"github.com/flyingcircusio/devhost/internal/channel/channeltest"
)

// The group file of every sandbox: alice, bob, carol, dave in users; svc in
// service; carol in wheel (the admin group); mallory in no allowed group.
func TestAuthorization(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, sandboxOpts{})
	s.ok("alice", "ensure", "alices", "--channel", channel)
	s.ok("svc", "ensure", "svcs", "--channel", channel)

	tests := []struct {
		name  string
		user  string
		args  []string
		argv0 string
		want  string
	}{
		{"non-member ensure", "mallory", []string{"ensure", "mine", "--channel", channel}, "", `members of "users" or "service"`},
		{"non-member status is read-only and allowed", "mallory", []string{"status", "alices"}, "", ""},
		{"other user destroys", "bob", []string{"destroy", "alices"}, "", `belongs to "alice"`},
		{"other user via compat destroy", "bob", []string{"destroy", "alices"}, "fc-build-dev-container", `belongs to "alice"`},
		{"other user takes the name", "bob", []string{"ensure", "alices", "--channel", channel}, "", `belongs to "alice"`},
		{"other user via compat ensure", "bob", []string{"ensure", "alices", channel, "www"}, "fc-build-dev-container", `belongs to "alice"`},
		{"other user keeps", "bob", []string{"keep", "alices"}, "", `belongs to "alice"`},
		{"non-admin cleanup", "alice", []string{"cleanup"}, "", "admin group"},
		{"unknown user is no member", "nobody1", []string{"destroy", "svcs"}, "", "members of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			argv0 := tt.argv0
			if argv0 == "" {
				argv0 = "devhost"
			}
			r := s.runArgv0(tt.user, argv0, tt.args...)
			if tt.want == "" {
				assert.Equal(t, 0, r.code, r.stderr)
				return
			}
			assert.Equal(t, 1, r.code, r.stderr)
			assert.Contains(t, r.stderr, "permission denied")
			assert.Contains(t, r.stderr, tt.want)
		})
	}
	// Nothing changed for alice's container.
	c := s.entry("alices")
	require.NotNil(t, c)
	assert.Equal(t, "alice", c.Owner)
	assert.False(t, c.Keep)

	// The admin may act on anyone's container; the owner on their own.
	s.ok("carol", "keep", "alices")
	s.ok("alice", "keep", "alices", "--off")
	s.ok("carol", "destroy", "svcs")
	s.ok("alice", "fc-build-dev-container", "destroy", "alices")
	assert.Empty(t, s.registry())
	s.checkConsistent()
}

func TestCompatibilityCLI(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, sandboxOpts{bootstrapKey: true})
	// As batou runs it: argv[0] fc-build-dev-container, aliases in one
	// argument, or none at all.
	r := s.runArgv0("alice", "fc-build-dev-container", "ensure", "3f2a9c1d0b7", channel, "www  admin")
	require.Equal(t, 0, r.code, r.stderr)
	c := s.entry("3f2a9c1d0b7")
	require.NotNil(t, c)
	assert.Equal(t, []string{"www", "admin"}, c.Aliases)
	assert.Equal(t, channel, c.Channel)
	require.Len(t, s.records("nix-build"), 1)
	conf, err := os.ReadFile(generator.ConfigurationPath(s.config(), "3f2a9c1d0b7"))
	require.NoError(t, err)
	assert.Contains(t, string(conf), strings.Fields(generator.BootstrapKey)[1], "the bootstrap key is authorised for developer")

	r = s.runArgv0("alice", "fc-build-dev-container", "ensure", "noaliases", channel, "")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Empty(t, s.entry("noaliases").Aliases)
	// The same through the subcommand.
	s.ok("alice", "fc-build-dev-container", "ensure", "sub", channel)

	// batou's --provision-rebuild: destroy (unknown is fine), then ensure.
	r = s.runArgv0("alice", "fc-build-dev-container", "destroy", "neverwas")
	assert.Equal(t, 0, r.code, r.stderr)
	r = s.runArgv0("alice", "fc-build-dev-container", "destroy", "noaliases")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Nil(t, s.entry("noaliases"))
	r = s.runArgv0("alice", "fc-build-dev-container", "ensure", "noaliases", channel, "")
	assert.Equal(t, 0, r.code, r.stderr)

	// Usage errors exit 1.
	assert.Equal(t, 1, s.runArgv0("alice", "fc-build-dev-container", "ensure", "x").code)
	assert.Equal(t, 1, s.runArgv0("alice", "fc-build-dev-container", "frobnicate", "x").code)
	s.checkConsistent()
}

// TestCompatibilityCLIFileChannel: the compat CLI takes a file:// channel
// under an allowed prefix (Nix gets its resolved directory) and refuses
// one that would add another directory to what Nix reads as root.
func TestCompatibilityCLIFileChannel(t *testing.T) {
	t.Parallel()
	dir := channeltest.Dir(t) // skips unless running as root
	nixos := filepath.Join(dir, "channels", "nixos")
	writeChannelLib(t, nixos, "24.11")
	require.NoError(t, os.Symlink(nixos, filepath.Join(dir, "channels", "current")))
	s := newSandbox(t, sandboxOpts{prefixes: []string{"file://" + dir + "/channels/"}})
	r := s.runArgv0("alice", "fc-build-dev-container", "ensure", "shop", "file://"+dir+"/channels/current", "www")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "file://"+dir+"/channels/current", s.entry("shop").Channel, "the registry keeps the URL")
	b := s.records("nix-build")
	require.Len(t, b, 1)
	assert.Contains(t, b[0].Argv, "nixpkgs="+nixos, "Nix gets the resolved directory")

	for _, hostile := range []string{"file://" + nixos + "=/etc", "file://" + nixos + "?/../../../etc", "file:///etc"} {
		r := s.runArgv0("alice", "fc-build-dev-container", "ensure", "evil", hostile, "")
		assert.Equal(t, 1, r.code, hostile)
		assert.Contains(t, r.stderr, "channel", hostile)
		assert.Nil(t, s.entry("evil"), hostile)
	}
	assert.Len(t, s.records("nix-build"), 1, "no refused channel reached nix-build")
	s.checkConsistent()
}
