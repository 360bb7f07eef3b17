package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/dirtree"
	"github.com/flyingcircusio/devhost/internal/registry"
	"github.com/flyingcircusio/devhost/tests/doubles/double"
)

// snapshotDir reads every file below dir (relative slash path -> content).
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	m, err := dirtree.Files(dir)
	require.NoError(t, err)
	return m
}

// lineOf is the 1-based number of the first line of src containing sub.
func lineOf(t *testing.T, src, sub string) int {
	t.Helper()
	for i, l := range strings.Split(src, "\n") {
		if strings.Contains(l, sub) {
			return i + 1
		}
	}
	t.Fatalf("%q not found in:\n%s", sub, src)
	return 0
}

// TestApplyHandEdit: an admin edits a registry entry by hand and runs
// `devhost apply`: the live set is regenerated and applied through the
// lifecycle's one coalesced rebuild, never written behind its back. A
// non-admin is refused, and an invalid edit is refused with its file and
// line while the live set stays as it was. `devhost render` only ever
// previews.
func TestApplyHandEdit(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, sandboxOpts{})
	s.ok("alice", "ensure", "shop", "--channel", channel, "--alias", "www")
	require.Len(t, s.records("nixos-rebuild"), 1)
	live := s.config().GeneratedDir
	entry := registry.Open(s.config().StateDir).Path("shop")

	// The admin adds an alias by hand.
	src, err := os.ReadFile(entry)
	require.NoError(t, err)
	edited := strings.Replace(string(src), `["www"]`, `["www", "admin"]`, 1)
	require.NotEqual(t, string(src), edited, "fixture changed: %s", src)
	require.NoError(t, os.WriteFile(entry, []byte(edited), 0o644))
	before := snapshotDir(t, live)

	// A member who is not an admin may not apply it.
	r := s.runAs("alice", "apply")
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, `user "alice" may not apply the registry`)
	assert.Empty(t, r.stdout)
	assert.Len(t, s.records("nixos-rebuild"), 1, "refused: no rebuild")
	assert.Equal(t, before, snapshotDir(t, live), "refused: the live set is untouched")

	// render, even by an admin, only previews.
	state := snapshotDir(t, s.config().StateDir)
	r = s.ok("carol", "render")
	assert.Contains(t, r.stdout, `"admin.shop.dev.example.com"`)
	assert.Equal(t, state, snapshotDir(t, s.config().StateDir), "render changed the state directory")
	assert.Equal(t, before, snapshotDir(t, live), "render changed the live set")
	assert.Len(t, s.records("nixos-rebuild"), 1, "render rebuilt the host")

	// The admin (carol is in wheel) applies it: exactly one rebuild.
	r = s.ok("carol", "apply")
	assert.Equal(t, live+": generation 2 applied, host rebuilt (1 container(s))\n", r.stdout)
	rebuilds := s.records("nixos-rebuild")
	require.Len(t, rebuilds, 2, "exactly one more rebuild")
	assert.Equal(t, []string{"switch"}, rebuilds[1].Argv)
	assert.True(t, setNames(rebuilds[1])["shop"])
	host, err := os.ReadFile(filepath.Join(live, "containers", "shop.nix"))
	require.NoError(t, err)
	assert.Contains(t, string(host), `"admin.shop.dev.example.com"`, "the set reflects the edit")
	assert.Equal(t, []string{"www", "admin"}, s.entry("shop").Aliases)
	s.checkConsistent()

	// Nothing pending: apply says so and rebuilds nothing.
	r = s.ok("root", "apply", "--json")
	var res struct {
		Dir        string   `json:"dir"`
		Generation int      `json:"generation"`
		Rebuilt    bool     `json:"rebuilt"`
		Files      []string `json:"files"`
		Containers int      `json:"containers"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res), r.stdout)
	assert.Equal(t, live, res.Dir)
	assert.Equal(t, 2, res.Generation)
	assert.False(t, res.Rebuilt)
	assert.Equal(t, 1, res.Containers)
	assert.Contains(t, res.Files, "containers/shop.nix")
	assert.Len(t, s.records("nixos-rebuild"), 2)

	// An invalid hand-edit: refused with file and line, exit 1, nothing
	// rebuilt, the live set untouched.
	good, err := os.ReadFile(entry)
	require.NoError(t, err)
	bad := strings.Replace(string(good), `"admin"]`, `"Admin Panel"]`, 1)
	require.NotEqual(t, string(good), bad)
	require.NoError(t, os.WriteFile(entry, []byte(bad), 0o644))
	before = snapshotDir(t, live)
	r = s.runAs("root", "apply")
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, fmt.Sprintf("%s:%d:", entry, lineOf(t, bad, "Admin Panel")))
	assert.Contains(t, r.stderr, "nothing was changed")
	assert.Len(t, s.records("nixos-rebuild"), 2, "no rebuild for an invalid registry")
	assert.Equal(t, before, snapshotDir(t, live), "the live set is untouched")

	// Repaired by hand: consistent again without a rebuild.
	require.NoError(t, os.WriteFile(entry, good, 0o644))
	r = s.ok("root", "apply")
	assert.Contains(t, r.stdout, "no rebuild needed")
	assert.Len(t, s.records("nixos-rebuild"), 2)
	s.checkConsistent()

	// A preview with --out is anyone's and touches neither the live set
	// nor the host.
	before = snapshotDir(t, live)
	preview := s.path("preview")
	s.ok("alice", "render", "--out", preview)
	assert.FileExists(t, filepath.Join(preview, "containers", "shop.nix"))
	assert.Equal(t, before, snapshotDir(t, live))
	assert.Len(t, s.records("nixos-rebuild"), 2)
}

// TestFailedApplyKeepsHandEdit is issue 10's finding: an alias added by
// hand and a failing `devhost apply` silently removed the alias. The
// failed rebuild puts the host's previous live set back, keeps the entry
// as the admin wrote it (marked with the failure) and names it and the
// cause; the next apply, once the cause is fixed, applies it.
func TestFailedApplyKeepsHandEdit(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, sandboxOpts{})
	s.ok("alice", "ensure", "shop", "--channel", channel, "--alias", "www")
	live := s.config().GeneratedDir
	entry := registry.Open(s.config().StateDir).Path("shop")
	src, err := os.ReadFile(entry)
	require.NoError(t, err)
	edited := strings.Replace(string(src), `["www"]`, `["www", "admin"] # carol, for the demo`, 1)
	require.NotEqual(t, string(src), edited, "fixture changed: %s", src)
	require.NoError(t, os.WriteFile(entry, []byte(edited), 0o644))
	liveBefore := snapshotDir(t, live)

	s.setControl(map[string]double.Control{"nixos-rebuild": {Fail: true, Message: "error: the option `services.nginx' is broken"}})
	r := s.runAs("carol", "apply")
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "kept in the registry but not applied")
	assert.Contains(t, r.stderr, ": shop\n", "the error names the container")
	assert.Contains(t, r.stderr, "the option `services.nginx' is broken", "and says why")
	require.Len(t, s.records("nixos-rebuild"), 2)
	assert.Equal(t, liveBefore, snapshotDir(t, live), "the host's live set is the previous one")

	got, err := os.ReadFile(entry)
	require.NoError(t, err)
	assert.Contains(t, string(got), `["www", "admin"] # carol, for the demo`, "the hand edit survives, comment and all")
	c := s.entry("shop")
	assert.Equal(t, []string{"www", "admin"}, c.Aliases)
	assert.Contains(t, c.LastError, "the option `services.nginx' is broken")

	// Fixed: apply again, which applies the alias and clears the mark.
	s.setControl(nil)
	s.ok("carol", "apply")
	host, err := os.ReadFile(filepath.Join(live, "containers", "shop.nix"))
	require.NoError(t, err)
	assert.Contains(t, string(host), `"admin.shop.dev.example.com"`)
	assert.Empty(t, s.entry("shop").LastError)
	got, err = os.ReadFile(entry)
	require.NoError(t, err)
	assert.Equal(t, edited, string(got), "the entry is the admin's again, byte for byte")
	s.checkConsistent()
}

