package environment

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/flyingcircusio/devhost/internal/rawconfig"
)

// FuzzBuild: for any file the reader accepts (and any hostmap.json text),
// Build does not panic and every diagnostic points into its file with
// ordered byte offsets, so the snippet writer can show it.
func FuzzBuild(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/batou-environments/*/environment.cfg")
	more, _ := filepath.Glob("../../examples/*/environments/*/environment.cfg")
	for _, p := range append(seeds, more...) {
		src, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src, []byte(`{"web": "c0ffee12345"}`))
	}
	f.Add([]byte(provDefault+"[host:web]\ncomponents = a,\nprovision-aliases = a b\n\ta\n"), []byte(`{"web": "x"`))
	f.Fuzz(func(t *testing.T, cfg, hostmap []byte) {
		file, err := rawconfig.Parse("environment.cfg", cfg)
		if err != nil {
			return
		}
		hm := &HostMap{Name: "hostmap.json"}
		if hm.parse(hostmap) != nil {
			hm = nil
		}
		env, diags := Build("dev", file, hm)
		if env == nil {
			t.Fatal("Build returned no environment")
		}
		check := func(r *hcl.Range) {
			if r == nil {
				return
			}
			size := len(cfg)
			if r.Filename == "hostmap.json" {
				size = len(hostmap)
			}
			if r.Start.Byte < 0 || r.Start.Byte > r.End.Byte || r.End.Byte > size || r.Start.Line < 1 || r.Start.Column < 1 {
				t.Fatalf("bad range %#v for a file of %d bytes", r, size)
			}
		}
		for _, d := range diags {
			check(d.Subject)
		}
		for _, h := range env.Hosts {
			for _, a := range h.Aliases {
				check(&a.Range)
				if string(cfg[a.Range.Start.Byte:a.Range.End.Byte]) != a.Name && a.Range.Start.Line == a.Range.End.Line {
					// An alias range that is a whole line (a reader without
					// exact line ranges) is allowed; one that cuts a word is not.
					if a.Range.End.Byte-a.Range.Start.Byte == len(a.Name) {
						t.Fatalf("alias %q has range text %q", a.Name, cfg[a.Range.Start.Byte:a.Range.End.Byte])
					}
				}
			}
		}
	})
}
