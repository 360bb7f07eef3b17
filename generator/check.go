package generator

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// parseBatch bounds the files per nix-instantiate call (argv size).
const parseBatch = 500

// Check runs `nix-instantiate --parse` (nixInstantiate is its argv prefix,
// e.g. hostconfig's Commands.NixInstantiate) on every .nix file under dir,
// a few hundred files per call. The error names the file Nix rejected.
func Check(ctx context.Context, nixInstantiate []string, dir string) error {
	if len(nixInstantiate) == 0 {
		return fmt.Errorf("check %s: no nix-instantiate command", dir)
	}
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".nix") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("check %s: %w", dir, err)
	}
	sort.Strings(files)
	for len(files) > 0 {
		n := min(parseBatch, len(files))
		argv := append(append(append([]string{}, nixInstantiate[1:]...), "--parse"), files[:n]...)
		cmd := exec.CommandContext(ctx, nixInstantiate[0], argv...)
		var stderr bytes.Buffer
		cmd.Stdout = io.Discard
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("check %s: %s --parse: %w: %s", dir, nixInstantiate[0], err, strings.TrimSpace(stderr.String()))
		}
		files = files[n:]
	}
	return nil
}

// Eval evaluates the set's default.nix in dir with
// `nix-instantiate --eval --strict --json` and returns the JSON. This is
// exactly the plain data the NixOS module sees (doc.go).
func Eval(ctx context.Context, nixInstantiate []string, dir string) ([]byte, error) {
	if len(nixInstantiate) == 0 {
		return nil, fmt.Errorf("eval %s: no nix-instantiate command", dir)
	}
	argv := append(append([]string{}, nixInstantiate[1:]...), "--eval", "--strict", "--json", filepath.Join(dir, IndexFile))
	cmd := exec.CommandContext(ctx, nixInstantiate[0], argv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("eval %s: %w: %s", filepath.Join(dir, IndexFile), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
