package registry

import (
	"bytes"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
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

// pool6 is tinyPool with IPv6 from a /64.
var pool6 = hostconfig.AddressPool{
	Network:      tinyPool.Network,
	HostAddress:  tinyPool.HostAddress,
	Network6:     netip.MustParsePrefix("fd00:1:2:3::/64"),
	HostAddress6: netip.MustParseAddr("fd00:1:2:3::1"),
}

// register6 is register with an IPv6 address too.
func register6(t *testing.T, r *Registry, pool hostconfig.AddressPool, name string) (string, string) {
	t.Helper()
	a, err := r.Allocate(pool, name)
	require.NoError(t, err)
	a6, err := r.Allocate6(pool, name)
	require.NoError(t, err)
	c := testContainer(name, a.String())
	c.Address6 = a6
	require.NoError(t, r.Put(c))
	return a.String(), a6.String()
}

// TestAllocate6: IPv6 addresses come from network6 in ascending order,
// stay with their container, are recorded in the entry and survive a new
// process, and a destroyed container's address is not handed out again
// while fresh ones remain.
func TestAllocate6(t *testing.T) {
	dir := t.TempDir()
	r := Open(dir)
	var got []string
	for _, n := range []string{"a", "b", "c"} {
		_, a6 := register6(t, r, pool6, n)
		got = append(got, a6)
	}
	assert.Equal(t, []string{"fd00:1:2:3::2", "fd00:1:2:3::3", "fd00:1:2:3::4"}, got)

	b, err := Open(dir).Get("b")
	require.NoError(t, err)
	assert.Equal(t, "fd00:1:2:3::3", b.Address6.String(), "recorded in the entry")
	src, err := os.ReadFile(r.Path("b"))
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^address6 += "fd00:1:2:3::3"$`, string(src))

	a6, err := Open(dir).Allocate6(pool6, "b")
	require.NoError(t, err)
	assert.Equal(t, "fd00:1:2:3::3", a6.String(), "stable")

	require.NoError(t, r.Delete("c"))
	_, a6s := register6(t, Open(dir), pool6, "d")
	assert.Equal(t, "fd00:1:2:3::5", a6s, "the destroyed container's address is not reused")

	// A host address in the middle of the pool is skipped.
	other := pool6
	other.HostAddress6 = netip.MustParseAddr("fd00:1:2:3::6")
	_, a6s = register6(t, r, other, "e")
	assert.Equal(t, "fd00:1:2:3::7", a6s)
}

// TestAllocate6ForOldEntry: an entry registered before network6 was
// configured gets an address at its next allocation, above every address
// handed out, and keeps its IPv4 address.
func TestAllocate6ForOldEntry(t *testing.T) {
	r := Open(t.TempDir())
	register(t, r, tinyPool, "old")
	register6(t, r, pool6, "new")
	a6, err := r.Allocate6(pool6, "old")
	require.NoError(t, err)
	assert.Equal(t, "fd00:1:2:3::3", a6.String())
	c, err := r.Get("old")
	require.NoError(t, err)
	assert.Equal(t, "10.0.0.2", c.Address.String())
	c.Address6 = a6
	require.NoError(t, r.Put(c))
	again, err := r.Allocate6(pool6, "old")
	require.NoError(t, err)
	assert.Equal(t, a6, again)
}

// TestWithoutNetwork6NothingChanges: a host without network6 allocates no
// IPv6 address, writes no IPv6 state and its entries have no address6 line.
func TestWithoutNetwork6NothingChanges(t *testing.T) {
	dir := t.TempDir()
	r := Open(dir)
	_, a6 := register6(t, r, tinyPool, "a")
	assert.Equal(t, "invalid IP", a6)
	_, err := os.Stat(filepath.Join(dir, "addresses6.hcl"))
	require.ErrorIs(t, err, os.ErrNotExist)
	src, err := os.ReadFile(r.Path("a"))
	require.NoError(t, err)
	assert.NotContains(t, string(src), "address6")
	state, err := os.ReadFile(filepath.Join(dir, "addresses.hcl"))
	require.NoError(t, err)
	assert.Contains(t, string(state), `high_water = "10.0.0.2"`)
}

func TestAllocate6Exhausted(t *testing.T) {
	r := Open(t.TempDir())
	// Validation asks for a /64; the allocator works on any pool, and a
	// /126 (::1 host, ::2 and ::3 for containers) runs out quickly.
	small := pool6
	small.Network6 = netip.MustParsePrefix("fd00::/126")
	small.HostAddress6 = netip.MustParseAddr("fd00::1")
	register6(t, r, small, "a")
	register6(t, r, small, "b")
	_, err := r.Allocate6(small, "c")
	require.ErrorIs(t, err, ErrPoolExhausted)
	assert.Contains(t, err.Error(), "fd00::/126")
	assert.Contains(t, err.Error(), "addresses.network6")
	require.NoError(t, r.Delete("a"))
	a6, err := r.Allocate6(small, "c")
	require.NoError(t, err)
	assert.Equal(t, "fd00::2", a6.String(), "reused once the pool has been gone through")
}

// TestAddress6UsedTwice: two entries with one IPv6 address are reported at
// the second one's address6, like IPv4 addresses.
func TestAddress6UsedTwice(t *testing.T) {
	r := Open(t.TempDir())
	for i, n := range []string{"a", "b"} {
		c := testContainer(n, fmt.Sprintf("10.0.0.%d", 2+i))
		c.Address6 = netip.MustParseAddr("fd00::2")
		require.NoError(t, r.Put(c))
	}
	all, err := r.LoadAll()
	var de *diag.Error
	require.ErrorAs(t, err, &de)
	require.Len(t, de.Diags, 1)
	d := de.Diags[0]
	assert.Equal(t, "Address used twice", d.Summary)
	assert.Contains(t, d.Detail, "fd00::2")
	require.NotNil(t, d.Subject)
	assert.Equal(t, r.Path("b"), d.Subject.Filename)
	src, _ := os.ReadFile(r.Path("b"))
	assert.Equal(t, `"fd00::2"`, string(src[d.Subject.Start.Byte:d.Subject.End.Byte]))
	assert.Len(t, all, 1)
}

// TestConcurrentAllocationsAreUnique: ensures in separate handles (as in
// separate processes), each under the lock, never share an address of
// either family.
func TestConcurrentAllocationsAreUnique(t *testing.T) {
	dir := t.TempDir()
	pool := pool6
	pool.Network = netip.MustParsePrefix("10.0.0.0/24")
	const workers, each = 4, 6
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			r := Open(dir)
			for i := range each {
				err := func() error {
					unlock, err := r.Lock(t.Context())
					if err != nil {
						return err
					}
					defer unlock()
					name := fmt.Sprintf("c%d-%d", w, i)
					a, err := r.Allocate(pool, name)
					if err != nil {
						return err
					}
					a6, err := r.Allocate6(pool, name)
					if err != nil {
						return err
					}
					c := testContainer(name, a.String())
					c.Address6 = a6
					return r.Put(c)
				}()
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		require.NoError(t, <-errs)
	}
	all, err := Open(dir).LoadAll()
	require.NoError(t, err, "LoadAll reports any address used twice")
	require.Len(t, all, workers*each)
	for _, c := range all {
		assert.True(t, pool.IPv6().Assignable(c.Address6), c.Address6)
	}
}

// TestAllocateBoth: a new container's two addresses from one read of the
// registry, the same ones Allocate and Allocate6 would give.
func TestAllocateBoth(t *testing.T) {
	r := Open(t.TempDir())
	register6(t, r, pool6, "a")
	a, a6, err := r.AllocateBoth(pool6, "b")
	require.NoError(t, err)
	assert.Equal(t, "10.0.0.3", a.String())
	assert.Equal(t, "fd00:1:2:3::3", a6.String())
	c := testContainer("b", a.String())
	c.Address6 = a6
	require.NoError(t, r.Put(c))

	_, _, err = r.AllocateBoth(pool6, "b")
	require.ErrorContains(t, err, "registered already")

	a, a6, err = r.AllocateBoth(tinyPool, "c")
	require.NoError(t, err)
	assert.Equal(t, "10.0.0.4", a.String())
	assert.False(t, a6.IsValid(), "no network6, no IPv6 address")
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

// The address cache holds both families: an IPv6 address changed by a
// write is known without reading the entry, and one a broken cache forgot
// is read again, so no IPv6 address is handed out twice.
func TestAllocate6SeesEntriesChangedSinceItsCache(t *testing.T) {
	r := Open(t.TempDir())
	register6(t, r, pool6, "a") // ::2, cached
	c, err := r.Get("a")
	require.NoError(t, err)
	c.Address6 = netip.MustParseAddr("fd00:1:2:3::3") // a hand edit
	require.NoError(t, r.Put(c))
	_, b6 := register6(t, r, pool6, "b")
	assert.Equal(t, "fd00:1:2:3::4", b6)

	// A broken cache and a lost high-water mark: allocation starts at
	// ::2 again and must see a and b.
	require.NoError(t, os.WriteFile(r.addrCachePath(), []byte("broken\n"), 0o640))
	require.NoError(t, os.Remove(r.allocPath(allocFile6)))
	a6, err := r.Allocate6(pool6, "c")
	require.NoError(t, err)
	assert.Equal(t, "fd00:1:2:3::2", a6.String(), "a moved off ::2")
}

// TestAddressCacheFollowsWrites: once swept, the cache is kept current by
// Put, WriteEntry and Delete themselves (an allocation then reads no entry
// and lists no directory), and anything else that changes the directory,
// or a cache that was stale before a write, makes the next allocation
// sweep. Every case must still hand out only free addresses.
func TestAddressCacheFollowsWrites(t *testing.T) {
	current := func(t *testing.T, r *Registry) bool {
		t.Helper()
		c := r.readAddrCache()
		d, ok := r.dirID()
		return ok && c.current && c.dir == d
	}
	outsideWrite := func(t *testing.T, r *Registry, name, addr string) {
		t.Helper()
		// As an editor saves: a new file renamed over the entry.
		scratch := Open(t.TempDir())
		require.NoError(t, scratch.Put(testContainer(name, addr)))
		b, err := os.ReadFile(scratch.Path(name))
		require.NoError(t, err)
		tmp := filepath.Join(r.Dir(), ".edit.tmp")
		require.NoError(t, os.WriteFile(tmp, b, EntryPerm))
		require.NoError(t, os.Rename(tmp, r.Path(name)))
	}
	setup := func(t *testing.T) *Registry {
		r := Open(t.TempDir())
		register(t, r, tinyPool, "a") // .2
		register(t, r, tinyPool, "b") // .3
		require.True(t, current(t, r), "Put after a sweep keeps the cache current")
		return r
	}

	t.Run("put, write entry and delete keep it current", func(t *testing.T) {
		r := setup(t)
		require.NoError(t, r.Put(testContainer("a", "10.0.0.9")))
		require.True(t, current(t, r))
		src, err := os.ReadFile(r.Path("b"))
		require.NoError(t, err)
		require.NoError(t, r.WriteEntry("b", bytes.Replace(src, []byte(`"10.0.0.3"`), []byte(`"10.0.0.4"`), 1)))
		require.True(t, current(t, r))
		require.NoError(t, r.Delete("a"))
		require.True(t, current(t, r))
		// .4 is b's now, known from the cache alone.
		assert.Equal(t, "10.0.0.5", register(t, r, tinyPool, "c"))
		c := r.readAddrCache()
		assert.Equal(t, []string{"b", "c"}, slices.Sorted(maps.Keys(c.entries)))
		assert.Equal(t, "10.0.0.4", c.entries["b"].address.String())
	})
	t.Run("an undecodable write is read again", func(t *testing.T) {
		r := setup(t)
		require.NoError(t, r.WriteEntry("x", []byte("address = \"10.0.0.4\"\n")))
		require.True(t, current(t, r))
		_, err := r.Allocate(tinyPool, "c")
		var de *diag.Error
		require.ErrorAs(t, err, &de, "an invalid entry might hold an address")
		require.NoError(t, r.Delete("x"))
		assert.Equal(t, "10.0.0.4", register(t, r, tinyPool, "c"))
	})
	t.Run("an outside rename makes it sweep", func(t *testing.T) {
		r := setup(t)
		outsideWrite(t, r, "a", "10.0.0.4")
		require.False(t, current(t, r))
		assert.Equal(t, "10.0.0.5", register(t, r, tinyPool, "c"), ".4 is a's now")
	})
	t.Run("a write after an outside change leaves it stale", func(t *testing.T) {
		r := setup(t)
		outsideWrite(t, r, "z", "10.0.0.4") // a new entry behind its back
		require.NoError(t, r.Put(testContainer("a", "10.0.0.2")))
		require.NoError(t, r.Put(testContainer("b", "10.0.0.9")))
		require.False(t, current(t, r))
		assert.Equal(t, "10.0.0.5", register(t, r, tinyPool, "c"), ".4 is z's")
	})
	t.Run("an append cut short is not trusted", func(t *testing.T) {
		r := setup(t)
		b, err := os.ReadFile(r.addrCachePath())
		require.NoError(t, err)
		// The S line of the last append lost its newline: the entry
		// line before it names the directory as it is no more.
		require.NoError(t, os.WriteFile(r.addrCachePath(), b[:len(b)-1], 0o640))
		require.False(t, current(t, r))
		require.NoError(t, r.Put(testContainer("a", "10.0.0.4")))
		require.False(t, current(t, r), "an append to a stale cache does not make it current")
		assert.Equal(t, "10.0.0.5", register(t, r, tinyPool, "c"))
		require.True(t, current(t, r), "the sweep wrote it anew")
	})
	t.Run("the log is compacted", func(t *testing.T) {
		r := setup(t)
		for i := range 100 {
			require.NoError(t, r.Put(testContainer("a", fmt.Sprintf("10.0.0.%d", 10+i%2))))
		}
		require.Greater(t, r.readAddrCache().lines, 100)
		assert.Equal(t, "10.0.0.4", register(t, r, tinyPool, "c"))
		c := r.readAddrCache()
		assert.Equal(t, 2+1+2, c.lines, "a, b and the directory, then c's append")
		assert.True(t, current(t, r))
	})
}
