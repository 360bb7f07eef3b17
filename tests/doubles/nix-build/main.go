// Command nix-build is a test double for nix-build as devhost's lifecycle
// calls it to build a container's system:
//
//	nix-build '<nixpkgs/nixos>' -A system -I nixpkgs=CHANNEL [-I CHANNEL]
//	  -I nixos-config=CONFIG [-I NAME=PATH]... --option restrict-eval true
//	  --option nix-path "" (and NIX_PATH empty in its environment)
//	  [--option allowed-uris URI] -o OUT
//
// It refuses any other shape, fails like Nix when one of the files it is
// given contains DOUBLE_BUILD_FAIL, parses the configuration and the other
// files with the real nix-instantiate when DEVHOST_DOUBLE_NIX_INSTANTIATE
// names it, and "builds" a store path under $DEVHOST_DOUBLE_STATE/store whose
// name derives from its inputs and which holds a copy of CONFIG. OUT becomes a symlink to it and the path is
// printed, as nix-build does.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/flyingcircusio/devhost/tests/doubles/double"
)

func main() {
	r := double.Start("nix-build")
	args := r.Rec.Argv
	var (
		search   = map[string]string{}
		out      string
		attr     string
		expr     string
		restrict bool
		// noNixPath: nix.conf's search path was emptied (--option
		// nix-path ""); with NIX_PATH empty too, only -I entries count.
		noNixPath bool
	)
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func() string {
			if i+1 >= len(args) {
				r.Exit(2, "double nix-build: %s needs an argument", a)
			}
			i++
			return args[i]
		}
		switch a {
		case "-I":
			// NAME=PATH, or a plain PATH (searched for <nixpkgs/…> as
			// PATH/nixpkgs/…).
			k, v, ok := strings.Cut(next(), "=")
			if !ok {
				k, v = "", k
			}
			search[k] = v
		case "-A":
			attr = next()
		case "-o":
			out = next()
		case "--option":
			name := next()
			val := next()
			if name == "restrict-eval" && val == "true" {
				restrict = true
			}
			if name == "nix-path" && val == "" {
				noNixPath = true
			}
		default:
			if strings.HasPrefix(a, "-") {
				r.Exit(2, "double nix-build: unexpected flag %q", a)
			}
			expr = a
		}
	}
	if expr != "<nixpkgs/nixos>" || attr != "system" || !restrict || out == "" ||
		search["nixpkgs"] == "" || search["nixos-config"] == "" {
		r.Exit(2, "double nix-build: unexpected invocation %q", args)
	}
	if !noNixPath || os.Getenv("NIX_PATH") != "" {
		r.Exit(2, "double nix-build: search path not pinned: NIX_PATH=%q, --option nix-path \"\" given: %v", os.Getenv("NIX_PATH"), noNixPath)
	}
	r.FailIfAsked()

	cfg := search["nixos-config"]
	name := filepath.Base(filepath.Dir(cfg))
	h := sha256.New()
	keys := make([]string, 0, len(search))
	for k := range search {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var files []string
	for _, k := range keys {
		v := search[k]
		h.Write([]byte(k + "=" + v + "\n"))
		b, err := os.ReadFile(v)
		if err != nil {
			if k == "nixos-config" {
				r.Exit(1, "error: getting status of '%s': No such file or directory", v)
			}
			continue // a channel URL or a directory
		}
		h.Write(b)
		files = append(files, v)
		if strings.Contains(string(b), "DOUBLE_BUILD_FAIL") {
			r.Exit(1, "error: undefined variable 'DOUBLE_BUILD_FAIL'\n\n       at %s:1:1:\n(test double)", v)
		}
	}
	if ni := os.Getenv("DEVHOST_DOUBLE_NIX_INSTANTIATE"); ni != "" {
		for _, f := range files {
			if !strings.HasSuffix(f, ".nix") {
				continue
			}
			if o, err := exec.Command(ni, "--parse", f).CombinedOutput(); err != nil {
				r.Exit(1, "%s", o)
			}
		}
		r.Set("parsed", files)
	}
	sum := hex.EncodeToString(h.Sum(nil))[:32]
	store := filepath.Join(double.StateDir(), "store", sum+"-nixos-system-"+name)
	// Nix's log goes to stderr as it builds.
	_, _ = os.Stderr.WriteString("building '" + store + ".drv'...\n")
	if err := os.MkdirAll(store, 0o755); err != nil {
		r.Exit(2, "double nix-build: %v", err)
	}
	// The system keeps its configuration, so tests can see what was built.
	if b, err := os.ReadFile(cfg); err == nil {
		if err := os.WriteFile(filepath.Join(store, "configuration.nix"), b, 0o644); err != nil {
			r.Exit(2, "double nix-build: %v", err)
		}
	}
	meta, _ := json.Marshal(map[string]any{"name": name, "search": search})
	if err := os.WriteFile(filepath.Join(store, "inputs.json"), meta, 0o644); err != nil {
		r.Exit(2, "double nix-build: %v", err)
	}
	tmp := out + ".double-tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(store, tmp); err != nil {
		r.Exit(2, "double nix-build: %v", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		r.Exit(2, "double nix-build: %v", err)
	}
	r.Set("out", store)
	_, _ = os.Stdout.WriteString(store + "\n")
	r.Exit(0, "")
}
