package generator

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/hostconfig"
	"github.com/flyingcircusio/devhost/internal/limits"
	"github.com/flyingcircusio/devhost/internal/registry"
)

// TestUnitPart: of a container's host file, exactly what its running unit
// would have to be restarted for counts — its addresses (its own and the
// host's, both families) and its resource limits (its own or the host's
// defaults) — and not its names, sharing or whether it starts at boot.
func TestUnitPart(t *testing.T) {
	tmpl := loadTemplates(t)
	dir := t.TempDir()          // the profile path is in the file
	base := containers(t, 2)[1] // aliases, running
	host := func(cfg *hostconfig.Config, c *registry.Container) []byte {
		t.Helper()
		set, err := Generate(cfg, []*registry.Container{c}, tmpl)
		require.NoError(t, err)
		b, ok := set.Files[HostFile(c.Name)]
		require.True(t, ok)
		return b
	}
	ipv6 := func(cfg *hostconfig.Config) {
		cfg.Addresses.Network6 = netip.MustParsePrefix("fd00:d::/64")
		cfg.Addresses.HostAddress6 = netip.MustParseAddr("fd00:d::1")
	}
	with6 := func(c *registry.Container) { c.Address6 = netip.MustParseAddr("fd00:d::2") }
	before := host(testConfig(dir), base)
	part := UnitPart(before)
	require.Contains(t, part, "localAddress = ")
	require.NotContains(t, part, "virtualHosts")
	require.NotContains(t, part, "autoStart")

	for _, tt := range []struct {
		name    string
		cfg     func(*hostconfig.Config)
		c       func(*registry.Container)
		restart bool
	}{
		{"nothing", nil, nil, false},
		{"aliases", nil, func(c *registry.Container) { c.Aliases = []string{"shop"} }, false},
		{"stopped (autoStart)", nil, func(c *registry.Container) { c.State = registry.Stopped }, false},
		{"shared", nil, func(c *registry.Container) { c.SharedWith = []string{"dave"}; c.SharedKeys = []string{sshKey(t, 9)} }, false},
		{"keys", nil, func(c *registry.Container) { c.SSHKeys = []string{sshKey(t, 8)} }, false},
		{"address", nil, func(c *registry.Container) { c.Address = c.Address.Next() }, true},
		{"IPv6 added", ipv6, with6, true},
		{"own limits", nil, func(c *registry.Container) { c.Limits = limits.Limits{MemoryMax: "2G"} }, true},
		{"host's default limits", func(cfg *hostconfig.Config) { cfg.Limits.TasksMax = 512 }, nil, true},
		{"host address", func(cfg *hostconfig.Config) { cfg.Addresses.HostAddress = cfg.Addresses.HostAddress.Next() }, nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(dir)
			if tt.cfg != nil {
				tt.cfg(cfg)
			}
			c := *base
			if tt.c != nil {
				tt.c(&c)
			}
			after := host(cfg, &c)
			assert.Equal(t, tt.restart, UnitPart(after) != part, "before:\n%s\nafter:\n%s", before, after)
		})
	}

	// The host's default limits do not count where the container's own
	// take precedence.
	own := *base
	own.Limits = limits.Limits{TasksMax: 100}
	cfg := testConfig(dir)
	cfg.Limits.TasksMax = 512
	assert.Equal(t, UnitPart(host(testConfig(dir), &own)), UnitPart(host(cfg, &own)))

	// A file not in the template's shape (an admin's override) counts
	// whole.
	odd := []byte("{ containers = { x = { localAddress = \"10.0.0.2\"; }; }; }\n")
	assert.Equal(t, string(odd), UnitPart(odd))
	assert.True(t, strings.HasPrefix(UnitPart(before), "  containers."))
}
