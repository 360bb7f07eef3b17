package generator

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/hostconfig"
	"github.com/flyingcircusio/devhost/internal/registry"
)

func dnsConfig(t testing.TB, shards int) *hostconfig.Config {
	cfg := testConfig(t.TempDir())
	cfg.ACME.Challenge, cfg.ACME.DNSProvider, cfg.ACME.Shards = hostconfig.DNS01, "rfc2136", shards
	return cfg
}

// withAliases is n containers named c0…, every one with an alias.
func withAliases(t testing.TB, n int) []*registry.Container {
	cs := containers(t, n)
	for _, c := range cs {
		c.Aliases = []string{"www"}
	}
	return cs
}

// plan renders cs after prev and returns the plan in the set's certs.json.
func plan(t *testing.T, cfg *hostconfig.Config, cs []*registry.Container, prev Shards) *CertPlan {
	t.Helper()
	set, err := GenerateAfter(cfg, cs, loadTemplates(t), prev)
	require.NoError(t, err)
	var p CertPlan
	require.NoError(t, json.Unmarshal(set.Files[CertsFile], &p))
	return &p
}

// changed lists the certificates of b whose names differ from a's (new
// ones included): each is an issuance.
func changed(a, b *CertPlan) []string {
	var out []string
	for n, c := range b.Certs {
		o, ok := a.Certs[n]
		if !ok || o.Domain != c.Domain || !slices.Equal(o.ExtraDomainNames, c.ExtraDomainNames) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// TestShardsReissueAtMostOneAndNoneOnRemoval: adding a container with
// aliases changes exactly one certificate (its slot's shard), removing one
// changes none, and the next addition to that slot drops the retired name.
func TestShardsReissueAtMostOneAndNoneOnRemoval(t *testing.T) {
	cfg := dnsConfig(t, 5)
	cs := withAliases(t, 300)
	p0 := plan(t, cfg, cs[:299], nil)
	for n, c := range p0.Certs {
		assert.LessOrEqual(t, 1+len(c.ExtraDomainNames), MaxCertNames, n)
	}
	assert.Len(t, p0.Certs, 1+5, "the main certificate and one per slot")

	added := cs[299]
	p1 := plan(t, cfg, cs, p0.Shards)
	slot := ShardSlot(added.Name, 5)
	assert.Equal(t, []string{ShardCertName(cfg.PublicAddress, slot, 0)}, changed(p0, p1), "a new container reissues its shard only")
	assert.Equal(t, ShardCertName(cfg.PublicAddress, slot, 0), p1.VhostCert[added.Name+"."+cfg.PublicAddress])

	// Remove a container of the same slot: nothing changes, the name stays.
	var gone *registry.Container
	rest := []*registry.Container{}
	for _, c := range cs {
		if gone == nil && c != added && ShardSlot(c.Name, 5) == slot {
			gone = c
			continue
		}
		rest = append(rest, c)
	}
	require.NotNil(t, gone)
	p2 := plan(t, cfg, rest, p1.Shards)
	assert.Empty(t, changed(p1, p2), "removing a container reissues nothing")
	shard := p2.Certs[ShardCertName(cfg.PublicAddress, slot, 0)]
	assert.Contains(t, shard.ExtraDomainNames, "*."+gone.Name+"."+cfg.PublicAddress, "the retired name stays until the shard is reissued anyway")
	assert.NotContains(t, p2.VhostCert, gone.Name+"."+cfg.PublicAddress)

	// Without the memory (a lost certs.json) the plan is the registry's.
	assert.NotContains(t, plan(t, cfg, rest, nil).Certs[ShardCertName(cfg.PublicAddress, slot, 0)].ExtraDomainNames,
		"*."+gone.Name+"."+cfg.PublicAddress)

	// A new container in that slot: one reissue, and the retired name goes.
	var next *registry.Container
	for i := 300; next == nil; i++ {
		if c := withAliases(t, i+1)[i]; ShardSlot(c.Name, 5) == slot {
			next = c
		}
	}
	next.Address = cs[299].Address.Next()
	p3 := plan(t, cfg, append(rest, next), p2.Shards)
	assert.Equal(t, []string{ShardCertName(cfg.PublicAddress, slot, 0)}, changed(p2, p3))
	assert.NotContains(t, p3.Certs[ShardCertName(cfg.PublicAddress, slot, 0)].ExtraDomainNames, "*."+gone.Name+"."+cfg.PublicAddress)

	// A container losing its aliases reissues nothing either.
	rest[0].Aliases = nil
	assert.Empty(t, changed(p3, plan(t, cfg, append(rest, next), p3.Shards)))
}

// TestShardOverflowSplits: a slot with more than 99 wildcards is cut into
// certificates of at most 100 names.
func TestShardOverflowSplits(t *testing.T) {
	cfg := dnsConfig(t, 1)
	p := plan(t, cfg, withAliases(t, 250), nil)
	assert.Len(t, p.Certs, 1+3)
	total := 0
	for n, c := range p.Certs {
		assert.LessOrEqual(t, 1+len(c.ExtraDomainNames), MaxCertNames, n)
		if n != cfg.PublicAddress {
			assert.Equal(t, "*."+cfg.PublicAddress, c.Domain)
			total += len(c.ExtraDomainNames)
		}
	}
	assert.Equal(t, 250, total)
	assert.Len(t, p.VhostCert, 250)
}

// TestFlatAndHTTPHaveNoShards: flat aliases are covered by the main
// wildcard; http-01 writes no plan at all.
func TestFlatAndHTTPHaveNoShards(t *testing.T) {
	cfg := dnsConfig(t, 5)
	cfg.AliasStyle = hostconfig.AliasFlat
	p := plan(t, cfg, withAliases(t, 50), nil)
	assert.Equal(t, map[string]Cert{cfg.PublicAddress: {Domain: cfg.PublicAddress, ExtraDomainNames: []string{"*." + cfg.PublicAddress}}}, p.Certs)
	assert.Empty(t, p.VhostCert)

	set, err := Generate(testConfig(t.TempDir()), withAliases(t, 5), loadTemplates(t))
	require.NoError(t, err)
	assert.NotContains(t, set.Files, CertsFile)
}

// TestShardSlotIsStable pins the hash: changing it would move every
// container to another shard and reissue every shard certificate.
func TestShardSlotIsStable(t *testing.T) {
	got := []int{}
	for _, n := range []string{"shop", "c0", "c1", "0a1b2c3d4e5"} {
		got = append(got, ShardSlot(n, 10))
	}
	assert.Equal(t, []int{7, 8, 7, 9}, got, "FNV-1a 32 of the name, modulo the slots")
}

// TestReadShards reads the memory back from a written set.
func TestReadShards(t *testing.T) {
	cfg := dnsConfig(t, 3)
	set, err := Generate(cfg, withAliases(t, 10), loadTemplates(t))
	require.NoError(t, err)
	require.NoError(t, Write(cfg.GeneratedDir, set))
	got, err := ReadShards(cfg.GeneratedDir)
	require.NoError(t, err)
	var p CertPlan
	require.NoError(t, json.Unmarshal(set.Files[CertsFile], &p))
	assert.Equal(t, p.Shards, got)
	assert.Len(t, got, 3)

	none, err := ReadShards(filepath.Join(t.TempDir(), "absent"))
	require.NoError(t, err)
	assert.Nil(t, none)

	bad := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bad, CertsFile), []byte("{"), 0o644))
	_, err = ReadShards(bad)
	require.ErrorContains(t, err, fmt.Sprintf("read certificate plan %s", filepath.Join(bad, CertsFile)))
}
