// Command nixos-rebuild is a test double for the host rebuild devhost runs
// (`nixos-rebuild switch`, or whatever the host configuration says). It
// records what it was asked and what it would have applied: the files of
// the generated set ($DEVHOST_DOUBLE_GENERATED) and a digest of their
// contents, read while it "runs". With DEVHOST_DOUBLE_NIX_INSTANTIATE set it
// parses every .nix file of the set with the real nix-instantiate and fails
// like Nix on a syntax error.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"

	"github.com/flyingcircusio/devhost/tests/doubles/double"
)

func main() {
	r := double.Start("nixos-rebuild")
	dir := os.Getenv("DEVHOST_DOUBLE_GENERATED")
	if dir != "" {
		// Resolve a symlinked set once, so every file comes from one
		// version even if it is swapped meanwhile.
		if real, err := filepath.EvalSymlinks(dir); err == nil {
			dir = real
		}
		var files, nixFiles []string
		h := sha256.New()
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			files = append(files, rel)
			return nil
		})
		if err != nil && !os.IsNotExist(err) {
			r.Exit(1, "error: reading %s: %v", dir, err)
		}
		sort.Strings(files)
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				r.Exit(1, "error: reading %s: %v", f, err)
			}
			h.Write([]byte(f + "\x00"))
			h.Write(b)
			if filepath.Ext(f) == ".nix" {
				nixFiles = append(nixFiles, filepath.Join(dir, f))
			}
		}
		r.Set("files", files)
		r.Set("digest", hex.EncodeToString(h.Sum(nil)))
		if ni := os.Getenv("DEVHOST_DOUBLE_NIX_INSTANTIATE"); ni != "" && len(nixFiles) > 0 {
			if o, err := exec.Command(ni, append([]string{"--parse"}, nixFiles...)...).CombinedOutput(); err != nil {
				r.Exit(1, "%s", o)
			}
			r.Set("parsed", len(nixFiles))
		}
	}
	r.FailIfAsked()
	r.Exit(0, "")
}