// TestFailedActivationRestoresSystem: a rebuild that switched the host's
// system profile and then failed (the new system's activation failed)
// leaves the host on its previous system: the profile points at it again
// and it is activated again, as `nixos-rebuild switch --rollback` would;
// the error says so. A rebuild that fails before switching (evaluation)
// touches the system not at all.
func TestFailedActivationRestoresSystem(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, sandboxOpts{})
	s.ok("alice", "ensure", "shop", "--channel", channel)
	profile := s.path("system")
	sys1, err := filepath.EvalSymlinks(profile)
	require.NoError(t, err, "the rebuild double switched no system")
	liveBefore := snapshotDir(t, s.config().GeneratedDir)

	// Evaluation error: nothing switched, nothing to restore.
	s.setControl(map[string]double.Control{"nixos-rebuild": {Fail: true}})
	r := s.runAs("alice", "ensure", "shop", "--channel", channel, "--alias", "www")
	assert.Equal(t, 2, r.code, r.stderr)
	assert.NotContains(t, r.stderr, "switched the host's system")
	assert.Empty(t, s.records("switch-to-configuration"))

	// Activation error after the switch.
	s.setControl(map[string]double.Control{"nixos-rebuild": {FailAfterSwitch: true}})
	r = s.runAs("alice", "ensure", "shop", "--channel", channel, "--alias", "www")
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "the failed rebuild had switched the host's system; it runs the previous one again, "+sys1)
	got, err := filepath.EvalSymlinks(profile)
	require.NoError(t, err)
	assert.Equal(t, sys1, got, "the system profile points at the previous system")
	var sets [][]string
	for _, rec := range s.records("nix-env") {
		if rec.Argv[1] == profile {
			sets = append(sets, rec.Argv)
		}
	}
	assert.Equal(t, [][]string{{"-p", profile, "--set", sys1}}, sets, "the system profile, set back once")
	stc := s.records("switch-to-configuration")
	require.Len(t, stc, 1)
	assert.Equal(t, []string{"switch"}, stc[0].Argv)
	assert.Equal(t, sys1, stc[0].Extra["system"], "the previous system was activated")
	assert.Equal(t, liveBefore, snapshotDir(t, s.config().GeneratedDir), "the live set is the previous one")
	assert.Empty(t, s.entry("shop").Aliases)

	s.setControl(nil)
	s.ok("alice", "ensure", "shop", "--channel", channel, "--alias", "www")
	s.checkConsistent()
}
