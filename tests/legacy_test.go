package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/generator"
	"github.com/flyingcircusio/devhost/tests/doubles/double"
)

// oldContainer makes what the old devhost left of a container: its
// /etc/devhost record, optionally its enc.json and its profile.
func (s *sandbox) oldContainer(t *testing.T, record string, name, encChannel string, profile bool, mtime time.Time) {
	t.Helper()
	p := s.path("etc-devhost", name+".json")
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(record), 0o644))
	require.NoError(t, os.Chtimes(p, mtime, mtime))
	if encChannel != "" {
		enc := s.path("old-containers", name, "etc", "nixos", "enc.json")
		require.NoError(t, os.MkdirAll(filepath.Dir(enc), 0o755))
		require.NoError(t, os.WriteFile(enc, []byte(`{"parameters": {"environment_url": "`+encChannel+`", "environment": "container"}}`), 0o644))
	}
	if profile {
		store := s.path("double", "store", "0000-nixos-system-"+name)
		require.NoError(t, os.MkdirAll(store, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(store, "inputs.json"), []byte(`{"name": "`+name+`"}`), 0o644))
		prof := generator.ProfilePath(s.config(), name)
		require.NoError(t, os.MkdirAll(filepath.Dir(prof), 0o755))
		require.NoError(t, os.Symlink(store, prof+"-1-link"))
		require.NoError(t, os.Symlink(filepath.Base(prof)+"-1-link", prof))
	}
	conf := s.path("etc-containers", name+".conf")
	require.NoError(t, os.MkdirAll(filepath.Dir(conf), 0o755))
	require.NoError(t, os.WriteFile(conf, []byte("PRIVATE_NETWORK=1\n"), 0o644))
}

