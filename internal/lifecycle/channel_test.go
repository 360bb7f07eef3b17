package lifecycle

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/channel/channeltest"
)

// channelFixture is a devhost-like tree on the real file system, owned by
// root all the way up: channels/ (the allowed prefix) with a channel
// whose nixos/default.nix is the container's system, a secret next to it,
// and the ways out of a prefix that once worked.
type channelFixture struct {
	base, channels, ok, secret string
}

func newChannelFixture(t *testing.T) channelFixture {
	t.Helper()
	base := channeltest.Dir(t) // skips unless running as root
	f := channelFixture{base: base, channels: filepath.Join(base, "channels"), secret: filepath.Join(base, "private", "secret")}
	f.ok = filepath.Join(f.channels, "ok")
	write := func(p, s string) {
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(s), 0o644))
	}
	write(f.secret, "root-only secret")
	require.NoError(t, os.Chmod(f.secret, 0o600))
	// The container's "system" reads a file inside the channel (must work:
	// the test can tell a broken setup from a refusal), the planted secret
	// by absolute path, and the secret through a symlink in the channel.
	write(filepath.Join(f.ok, "inside"), "channel file")
	write(filepath.Join(f.ok, "nixos", "default.nix"), `{ ... }: { system = {
  inside = builtins.readFile ../inside;
  secret = builtins.readFile `+f.secret+`;
  symlinked = builtins.readFile ../leak;
}; }`)
	require.NoError(t, os.Symlink(f.secret, filepath.Join(f.ok, "leak")))
	require.NoError(t, os.Symlink(f.ok, filepath.Join(f.channels, "current")))
	require.NoError(t, os.MkdirAll(filepath.Join(base, "outside", "nixos"), 0o755))
	require.NoError(t, os.Symlink(filepath.Join(base, "outside"), filepath.Join(f.channels, "out")))
	require.NoError(t, os.MkdirAll(filepath.Join(f.channels, "gw", "nixos"), 0o755))
	require.NoError(t, os.Chmod(filepath.Join(f.channels, "gw"), 0o775))
	require.NoError(t, os.MkdirAll(filepath.Join(f.channels, "ww"), 0o755))
	require.NoError(t, os.Chmod(filepath.Join(f.channels, "ww"), 0o757))
	return f
}

// TestValidateRefusesHostileChannels: the channels that once let a group
// member widen what Nix reads as root are refused before anything
// changes, each with what is wrong.
func TestValidateRefusesHostileChannels(t *testing.T) {
	f := newChannelFixture(t)
	h, fr := testHost(t)
	h.Cfg.Channels.AllowedPrefixes = []string{"https://hydra.flyingcircus.io/build/", "file://" + f.channels + "/"}
	for ch, why := range map[string]string{
		"file://" + f.ok + "=/etc":                                `contains '='`,
		"file://" + f.ok + "=/../../etc":                          `contains '='`,
		"file://" + f.ok + "?/../../../../" + f.base + "/private": `contains '?'`,
		"file://" + f.ok + "#/../../private":                      `contains '#'`,
		"file://" + f.channels + "/%2e%2e/private":                `contains '%'`,
		"file://" + f.channels + "/../private":                    `".." path segment`,
		"file://" + f.channels + "/./ok":                          `"." path segment`,
		"file:///" + f.ok:                                         "empty path segment",
		"file://localhost" + f.ok:                                 "names no host",
		"https://hydra.flyingcircus.io@evil.example/build/1":      "user information",
		"https://hydra.flyingcircus.io:8443/build/1":              "port",
		"https://hydra.flyingcircus.io.evil.example/build/1":      "none of this devhost's allowed prefixes",
		"https://hydra.flyingcircus.io/buildx/1":                  "none of this devhost's allowed prefixes",
		"file://" + f.base + "/outside":                           "none of this devhost's allowed prefixes",
		"file://" + f.channels + "/out":                           "a symlink leads out of them",
		"file://" + f.channels + "/gw/nixos":                      "gw is writable by its group or by others",
		"file://" + f.channels + "/ww":                            "ww is writable by its group or by others",
		"file://" + f.channels + "/missing":                       "does not exist",
		"file://" + filepath.Join(f.ok, "nixos", "default.nix"):   "is not a directory",
	} {
		err := h.Validate(context.Background(), &EnsureRequest{Name: "shop", Channel: ch, Caller: alice}, "provision.nix")
		assert.ErrorContains(t, err, why, ch)
		_, err = h.Ensure(context.Background(), EnsureRequest{Name: "shop", Channel: ch, Caller: alice})
		assert.ErrorContains(t, err, why, "ensure checks the channel it builds from itself: %s", ch)
	}
	assert.Zero(t, fr.count("nix-build"), "no refused channel reached nix-build")
	_, err := h.Reg.Get("shop")
	assert.Error(t, err, "a refused ensure registers nothing")

	h.Cfg.Channels.AllowedPrefixes = nil
	err = h.Validate(context.Background(), &EnsureRequest{Name: "shop", Channel: "file://" + f.ok, Caller: alice}, "provision.nix")
	assert.ErrorContains(t, err, "this devhost allows no file:// channels")
}

