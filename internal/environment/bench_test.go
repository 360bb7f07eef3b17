package environment

import (
	"fmt"
	"strings"
	"testing"

	"github.com/flyingcircusio/devhost/internal/rawconfig"
)

// continuedEnvironment is an environment whose component list, resolver
// addresses and aliases are each continued over n lines.
func continuedEnvironment(n int) []byte {
	var b strings.Builder
	b.WriteString(provDefault)
	b.WriteString("[host:web]\nprovision-aliases =\n")
	for i := range n {
		fmt.Fprintf(&b, "    a%d\n", i)
	}
	b.WriteString("components =\n")
	for i := range n {
		fmt.Fprintf(&b, "    comp%d\n", i)
	}
	b.WriteString("[resolver]\nweb =\n")
	for i := range n {
		fmt.Fprintf(&b, "    10.0.%d.%d\n", i/250, i%250)
	}
	return []byte(b.String())
}

// BenchmarkBuildContinued builds the model of an environment with lists
// continued over 1,000, 10,000 and 40,000 lines: ns/line stays flat when
// every list item's source range is found without rescanning the value
// (it was quadratic: 29 s for `devhost check` at 40,000 lines).
func BenchmarkBuildContinued(b *testing.B) {
	for _, n := range []int{1000, 10000, 40000} {
		src := continuedEnvironment(n)
		f, err := rawconfig.Parse("environment.cfg", src)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Build("dev", f, nil)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(3*n), "ns/line")
		})
	}
}
