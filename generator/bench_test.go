package generator

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/hostconfig"
	"github.com/flyingcircusio/devhost/internal/registry"
	"github.com/flyingcircusio/devhost/templates"
)

// BenchmarkGenerate renders registries of growing size in memory (target:
// 1,000 containers under 60 ms of CPU and 50 MB allocated, linear growth).
// The text-template runs render with text/template alone
// (templates.Set.Reference), as before the compiled executor.
func BenchmarkGenerate(b *testing.B) {
	tmpl := loadTemplates(b)
	cfg := testConfig("/x")
	for _, n := range []int{0, 10, 100, 1000, 10000} {
		cs := containers(b, n)
		b.Run(fmt.Sprint(n), func(b *testing.B) { benchGenerate(b, cfg, cs, tmpl) })
		if n == 1000 {
			b.Run("1000-text-template", func(b *testing.B) { benchGenerate(b, cfg, cs, tmpl.Reference()) })
		}
	}
}

func benchGenerate(b *testing.B, cfg *hostconfig.Config, cs []*registry.Container, tmpl *templates.Set) {
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		if _, err := Generate(cfg, cs, tmpl); err != nil {
			b.Fatal(err)
		}
	}
	// On a shared machine wall time includes waiting for a CPU; CPU time
	// (all threads) shows the work itself.
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkWrite writes a 1,000-container set atomically (fsync included).
func BenchmarkWrite1000(b *testing.B) {
	cfg := testConfig(b.TempDir())
	set, err := Generate(cfg, containers(b, 1000), loadTemplates(b))
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if err := Write(cfg.GeneratedDir, set); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNixEval1000 evaluates default.nix of a 1,000-container set with
// nix-instantiate --eval --strict --json, as the host's rebuild does
// (target: under 0.5 s). The container systems are not read.
func BenchmarkNixEval1000(b *testing.B) {
	nix := nixInstantiate(b)
	cfg := testConfig(b.TempDir())
	set, err := Generate(cfg, containers(b, 1000), loadTemplates(b))
	require.NoError(b, err)
	require.NoError(b, Write(cfg.GeneratedDir, set))
	for b.Loop() {
		if _, err := Eval(context.Background(), nix, cfg.GeneratedDir); err != nil {
			b.Fatal(err)
		}
	}
}

// cpuTime is the process' user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
