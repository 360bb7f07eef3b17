package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	bobKey  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGQPC30WXqaikLEy9uKsPVU6a381YNdKieYn+LJjXYLK"
	bobKey2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
)

// homeKeys writes user's ~/.ssh/authorized_keys in the sandbox's homes.
func (s *sandbox) homeKeys(user, content string) {
	s.t.Helper()
	dir := s.path("homes", user, ".ssh")
	require.NoError(s.t, os.MkdirAll(dir, 0o700))
	require.NoError(s.t, os.WriteFile(filepath.Join(dir, "authorized_keys"), []byte(content), 0o600))
}

// builtConfiguration is the configuration of the system container name's
// profile points to (the nix-build double keeps a copy).
func (s *sandbox) builtConfiguration(name string) string {
	s.t.Helper()
	sys, err := filepath.EvalSymlinks(s.path("profiles", name, "system"))
	require.NoError(s.t, err)
	b, err := os.ReadFile(filepath.Join(sys, "configuration.nix"))
	require.NoError(s.t, err)
	return string(b)
}

func TestShareThroughTheBinary(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, sandboxOpts{})
	s.homeKeys("bob", "# bob's keys\n"+bobKey+" bob@laptop\ncommand=\"/bin/false\" "+bobKey2+"\n")
	s.ok("alice", "ensure", "shop", "--channel", channel)
	rebuilds := len(s.successfulRebuilds())
	assert.NotContains(t, s.builtConfiguration("shop"), bobKey)

	// Only the owner (or an admin) shares.
	r := s.runAs("bob", "share", "shop", "bob")
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, "may not share")
	r = s.runAs("alice", "share", "shop", "nosuchuser")
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, `"nosuchuser"`)
	assert.Nil(t, s.entry("shop").SharedWith, "a refused share changes nothing")
	assert.Empty(t, s.entry("shop").LastError, "a refused share is no failure of the container")

	r = s.ok("alice", "share", "shop", "bob", "--json")
	var out struct {
		Name       string   `json:"name"`
		SharedWith []string `json:"shared_with"`
		Unit       string   `json:"unit"`
		Warnings   []string `json:"warnings"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	assert.Equal(t, []string{"bob"}, out.SharedWith)
	assert.Equal(t, "switched", out.Unit)
	require.Len(t, out.Warnings, 1)
	assert.Contains(t, out.Warnings[0], "authorized_keys:3: the key has options")
	assert.Contains(t, r.stderr, "warning: ")
	assert.Equal(t, rebuilds, len(s.successfulRebuilds()), "sharing switches the container, the host is not rebuilt")
	conf := s.builtConfiguration("shop")
	assert.Contains(t, conf, `"`+bobKey+` shared:bob"`)
	assert.NotContains(t, conf, bobKey2, "a key with options is left out")
	reloads := 0
	for _, rec := range s.records("systemctl") {
		if len(rec.Argv) > 1 && rec.Argv[0] == "reload" && rec.Argv[1] == "container@shop.service" {
			reloads++
		}
	}
	assert.Equal(t, 1, reloads, "the running container is switched to its new system")

	// status and list show it.
	r = s.ok("mallory", "status", "shop", "--json")
	var st struct {
		SharedWith []string `json:"shared_with"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st))
	assert.Equal(t, []string{"bob"}, st.SharedWith)
	assert.Contains(t, s.ok("alice", "status", "shop").stdout, "shared with:  bob\n")
	assert.Contains(t, s.ok("alice", "list").stdout, "\tbob\t")

	// bob may keep it, not destroy, unshare or re-ensure it.
	s.ok("bob", "keep", "shop")
	for _, args := range [][]string{
		{"destroy", "shop"}, {"unshare", "shop", "bob"}, {"share", "shop", "dave"}, {"ensure", "shop", "--channel", channel},
	} {
		r := s.runAs("bob", args...)
		assert.Equal(t, 1, r.code, "%v: %s", args, r.stderr)
		assert.Contains(t, r.stderr, "permission denied", args)
	}
	assert.True(t, s.entry("shop").Keep)

	// bob's new key reaches the container with the owner's next ensure.
	s.homeKeys("bob", bobKey2+" new laptop\n")
	s.ok("alice", "ensure", "shop", "--channel", channel)
	conf = s.builtConfiguration("shop")
	assert.Contains(t, conf, `"`+bobKey2+` shared:bob"`)
	assert.NotContains(t, conf, bobKey+" ")

	s.ok("alice", "unshare", "shop", "bob")
	assert.Nil(t, s.entry("shop").SharedWith)
	assert.NotContains(t, s.builtConfiguration("shop"), "shared:bob")
	s.checkConsistent()
}

func TestCompletionOffersContainers(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, sandboxOpts{})
	s.ok("alice", "ensure", "shop", "--channel", channel)
	s.ok("alice", "ensure", "shed", "--channel", channel)
	s.ok("alice", "ensure", "web", "--channel", channel)
	for _, cmd := range []string{"status", "destroy", "keep", "share", "unshare"} {
		r := s.ok("alice", "__complete", cmd, "sh")
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		assert.Equal(t, []string{"shed", "shop", ":4"}, lines, cmd)
	}
}
