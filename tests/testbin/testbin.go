// Package testbin builds the programs the end-to-end tests run: devhost
// itself, built with the devhosttest tag (which lets the tests play several
// users without being them), and the recording test doubles of tests/doubles.
package testbin

import (
	"fmt"
	"os/exec"
	"path/filepath"
)

// Target is one program to build.
type Target struct {
	Out  string // output file
	Pkg  string // import path
	Tags string // build tags, "" for none
}

const module = "github.com/flyingcircusio/devhost"

// Devhost is the devhost binary in dir, with the devhosttest tag.
func Devhost(dir string) Target {
	return Target{Out: filepath.Join(dir, "devhost"), Pkg: module + "/cmd/devhost", Tags: "devhosttest"}
}

// Release is the devhost binary in dir as shipped (no devhosttest tag):
// for tests that run it through real sudo, where it learns the caller from
// SUDO_USER and the system's groups alone.
func Release(dir string) Target {
	return Target{Out: filepath.Join(dir, "devhost"), Pkg: module + "/cmd/devhost"}
}

// Doubles are the recording doubles of nix-build, nix-env, nix-instantiate,
// nixos-rebuild, systemctl and a system's switch-to-configuration, each
// under its real name in dir.
func Doubles(dir string) []Target {
	var ts []Target
	for _, d := range []string{"nix-build", "nix-env", "nix-instantiate", "nixos-rebuild", "systemctl", "switch-to-configuration"} {
		ts = append(ts, Target{Out: filepath.Join(dir, d), Pkg: module + "/tests/doubles/" + d})
	}
	return ts
}

// Build runs `go build` for every target; the error carries the compiler's
// output.
func Build(targets []Target) error {
	for _, t := range targets {
		args := []string{"build"}
		if t.Tags != "" {
			args = append(args, "-tags", t.Tags)
		}
		args = append(args, "-o", t.Out, t.Pkg)
		if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("go %v: %w\n%s", args, err, out)
		}
	}
	return nil
}
