// Command nix-instantiate is a test double for the nix-instantiate that
// devhost's ensure runs to learn a new container's NixOS release:
//
//	nix-instantiate --eval --json --expr '(import <nixpkgs/lib>).trivial.release'
//	  -I nixpkgs=CHANNEL -I CHANNEL [--option allowed-uris URI]
//	  --option restrict-eval true --option nix-path ""   (NIX_PATH empty)
//
// It refuses that evaluation in any other shape. A local channel (a path) is
// evaluated by the real nix-instantiate (DEVHOST_DOUBLE_NIX_INSTANTIATE) with
// exactly this argv. An https channel cannot be downloaded in the tests: the
// double answers the release the URL names as "nixos-YY.MM", else "24.11",
// and records that it answered itself. Every other invocation (devhost's
// `--parse -` of provision.nix) runs the real nix-instantiate unchanged.
package main

import (
	"errors"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/flyingcircusio/devhost/tests/doubles/double"
)

const releaseExpr = "(import <nixpkgs/lib>).trivial.release"

var urlRelease = regexp.MustCompile(`nixos-([0-9]{2}\.[0-9]{2})`)

func main() {
	r := double.Start("nix-instantiate")
	args := r.Rec.Argv
	if !slices.Contains(args, releaseExpr) {
		r.Exit(runReal(r, args), "")
	}
	want := func(ok bool) {
		if !ok {
			r.Exit(2, "double nix-instantiate: unexpected invocation %q (NIX_PATH=%q)", args, os.Getenv("NIX_PATH"))
		}
	}
	want(len(args) >= 14 && os.Getenv("NIX_PATH") == "")
	want(slices.Equal(args[:4], []string{"--eval", "--json", "--expr", releaseExpr}) && args[4] == "-I" && args[6] == "-I")
	ch, ok := strings.CutPrefix(args[5], "nixpkgs=")
	want(ok && ch != "" && args[7] == ch)
	rest := args[8:]
	https := strings.HasPrefix(ch, "https://")
	if https {
		want(slices.Equal(rest[:3], []string{"--option", "allowed-uris", ch}))
		rest = rest[3:]
	} else {
		want(strings.HasPrefix(ch, "/"))
	}
	want(slices.Equal(rest, []string{"--option", "restrict-eval", "true", "--option", "nix-path", ""}))
	r.FailIfAsked()
	if !https {
		r.Exit(runReal(r, args), "")
	}
	rel := "24.11"
	if m := urlRelease.FindStringSubmatch(ch); m != nil {
		rel = m[1]
	}
	r.Set("answered", rel)
	_, _ = os.Stdout.WriteString(strconv.Quote(rel) + "\n")
	r.Exit(0, "")
}

// runReal runs the real nix-instantiate with args and the double's standard
// streams and environment, and returns its exit code.
func runReal(r *double.Run, args []string) int {
	ni := os.Getenv("DEVHOST_DOUBLE_NIX_INSTANTIATE")
	if ni == "" {
		r.Exit(127, "double nix-instantiate: DEVHOST_DOUBLE_NIX_INSTANTIATE does not name the real nix-instantiate")
	}
	r.Set("real", true)
	cmd := exec.Command(ni, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	default:
		r.Exit(2, "double nix-instantiate: %v", err)
		return 2
	}
}
