package hclinput

import (
	"strings"
	"testing"
)

// entry is a typical registry entry.
const entry = `# devhost registry entry.
name = "myapp"
owner = "alice"
environment = "dev"
channel = "https://hydra.flyingcircus.io/build/1/download/1/nixexprs.tar.xz"
aliases = ["www", "api"]
address = "10.233.0.12"
state = "running"
created = "2026-11-20T10:00:00Z"
labels = { team = "web" }
`

func BenchmarkCheckNativeEntry(b *testing.B) {
	b.SetBytes(int64(len(entry)))
	for b.Loop() {
		CheckNative("e.hcl", []byte(entry), 1<<20)
	}
}

// A file of the largest size accepted, deeply nested: refused after
// lexing it once.
func BenchmarkCheckNativeDeep1MiB(b *testing.B) {
	src := []byte("x = " + strings.Repeat("[", 1<<20-4))
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		CheckNative("d.hcl", src, 1<<20)
	}
}

func BenchmarkCheckJSONDeep1MiB(b *testing.B) {
	src := []byte(strings.Repeat("[", 1<<20))
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		CheckJSON("d.json", src, 1<<20)
	}
}
