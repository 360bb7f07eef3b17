// Command nixos-rebuild is a test double for the host rebuild devhost runs
// (`nixos-rebuild switch`, or whatever the host configuration says). It
// records what it was asked and what it would have applied: the files of
// the generated set ($DEVHOST_DOUBLE_GENERATED) and a digest of their
// contents, read while it "runs". With DEVHOST_DOUBLE_NIX_INSTANTIATE set it
// parses every .nix file of the set with the real nix-instantiate and fails
// like Nix on a syntax error.
//
// With DEVHOST_DOUBLE_SYSTEM_PROFILE set it switches that profile, as
// nixos-rebuild switch does after building: a "system" directory per set
// (<state>/systems/<digest>, whose bin/switch-to-configuration is the
// switch-to-configuration double) becomes the profile's next generation.
// Control.Fail fails before that (an evaluation error); FailAfterSwitch
// fails after it (an activation error).
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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
	if profile := os.Getenv("DEVHOST_DOUBLE_SYSTEM_PROFILE"); profile != "" {
		digest, _ := r.Rec.Extra["digest"].(string)
		if err := switchSystem(profile, digest); err != nil {
			r.Exit(2, "double nixos-rebuild: %v", err)
		}
		if r.Control.FailAfterSwitch {
			r.Exit(1, "error: activation of the new system failed (test double told to fail after switching)")
		}
	}
	r.Exit(0, "")
}

// switchSystem makes the system of the set with digest the next
// generation of profile (a symlink to <profile>-<n>-link, as nix-env
// keeps profiles).
func switchSystem(profile, digest string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if len(digest) > 12 {
		digest = digest[:12]
	}
	sys := filepath.Join(double.StateDir(), "systems", "system-"+digest)
	if err := os.MkdirAll(filepath.Join(sys, "bin"), 0o755); err != nil {
		return err
	}
	stc := filepath.Join(sys, "bin", "switch-to-configuration")
	if _, err := os.Lstat(stc); err != nil {
		if err := os.Symlink(filepath.Join(filepath.Dir(self), "switch-to-configuration"), stc); err != nil {
			return err
		}
	}
	n := 1
	for {
		if _, err := os.Lstat(fmt.Sprintf("%s-%d-link", profile, n)); err != nil {
			break
		}
		n++
	}
	link := fmt.Sprintf("%s-%d-link", profile, n)
	if err := os.Symlink(sys, link); err != nil {
		return err
	}
	tmp := profile + ".tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Base(link), tmp); err != nil {
		return err
	}
	return os.Rename(tmp, profile)
}