func TestImportLegacy(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, sandboxOpts{})
	longAgo := time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)
	s.oldContainer(t, `{"name": "web1", "ip": "10.100.3.2", "aliases": ["www", "admin"], "enabled": true}`,
		"web1", "https://hydra.example.org/build/7/download/1/nixexprs.tar.xz", true, longAgo)
	// Outside the pool, no aliases (the old script wrote [""]), disabled,
	// no enc.json: --channel applies.
	s.oldContainer(t, `{"name": "old2", "ip": "10.233.5.2", "aliases": [""], "enabled": false}`, "old2", "", true, longAgo)
	args := []string{"import-legacy", "--dir", s.path("etc-devhost"), "--containers-dir", s.path("old-containers"),
		"--etc-containers", s.path("etc-containers"), "--owner", "alice", "--channel", channel}

	r := s.runAs("alice", args...)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "admin group")

	r = s.ok("root", append(args, "--dry-run")...)
	assert.Contains(t, r.stdout, "web1        would import, address 10.100.3.2")
	// web1's root is in the old containers directory, not in containers_dir.
	assert.Contains(t, r.stderr, "web1: its root directory is "+s.path("old-containers", "web1"))
	assert.NotContains(t, r.stderr, "old2: its root directory")
	assert.Contains(t, r.stdout, "(was 10.233.5.2)")
	assert.Empty(t, s.registry())
	assert.Empty(t, s.records(""))

	r = s.ok("root", append(args, "--json")...)
	var out struct {
		Containers []map[string]any `json:"containers"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	require.Len(t, out.Containers, 2)

	web1 := s.entry("web1")
	require.NotNil(t, web1)
	assert.Equal(t, "10.100.3.2", web1.Address.String())
	assert.Equal(t, []string{"www", "admin"}, web1.Aliases)
	assert.Equal(t, "https://hydra.example.org/build/7/download/1/nixexprs.tar.xz", web1.Channel)
	assert.Equal(t, "running", string(web1.State))
	assert.Equal(t, "alice", web1.Owner)
	assert.True(t, web1.Deployed.Equal(longAgo))
	old2 := s.entry("old2")
	require.NotNil(t, old2)
	assert.Equal(t, "10.100.0.2", old2.Address.String(), "an address outside the pool is replaced")
	assert.Empty(t, old2.Aliases)
	assert.Equal(t, "stopped", string(old2.State))
	assert.Equal(t, channel, old2.Channel)

	rebuilds := s.successfulRebuilds()
	require.Len(t, rebuilds, 1, "one rebuild for the whole import")
	assert.True(t, setNames(rebuilds[0])["web1"] && setNames(rebuilds[0])["old2"])
	assert.Empty(t, s.records("nix-build"), "the old profiles are used as they are")
	_, err := os.Stat(s.path("etc-containers", "web1.conf.pre-devhost"))
	assert.NoError(t, err)
	_, err = os.Stat(s.path("etc-containers", "web1.conf"))
	assert.True(t, os.IsNotExist(err))
	s.checkConsistent()

	// Cleanup sees them as deployed on the record's date: long ago.
	r = s.ok("root", "cleanup", "--dry-run", "--now", longAgo.Add(31*24*time.Hour).Format(time.RFC3339))
	assert.Contains(t, r.stdout, "web1        would destroy")

	// Imported containers are devhost's now: a second import skips them,
	// ensure rebuilds their system, destroy removes their profile.
	r = s.ok("root", args...)
	assert.Contains(t, r.stdout, "skipped: already registered")
	s.ok("alice", "ensure", "web1", "--channel", web1.Channel, "--alias", "www")
	assert.Len(t, s.records("nix-build"), 1)
	s.ok("alice", "destroy", "old2")
	_, err = os.Stat(filepath.Dir(generator.ProfilePath(s.config(), "old2")))
	assert.True(t, os.IsNotExist(err), "the old profile is removed with the container")
	s.checkConsistent()
}

func TestImportLegacyBadRecords(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, sandboxOpts{})
	dir := s.path("etc-devhost")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.json"), []byte("{\"name\": \"bad\",\n \"ip\": 10.1.2.3}\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Upper.json"), []byte(`{"name": "Upper_Case"}`), 0o644))
	r := s.runAs("root", "import-legacy", "--dir", dir, "--channel", channel)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "bad.json:2:")
	assert.Contains(t, r.stderr, "Invalid container name")
	assert.Empty(t, s.registry())

	// A record without channel anywhere.
	require.NoError(t, os.Remove(filepath.Join(dir, "bad.json")))
	require.NoError(t, os.Remove(filepath.Join(dir, "Upper.json")))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "nochan.json"), []byte(`{"name": "nochan", "ip": "10.100.9.2", "aliases": [], "enabled": true}`), 0o644))
	r = s.runAs("root", "import-legacy", "--dir", dir, "--containers-dir", s.path("none"))
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, `No channel for container "nochan"`)
	assert.Empty(t, s.registry())
}

// TestImportLegacyChecksEncChannel: enc.json lies inside the old
// container, whose root could write any channel there. Its channel gets
// the host's check; a refused one falls back to --channel with a warning,
// or stops the import with what to do.
func TestImportLegacyChecksEncChannel(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, sandboxOpts{})
	now := time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)
	s.oldContainer(t, `{"name": "evil1", "ip": "10.100.3.2", "aliases": [], "enabled": true}`, "evil1", "file:///etc", true, now)
	s.oldContainer(t, `{"name": "evil2", "ip": "10.100.3.3", "aliases": [], "enabled": true}`, "evil2", "file:///x=/etc", true, now)
	args := []string{"import-legacy", "--dir", s.path("etc-devhost"), "--containers-dir", s.path("old-containers"),
		"--etc-containers", s.path("etc-containers")}

	r := s.runAs("root", args...)
	assert.NotEqual(t, 0, r.code)
	enc := s.path("old-containers", "evil1", "etc", "nixos", "enc.json")
	assert.Contains(t, r.stderr, `No channel for container "evil1"`)
	assert.Contains(t, r.stderr, enc+" names a channel this devhost refuses")
	assert.Contains(t, r.stderr, "allows no file:// channels")
	assert.Contains(t, r.stderr, `its path contains '='`)
	assert.Contains(t, r.stderr, "pass --channel URL")
	assert.Empty(t, s.registry(), "nothing is imported")

	r = s.ok("root", append(args, "--channel", channel)...)
	assert.Contains(t, r.stderr, "evil1: "+enc+" names a channel this devhost refuses")
	assert.Contains(t, r.stderr, "using --channel "+channel)
	for _, name := range []string{"evil1", "evil2"} {
		c := s.entry(name)
		require.NotNil(t, c, name)
		assert.Equal(t, channel, c.Channel, name)
	}
	s.checkConsistent()
}

// TestImportSurvivesFailedRebuild: an import whose rebuild fails keeps the
// imported entries (they are the admin's desired state), marked with the
// failure and named in the error, and the old containers' profiles stay;
// so does a later failing ensure of another container. The next apply
// applies them. The old code unregistered them again.
func TestImportSurvivesFailedRebuild(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, sandboxOpts{})
	s.ok("alice", "ensure", "shop", "--channel", channel)
	longAgo := time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)
	s.oldContainer(t, `{"name": "web1", "ip": "10.100.3.2", "aliases": ["www"], "enabled": true}`,
		"web1", "https://hydra.example.org/build/7/download/1/nixexprs.tar.xz", true, longAgo)
	s.setControl(map[string]double.Control{"nixos-rebuild": {Fail: true, Message: "error: hash mismatch (double)"}})

	r := s.runAs("root", "import-legacy", "--dir", s.path("etc-devhost"), "--containers-dir", s.path("old-containers"),
		"--etc-containers", s.path("etc-containers"), "--owner", "alice", "--channel", channel)
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "kept in the registry but not applied (their entries record the failure as last_error; fix the cause, then run `devhost apply`): web1\n")
	assert.Contains(t, r.stderr, "hash mismatch")
	web1 := s.entry("web1")
	require.NotNil(t, web1, "the failed rebuild unregistered the imported container")
	assert.Contains(t, web1.LastError, "hash mismatch")
	prof := generator.ProfilePath(s.config(), "web1")
	_, err := os.Stat(prof)
	require.NoError(t, err, "the old container's profile is gone")

	// Another request fails on the same rebuild: only it is undone.
	r = s.runAs("alice", "ensure", "fresh", "--channel", channel)
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "rolled back, as the requests that changed them failed: fresh\n")
	assert.Nil(t, s.entry("fresh"))
	require.NotNil(t, s.entry("web1"))

	s.setControl(nil)
	s.ok("root", "apply")
	assert.True(t, setNames(s.successfulRebuilds()[1])["web1"])
	assert.Empty(t, s.entry("web1").LastError)
	_, err = os.Stat(prof)
	require.NoError(t, err)
	s.checkConsistent()
}
