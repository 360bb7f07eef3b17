package registry

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/diag"
	"github.com/flyingcircusio/devhost/internal/hostconfig"
)

// tinyPool is 10.0.0.0/29: .0 network, .1 host, .7 broadcast, so five
// container addresses .2-.6.
var tinyPool = hostconfig.AddressPool{
	Network:     netip.MustParsePrefix("10.0.0.0/29"),
	HostAddress: netip.MustParseAddr("10.0.0.1"),
}

// register allocates an address for name and puts the container, as
// ensure does under the lock.
func register(t *testing.T, r *Registry, pool hostconfig.AddressPool, name string) string {
	t.Helper()
	a, err := r.Allocate(pool, name)
	require.NoError(t, err)
	require.NoError(t, r.Put(testContainer(name, a.String())))
	return a.String()
}

func TestAllocateLifecycle(t *testing.T) {
	dir := t.TempDir()
	r := Open(dir)

	// Fresh addresses in order; never network, host or broadcast.
	got := map[string]string{}
	for _, n := range []string{"a", "b", "c"} {
		got[n] = register(t, r, tinyPool, n)
	}
	assert.Equal(t, map[string]string{"a": "10.0.0.2", "b": "10.0.0.3", "c": "10.0.0.4"}, got)

	// A registered container keeps its address, and allocating again does
	// not use up another one.
	a, err := r.Allocate(tinyPool, "b")
	require.NoError(t, err)
	assert.Equal(t, "10.0.0.3", a.String())

	// A destroyed container's address is not reused while fresh ones remain
	// (state survives reopening the registry, as in a new process).
	require.NoError(t, r.Delete("a"))
	r = Open(dir)
	assert.Equal(t, "10.0.0.5", register(t, r, tinyPool, "d"))
	assert.Equal(t, "10.0.0.6", register(t, r, tinyPool, "e"))

	// The pool is exhausted: now the freed address comes back.
	assert.Equal(t, "10.0.0.2", register(t, r, tinyPool, "f"))

	// Truly full: an error that says what to do.
	_, err = r.Allocate(tinyPool, "g")
	require.ErrorIs(t, err, ErrPoolExhausted)
	assert.Contains(t, err.Error(), "10.0.0.0/29")

	// Destroying two frees the lowest first.
	require.NoError(t, r.Delete("d"))
	require.NoError(t, r.Delete("b"))
	assert.Equal(t, "10.0.0.3", register(t, r, tinyPool, "g"))
	assert.Equal(t, "10.0.0.5", register(t, r, tinyPool, "h"))

	// Never two containers on one address.
	all, err := r.LoadAll()
	require.NoError(t, err)
	seen := map[netip.Addr]string{}
	for _, c := range all {
		require.Empty(t, seen[c.Address], "%s and %s share %s", seen[c.Address], c.Name, c.Address)
		seen[c.Address] = c.Name
		assert.True(t, tinyPool.Assignable(c.Address))
	}
	assert.Len(t, all, 5)
}

func TestAllocateSkipsTakenAndHostAddress(t *testing.T) {
	r := Open(t.TempDir())
	pool := hostconfig.AddressPool{Network: netip.MustParsePrefix("10.0.0.0/29"), HostAddress: netip.MustParseAddr("10.0.0.3")}
	// An entry written by hand (or by an older devhost) holds .4.
	require.NoError(t, r.Put(testContainer("manual", "10.0.0.4")))
	var got []string
	for _, n := range []string{"a", "b", "c", "d"} {
		got = append(got, register(t, r, pool, n))
	}
	assert.Equal(t, []string{"10.0.0.1", "10.0.0.2", "10.0.0.5", "10.0.0.6"}, got)
}

func TestAllocatePoolChangeStartsOver(t *testing.T) {
	r := Open(t.TempDir())
	register(t, r, tinyPool, "a")
	other := hostconfig.AddressPool{Network: netip.MustParsePrefix("10.1.0.0/24"), HostAddress: netip.MustParseAddr("10.1.0.1")}
	assert.Equal(t, "10.1.0.2", register(t, r, other, "b"))
	a, err := r.Allocate(other, "a")
	require.NoError(t, err)
	assert.Equal(t, "10.0.0.2", a.String(), "a container keeps its address for life, even outside a new pool")
}

func TestAllocateRefusesWithInvalidEntry(t *testing.T) {
	r := Open(t.TempDir())
	writeEntry(t, r, "broken", "name = \"broken\"\naddress = \"10.0.0.2\"\n")
	_, err := r.Allocate(tinyPool, "a")
	var de *diag.Error
	require.ErrorAs(t, err, &de, "an invalid entry might hold an address: refuse rather than hand it out twice")
}

func TestAllocateBadState(t *testing.T) {
	r := Open(t.TempDir())
	require.NoError(t, os.WriteFile(filepath.Join(r.stateDir, "addresses.hcl"), []byte("network = 1\n"), 0o644))
	_, err := r.Allocate(tinyPool, "a")
	var de *diag.Error
	require.ErrorAs(t, err, &de)
}

// Allocate decodes only entries written since its address cache: an entry
// changed behind its back (a hand edit takes the next fresh address) has a
// new file identity and is read again, so that address is not handed out.
func TestAllocateSeesEntriesChangedSinceItsCache(t *testing.T) {
	r := Open(t.TempDir())
	register(t, r, tinyPool, "a")                             // .2, cached
	register(t, r, tinyPool, "b")                             // .3
	require.NoError(t, r.Put(testContainer("a", "10.0.0.4"))) // a hand edit
	assert.Equal(t, "10.0.0.5", register(t, r, tinyPool, "c"))
	require.NoError(t, os.WriteFile(r.addrCachePath(), []byte("{broken"), 0o640))
	assert.Equal(t, "10.0.0.6", register(t, r, tinyPool, "d"), "a broken cache is rebuilt")
}
