package generator

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/flyingcircusio/devhost/internal/hostconfig"
	"github.com/flyingcircusio/devhost/internal/registry"
	"github.com/flyingcircusio/devhost/templates"
)

// testConfig is a valid host configuration rooted at dir.
func testConfig(dir string) *hostconfig.Config {
	cfg := hostconfig.Default("dev.example.com")
	cfg.StateDir = dir + "/state"
	cfg.GeneratedDir = dir + "/generated"
	cfg.ProfileDir = dir + "/profiles"
	return cfg
}

// sshKey is a real, deterministic ed25519 authorized_keys line.
func sshKey(t testing.TB, i int) string {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	binary.BigEndian.PutUint64(seed, uint64(i)+1)
	pub, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(seed).Public())
	require.NoError(t, err)
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + fmt.Sprintf(" user%d@laptop", i)
}

// containers returns n valid containers; every third is stopped, every
// other has aliases, and the values that may hold arbitrary text hold
// hostile text.
func containers(t testing.TB, n int) []*registry.Container {
	t.Helper()
	out := make([]*registry.Container, n)
	base := netip.MustParseAddr("10.233.0.2")
	addr := base
	created := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	for i := range out {
		c := &registry.Container{
			Name:        fmt.Sprintf("c%d", i),
			Owner:       []string{"alice", "bob", "carol_x"}[i%3],
			Environment: "dev",
			Root:        fmt.Sprintf(`/home/a"b/${x}''\shop%d`, i),
			ServiceUser: "s-dev",
			Channel:     "https://hydra.flyingcircus.io/build/116563/download/1/nixexprs.tar.xz",
			Address:     addr,
			State:       registry.Running,
			Created:     created,
			Deployed:    created.Add(time.Duration(i) * time.Minute),
			SSHKeys:     []string{sshKey(t, i)},
			Labels:      map[string]string{"note": `<script>alert("x")</script> ${x} '' \`, "team": "shop"},
			LastError:   "\"; rm -rf / #\n${builtins.abort \"x\"}",
		}
		if i%2 == 0 {
			c.StateVersion = "20.09"
		}
		if i%2 == 1 {
			c.Aliases = []string{"www", "admin-" + fmt.Sprint(i)}
			c.ServiceUser = ""
			c.Deployed = time.Time{}
		}
		if i%3 == 2 {
			c.State = registry.Stopped
		}
		out[i] = c
		addr = addr.Next()
	}
	return out
}

func loadTemplates(t testing.TB) *templates.Set {
	t.Helper()
	s, err := templates.Load("")
	require.NoError(t, err)
	return s
}

// nixInstantiate returns the argv of nix-instantiate or skips the test.
func nixInstantiate(t testing.TB) []string {
	t.Helper()
	p, err := exec.LookPath("nix-instantiate")
	if err != nil {
		t.Skip("nix-instantiate not found in PATH: install Nix to check the generated set with the real evaluator")
	}
	return []string{p}
}
