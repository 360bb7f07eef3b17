// Command nix-env is a test double for the profile operations devhost's
// lifecycle uses, with nix-env's on-disk layout: PROFILE is a symlink to
// PROFILE-<n>-link, which links to the store path.
//
//	nix-env -p PROFILE --set STOREPATH
//	nix-env -p PROFILE --switch-generation N
//	nix-env -p PROFILE --list-generations
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/flyingcircusio/devhost/tests/doubles/double"
)

func main() {
	r := double.Start("nix-env")
	args := r.Rec.Argv
	if len(args) < 3 || args[0] != "-p" {
		r.Exit(2, "double nix-env: unexpected invocation %q", args)
	}
	profile := args[1]
	r.FailIfAsked()
	gens := generations(profile)
	switch {
	case len(args) == 4 && args[2] == "--set":
		if _, err := os.Stat(args[3]); err != nil {
			r.Exit(1, "error: path '%s' is not in the Nix store", args[3])
		}
		n := 1
		if len(gens) > 0 {
			n = gens[len(gens)-1] + 1
		}
		link := fmt.Sprintf("%s-%d-link", profile, n)
		if err := os.MkdirAll(filepath.Dir(profile), 0o755); err != nil {
			r.Exit(2, "double nix-env: %v", err)
		}
		if err := os.Symlink(args[3], link); err != nil {
			r.Exit(2, "double nix-env: %v", err)
		}
		repoint(r, profile, filepath.Base(link))
		r.Set("generation", n)
	case len(args) == 4 && args[2] == "--switch-generation":
		n, err := strconv.Atoi(args[3])
		if err != nil {
			r.Exit(1, "error: invalid generation number %q", args[3])
		}
		link := fmt.Sprintf("%s-%d-link", profile, n)
		if _, err := os.Lstat(link); err != nil {
			r.Exit(1, "error: generation %d does not exist", n)
		}
		repoint(r, profile, filepath.Base(link))
	case len(args) == 3 && args[2] == "--list-generations":
		cur, _ := os.Readlink(profile)
		for _, g := range gens {
			mark := ""
			if cur == fmt.Sprintf("%s-%d-link", filepath.Base(profile), g) {
				mark = "   (current)"
			}
			fmt.Printf("%4d   1970-01-01 00:00:00%s\n", g, mark)
		}
	default:
		r.Exit(2, "double nix-env: unexpected invocation %q", args)
	}
	r.Exit(0, "")
}

func generations(profile string) []int {
	ents, _ := os.ReadDir(filepath.Dir(profile))
	prefix := filepath.Base(profile) + "-"
	var out []int
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, prefix) || !strings.HasSuffix(n, "-link") {
			continue
		}
		if g, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(n, prefix), "-link")); err == nil {
			out = append(out, g)
		}
	}
	sort.Ints(out)
	return out
}

func repoint(r *double.Run, profile, target string) {
	tmp := profile + ".double-tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		r.Exit(2, "double nix-env: %v", err)
	}
	if err := os.Rename(tmp, profile); err != nil {
		r.Exit(2, "double nix-env: %v", err)
	}
}
