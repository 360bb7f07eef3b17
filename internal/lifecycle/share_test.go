package lifecycle

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/hostconfig"
	"github.com/flyingcircusio/devhost/internal/registry"
)

const (
	janeKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGQPC30WXqaikLEy9uKsPVU6a381YNdKieYn+LJjXYLK"
	janeNew = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
)

// shareHost is a test host whose users' homes are <dir>/<user>; jane and
// bob have authorized_keys there.
func shareHost(t *testing.T) (*Host, *fakeRunner, string) {
	t.Helper()
	h, fr := testHost(t)
	homes := t.TempDir()
	for u, k := range map[string]string{"jane": janeKey + " jane@laptop", "bob": janeNew + " bob@laptop"} {
		writeKeys(t, homes, u, k)
	}
	h.Accounts = HomeDirs{Dir: homes}
	return h, fr, homes
}

func writeKeys(t *testing.T, homes, user, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Join(homes, user, ".ssh"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(homes, user, ".ssh", "authorized_keys"), []byte(content+"\n"), 0o600))
}

func (h *Host) stagedKeys(t *testing.T, name string) string {
	t.Helper()
	r, err := h.Render.Render([]*registry.Container{mustGet(t, h, name)})
	require.NoError(t, err)
	return string(r.configuration(name))
}

func mustGet(t *testing.T, h *Host, name string) *registry.Container {
	t.Helper()
	c, err := h.Reg.Get(name)
	require.NoError(t, err)
	return c
}

func TestShareSwitchesContainerWithColleaguesKeys(t *testing.T) {
	h, fr, homes := shareHost(t)
	ctx := context.Background()
	req := EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice, Provision: []byte("{ }\n")}
	_, err := h.Ensure(ctx, req)
	require.NoError(t, err)
	deployed := mustGet(t, h, "shop").Deployed
	builds, rebuilds := fr.count("nix-build"), fr.count("nixos-rebuild")

	res, err := h.Share(ctx, "shop", []string{"jane"}, true, alice)
	require.NoError(t, err)
	c := mustGet(t, h, "shop")
	assert.Equal(t, []string{"jane"}, c.SharedWith)
	assert.Equal(t, []string{janeKey + " shared:jane"}, c.SharedKeys)
	assert.Equal(t, deployed, c.Deployed, "sharing is no deployment")
	assert.True(t, res.Built)
	assert.Equal(t, "switched", res.Unit)
	assert.Equal(t, builds+1, fr.count("nix-build"), "the container's system is rebuilt")
	assert.Equal(t, rebuilds, fr.count("nixos-rebuild"), "the host's declarations did not change")
	assert.Contains(t, h.stagedKeys(t, "shop"), janeKey+" shared:jane")
	prov, err := os.ReadFile(h.provisionPath("shop"))
	require.NoError(t, err)
	assert.Equal(t, "{ }\n", string(prov), "provision.nix is kept")

	// Sharing again changes nothing.
	res, err = h.Share(ctx, "shop", []string{"jane"}, true, alice)
	require.NoError(t, err)
	assert.False(t, res.Built)

	// A changed authorized_keys reaches the container on the next ensure.
	writeKeys(t, homes, "jane", janeNew+" new laptop\n"+`from="10.0.0.1" `+janeKey)
	res, err = h.Ensure(ctx, req)
	require.NoError(t, err)
	assert.True(t, res.Built)
	assert.Equal(t, "switched", res.Unit)
	assert.Equal(t, []string{janeNew + " shared:jane"}, mustGet(t, h, "shop").SharedKeys)
	require.Len(t, res.Warnings, 1)
	assert.Contains(t, res.Warnings[0], "authorized_keys:2: the key has options")

	// A key file turned into a link out of the home drops jane's keys.
	require.NoError(t, os.Remove(filepath.Join(homes, "jane", ".ssh", "authorized_keys")))
	require.NoError(t, os.Symlink("/etc/passwd", filepath.Join(homes, "jane", ".ssh", "authorized_keys")))
	res, err = h.Ensure(ctx, req)
	require.NoError(t, err)
	assert.Empty(t, mustGet(t, h, "shop").SharedKeys)
	require.Len(t, res.Warnings, 1)
	assert.Contains(t, res.Warnings[0], `the keys of "jane" are left out`)

	res, err = h.Share(ctx, "shop", []string{"jane", "bob"}, false, alice)
	require.NoError(t, err)
	assert.False(t, res.Built, "jane's keys were gone already: the system is unchanged")
	c = mustGet(t, h, "shop")
	assert.Nil(t, c.SharedWith)
	assert.Nil(t, c.SharedKeys)
}

func TestShareKeepsStoppedContainerStopped(t *testing.T) {
	h, fr, _ := shareHost(t)
	ctx := context.Background()
	_, err := h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	c := mustGet(t, h, "shop")
	c.State = registry.Stopped
	require.NoError(t, h.Reg.Put(c))
	calls := len(fr.calls)
	res, err := h.Share(ctx, "shop", []string{"bob"}, true, alice)
	require.NoError(t, err)
	assert.Equal(t, "unchanged", res.Unit)
	assert.Equal(t, registry.Stopped, mustGet(t, h, "shop").State)
	for _, argv := range fr.calls[calls:] {
		assert.False(t, argv[0] == "systemctl" && slices.Contains(argv, "start"), "a stopped container was started: %v", argv)
	}
}

