package registry

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

// fillRegistry writes n valid entries with distinct addresses.
func fillRegistry(b *testing.B, n int) *Registry {
	b.Helper()
	r := Open(b.TempDir())
	base := netip.MustParseAddr("10.233.0.2")
	a := base
	for i := range n {
		c := testContainer(fmt.Sprintf("c%d", i), a.String())
		c.Labels["index"] = fmt.Sprint(i)
		require.NoError(b, r.Put(c))
		a = a.Next()
	}
	return r
}

// BenchmarkLoadAll: `cleanup --dry-run` over 10,000 entries must take well
// under a second, and it is mostly LoadAll.
func BenchmarkLoadAll(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			r := fillRegistry(b, n)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				all, err := r.LoadAll()
				if err != nil || len(all) != n {
					b.Fatal(err, len(all))
				}
			}
		})
	}
}

func BenchmarkPut(b *testing.B) {
	r := fillRegistry(b, 1)
	c, err := r.Get("c0")
	require.NoError(b, err)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		c.Labels["index"] = fmt.Sprint(i)
		if err := r.Put(c); err != nil {
			b.Fatal(err)
		}
	}
}
