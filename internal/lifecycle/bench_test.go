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
func benchHost(b *testing.B, n int) *Host {
	b.Helper()
	h, _ := testHost(b)
	h.Cfg.Addresses.Network = netip.MustParsePrefix("10.100.0.0/16")
	h.Cfg.Addresses.HostAddress = netip.MustParseAddr("10.100.0.1")
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		c := &registry.Container{Name: fmt.Sprintf("c%05d", i), Owner: "alice", Channel: "https://example.org/c.tar.xz", StateVersion: "24.11",
			Address: netip.AddrFrom4([4]byte{10, 100, byte(1 + i/250), byte(2 + i%250)}), Created: now, Deployed: now, State: registry.Running}
		require.NoError(b, h.Reg.Put(c))
	}
	_, err := h.Sync(context.Background(), Caller{User: "root", Root: true})
	require.NoError(b, err)
	return h
}

// BenchmarkEnsureNoop is an ensure that changes nothing (the common
// pre-deploy hook run), with 0, 1,000 and 10,000 containers registered.
func BenchmarkEnsureNoop(b *testing.B) {
	for _, n := range []int{0, 1000, 10000} {
		b.Run(fmt.Sprintf("registered=%d", n), func(b *testing.B) {
			h := benchHost(b, n)
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
func BenchmarkEnsureNew(b *testing.B) {
	for _, n := range []int{0, 1000, 10000} {
		b.Run(fmt.Sprintf("registered=%d", n), func(b *testing.B) {
			h := benchHost(b, n)
			ctx := context.Background()
			i := 0
			for b.Loop() {
				i++
				if _, err := h.Ensure(ctx, EnsureRequest{Name: fmt.Sprintf("new%d", i), Channel: "https://example.org/c.tar.xz", Caller: alice}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