// TestBuildArgvCannotReadOutsideChannel runs real nix-instantiate with the
// argv ensure gives nix-build (only the verb changed to evaluation): the
// accepted channels' system may read inside the channel, never the
// planted secret next to it, by path or by symlink.
func TestBuildArgvCannotReadOutsideChannel(t *testing.T) {
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		t.Skip("nix-instantiate not found (CI installs nix-bin)")
	}
	f := newChannelFixture(t)
	eval := func(t *testing.T, argv []string, attr string) (string, error) {
		t.Helper()
		args := []string{"--eval", "--strict"}
		for i := 1; i < len(argv); i++ {
			switch {
			case argv[i] == "-o":
				i++ // the build's result link
			case argv[i] == "system" && argv[i-1] == "-A":
				args = append(args, "system."+attr)
			default:
				args = append(args, argv[i])
			}
		}
		cmd := exec.Command("nix-instantiate", args...)
		cmd.Env = append(os.Environ(), "NIX_PATH=")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, ch := range []string{"file://" + f.ok, "file://" + f.channels + "/current"} {
		t.Run(filepath.Base(ch), func(t *testing.T) {
			h, fr := testHost(t)
			h.Cfg.Channels.AllowedPrefixes = []string{"file://" + f.channels + "/"}
			var argv []string
			fr.before = func(a []string) {
				if a[0] == "nix-build" {
					argv = slices.Clone(a)
				}
			}
			req := EnsureRequest{Name: "shop", Channel: ch, Caller: alice, Provision: []byte("{ ... }: { }\n")}
			require.NoError(t, h.Validate(context.Background(), &req, "provision.nix"))
			_, err := h.Ensure(context.Background(), req)
			require.NoError(t, err)
			require.NotNil(t, argv, "ensure ran nix-build")
			assert.Contains(t, argv, "nixpkgs="+f.ok, "Nix gets the resolved directory")

			out, err := eval(t, argv, "inside")
			require.NoError(t, err, out)
			assert.Contains(t, out, "channel file")
			for _, attr := range []string{"secret", "symlinked"} {
				out, err := eval(t, argv, attr)
				require.Error(t, err, "%s: %s", attr, out)
				assert.Contains(t, out, "forbidden in restricted mode", attr)
				assert.NotContains(t, out, "root-only secret", attr)
			}
		})
	}

	// The same fixture catches a leak: with the search path the old code
	// built from the raw URL file://<w>/x=/../../<dir>, Nix split the
	// second entry at '=' and allowed /<dir>, so the secret was read.
	t.Run("old argv leaked", func(t *testing.T) {
		rel := strings.TrimPrefix(filepath.Dir(f.secret), "/")
		raw := filepath.Join(f.base, "me", "w") + "/x=/../../" + rel
		attacker := filepath.Join(f.base, "me", rel, "nixos")
		require.NoError(t, os.MkdirAll(attacker, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(attacker, "default.nix"),
			[]byte(`{ ... }: { system.secret = builtins.readFile /`+rel+`/secret; }`), 0o644))
		old := []string{"nix-build", "<nixpkgs/nixos>", "-A", "system", "-I", "nixpkgs=" + raw, "-I", raw,
			"--option", "restrict-eval", "true", "--option", "nix-path", ""}
		out, err := eval(t, old, "secret")
		require.NoError(t, err, out)
		assert.Contains(t, out, "root-only secret")
	})
}

// TestImportChecksChannels: Import applies the host's channel policy
// itself, whatever its caller checked.
func TestImportChecksChannels(t *testing.T) {
	h, _ := testHost(t)
	root := Caller{User: "root", Root: true}
	res, _, err := h.Import(context.Background(), []ImportItem{
		{Name: "evil", Owner: "root", Channel: "file:///etc", Deployed: time.Now()},
		{Name: "fine", Owner: "root", Channel: "https://example.org/c.tar.xz", Deployed: time.Now()},
	}, root, ImportOptions{DryRun: true})
	require.NoError(t, err)
	require.Len(t, res, 2)
	assert.Contains(t, res[0].Skipped, "this devhost allows no file:// channels")
	assert.True(t, res[1].Imported, res[1].Skipped)
}