func TestShareRefusesBadInput(t *testing.T) {
	h, _, _ := shareHost(t)
	ctx := context.Background()
	_, err := h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	before, err := os.ReadFile(h.Reg.Path("shop"))
	require.NoError(t, err)
	for _, tt := range []struct {
		name, container string
		users           []string
		want            string
	}{
		{"unknown user", "shop", []string{"nosuchuser"}, `"nosuchuser"`},
		{"bad name", "shop", []string{"Jane Doe"}, "invalid user name"},
		{"owner", "shop", []string{"alice"}, "owns container"},
		{"nobody", "shop", nil, "at least one user"},
		{"no container", "nothere", []string{"jane"}, "nothere"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "owner" {
				writeKeys(t, h.Accounts.(HomeDirs).Dir, "alice", janeKey)
			}
			_, err := h.Share(ctx, tt.container, tt.users, true, alice)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			after, err := os.ReadFile(h.Reg.Path("shop"))
			require.NoError(t, err)
			assert.Equal(t, string(before), string(after))
		})
	}
}

// Who may do what with a shared container.
func TestSharedAccess(t *testing.T) {
	a := hostconfig.Access{Groups: []string{"users"}, AdminGroup: "wheel"}
	c := &registry.Container{Name: "shop", Owner: "alice", SharedWith: []string{"jane"}}
	var (
		owner  = Caller{User: "alice", Groups: []string{"users"}}
		jane   = Caller{User: "jane", Groups: []string{"users"}}
		bob    = Caller{User: "bob", Groups: []string{"users"}}
		admin  = Caller{User: "carol", Groups: []string{"wheel"}}
		rootCl = Caller{User: "root", Root: true}
	)
	// keep: CheckShared; destroy, share, unshare, ensure: CheckOwner.
	for _, tt := range []struct {
		who          Caller
		keep, change bool
	}{
		{owner, true, true},
		{jane, true, false},
		{bob, false, false},
		{admin, true, true},
		{rootCl, true, true},
	} {
		t.Run(tt.who.User, func(t *testing.T) {
			err := tt.who.CheckShared(a, "keep", c)
			assert.Equal(t, tt.keep, err == nil, "keep: %v", err)
			err = tt.who.CheckOwner(a, "share", c.Name, c.Owner)
			assert.Equal(t, tt.change, err == nil, "share: %v", err)
		})
	}
}

func TestColleagueMayKeepNotShareOrDestroy(t *testing.T) {
	h, _, _ := shareHost(t)
	ctx := context.Background()
	_, err := h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	_, err = h.Share(ctx, "shop", []string{"jane"}, true, alice)
	require.NoError(t, err)
	jane := Caller{User: "jane", Groups: []string{"users"}}
	bob := Caller{User: "bob", Groups: []string{"users"}}

	_, err = h.Keep(ctx, "shop", true, jane)
	require.NoError(t, err)
	_, err = h.Keep(ctx, "shop", true, bob)
	assert.ErrorIs(t, err, ErrDenied)
	_, err = h.Share(ctx, "shop", []string{"bob"}, true, jane)
	assert.ErrorIs(t, err, ErrDenied)
	_, err = h.Share(ctx, "shop", []string{"jane"}, false, jane)
	assert.ErrorIs(t, err, ErrDenied)
	assert.True(t, strings.Contains(err.Error(), "may not unshare"), err.Error())
	_, err = h.Destroy(ctx, "shop", jane)
	assert.ErrorIs(t, err, ErrDenied)
	_, err = h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: jane})
	assert.ErrorIs(t, err, ErrDenied)
	assert.Equal(t, []string{"jane"}, mustGet(t, h, "shop").SharedWith)
}

// Any NixOS login name may be shared with: jane.doe's home is found and
// her keys are commented with her login name.
func TestShareWithDottedLoginName(t *testing.T) {
	h, _, homes := shareHost(t)
	writeKeys(t, homes, "jane.doe", janeKey+" jane@laptop")
	ctx := context.Background()
	_, err := h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice})
	require.NoError(t, err)
	_, err = h.Share(ctx, "shop", []string{"jane.doe"}, true, alice)
	require.NoError(t, err)
	c := mustGet(t, h, "shop")
	assert.Equal(t, []string{"jane.doe"}, c.SharedWith)
	assert.Equal(t, []string{janeKey + " shared:jane.doe"}, c.SharedKeys)
	assert.Contains(t, h.stagedKeys(t, "shop"), janeKey+" shared:jane.doe")
}

// Sharing an entry written before devhost recorded state versions builds
// with the entry's channel and leaves its state version to the next
// ensure: share never evaluates (or downloads) a channel.
func TestShareOfEntryWithoutStateVersion(t *testing.T) {
	h, fr, _ := shareHost(t)
	ctx := context.Background()
	ch := "https://example.org/nixos-22.11/c.tar.xz"
	fr.releases = map[string]string{ch: "22.11"}
	_, err := h.Ensure(ctx, EnsureRequest{Name: "shop", Channel: ch, Caller: alice})
	require.NoError(t, err)
	c := mustGet(t, h, "shop")
	c.StateVersion = ""
	require.NoError(t, h.Reg.Put(c))
	evals := len(callsOf(fr, "nix-instantiate"))

	res, err := h.Share(ctx, "shop", []string{"jane"}, true, alice)
	require.NoError(t, err)
	assert.True(t, res.Built)
	assert.Len(t, callsOf(fr, "nix-instantiate"), evals, "share evaluates no channel")
	c = mustGet(t, h, "shop")
	assert.Empty(t, c.StateVersion)
	assert.Equal(t, ch, c.Channel)
	assert.Equal(t, []string{"jane"}, c.SharedWith)
}
