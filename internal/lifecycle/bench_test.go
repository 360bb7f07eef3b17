package lifecycle

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/registry"
)

// benchHost is a host with n containers registered and applied, its
// commands answered at once by the fake runner: what the benchmarks
// measure is devhost's own time.
func benchHost(b *testing.B, n int) (*Host, *fakeRunner) {
	b.Helper()
	h, fr := testHost(b)
	h.Cfg.Addresses.Network = netip.MustParsePrefix("10.100.0.0/16")
	h.Cfg.Addresses.HostAddress = netip.MustParseAddr("10.100.0.1")
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		c := &registry.Container{Name: fmt.Sprintf("c%05d", i), Owner: "alice", Channel: "https://example.org/c.tar.xz", StateVersion: "24.11",
			Address: netip.AddrFrom4([4]byte{10, 100, byte(1 + i/250), byte(2 + i%250)}), Created: now, Deployed: now, State: registry.Running}
		require.NoError(b, h.Reg.Put(c))
		// A container devhost ensured has its op lock file, never deleted.
		l, err := openLockFile(h.paths().opLock(c.Name))
		require.NoError(b, err)
		require.NoError(b, l.Close())
	}
	_, err := h.Sync(context.Background(), Caller{User: "root", Root: true})
	require.NoError(b, err)
	return h, fr
}

// BenchmarkEnsureNoop is an ensure that changes nothing (the common
// pre-deploy hook run), with 0, 1,000 and 10,000 containers registered.
func BenchmarkEnsureNoop(b *testing.B) {
	for _, n := range []int{0, 1000, 10000} {
		b.Run(fmt.Sprintf("registered=%d", n), func(b *testing.B) {
			h, _ := benchHost(b, n)
			ctx := context.Background()
			req := EnsureRequest{Name: "shop", Channel: "https://example.org/c.tar.xz", Caller: alice}
			_, err := h.Ensure(ctx, req)
			require.NoError(b, err)
			b.ResetTimer()
			for b.Loop() {
				if _, err := h.Ensure(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEnsureNew is the ensure of a new container, rebuild included
// (the fake rebuild answers at once), with 0, 1,000 and 10,000 registered.
// It also reports ms-before-rebuild: devhost's own time from the request
// to the start of nixos-rebuild (issue 11: under 0.3 s at 10,000).
func BenchmarkEnsureNew(b *testing.B) {
	for _, n := range []int{0, 1000, 10000} {
		b.Run(fmt.Sprintf("registered=%d", n), func(b *testing.B) {
			h, fr := benchHost(b, n)
			var start, rebuildAt time.Time
			fr.before = func(argv []string) {
				if argv[0] == "nixos-rebuild" && rebuildAt.IsZero() {
					rebuildAt = time.Now()
				}
			}
			ctx := context.Background()
			// One ensure first: the registry's address cache is swept
			// once (benchHost wrote the entries before it existed).
			_, err := h.Ensure(ctx, EnsureRequest{Name: "warm", Channel: "https://example.org/c.tar.xz", Caller: alice})
			require.NoError(b, err)
			var before time.Duration
			i := 0
			for b.Loop() {
				i++
				start, rebuildAt = time.Now(), time.Time{}
				if _, err := h.Ensure(ctx, EnsureRequest{Name: fmt.Sprintf("new%d", i), Channel: "https://example.org/c.tar.xz", Caller: alice}); err != nil {
					b.Fatal(err)
				}
				if rebuildAt.IsZero() {
					b.Fatal("no nixos-rebuild ran")
				}
				before += rebuildAt.Sub(start)
			}
			b.ReportMetric(float64(before.Milliseconds())/float64(i), "ms-before-rebuild/op")
		})
	}
}
