package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/flyingcircusio/devhost/generator"
	"github.com/flyingcircusio/devhost/internal/diag"
	"github.com/flyingcircusio/devhost/internal/hostconfig"
	"github.com/flyingcircusio/devhost/internal/registry"
	"github.com/flyingcircusio/devhost/templates"
)

// renderOptions are the inputs of `devhost render`.
type renderOptions struct {
	IO       *IOStreams
	Config   func() (*hostconfig.Config, error)
	Registry func() (*registry.Registry, error)
	Abs      func(string) string
	Out      string // --out; "" means print the set to stdout
	Show     bool
	JSON     bool
}

func newCmdRender(f *Factory) *cobra.Command {
	opts := &renderOptions{IO: f.IO, Config: f.HostConfig, Registry: f.Registry, Abs: f.abs}
	cmd := &cobra.Command{
		Use:   "render [--out DIR]",
		Short: "Preview the Nix files of all containers, generated from the registry",
		Long: `Generate the set of Nix files the registry and the host configuration
describe: default.nix (imported by the devhost NixOS module), one
containers/<name>.nix per container (its container declaration, nginx
virtual host and hosts entry), <name>/configuration.nix (the container's own
NixOS system) and the status page www/index.html.

render only renders. It never writes the live set (generated_dir), never
rebuilds the host and never changes a registry entry; anyone who may read
the registry may run it. devhost apply is the verb that applies.

Without --out every file of the set is printed to standard output, each
after a "==> PATH <==" line, in the order of --json's files, so the
output can be paged, searched or compared with the live set.

With --out DIR the set is written to DIR, as a whole: a new directory is
swapped in atomically, the previous one is kept as <DIR>.old. DIR must not
exist yet, be empty, or hold a set written before; any other directory is
refused and left alone.

When any registry entry is invalid, every problem is reported with its file
and position, nothing is written (the previous set stays as it was) and the
command exits with status 1.

--show prints the tree of files and one generated file instead; --json
prints the directory (empty without --out), digests and files for
scripts.`,
		Example: `  # the bundled example registry, into a temporary directory
  devhost render --config examples/devhost.hcl --out "$(mktemp -d)" --show
  # the host side of one container, without writing anything
  devhost render --config examples/devhost.hcl | sed -n '/^==> containers\/web.nix <==$/,/^==> /p'
  devhost render --json | jq -r .host_digest
  # on a devhost, after hand-editing an entry: preview, then apply
  devhost render --show && sudo devhost apply`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return renderRun(opts)
		},
	}
	cmd.Flags().StringVar(&opts.Out, "out", "", "write the generated set to this directory (default: print it to standard output)")
	cmd.Flags().BoolVar(&opts.Show, "show", false, "print the tree of files and one generated file")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the result as JSON")
	return cmd
}

// renderResult is `devhost render --json`; the keys are stable.
type renderResult struct {
	Dir        string   `json:"dir"`
	Containers int      `json:"containers"`
	Digest     string   `json:"digest"`
	HostDigest string   `json:"host_digest"`
	Files      []string `json:"files"`
}

func renderRun(opts *renderOptions) error {
	cfg, cs, err := loadRegistry(opts.Config, opts.Registry)
	if err != nil {
		return err
	}
	tmpl, err := loadTemplates(cfg, opts.IO.Env)
	if err != nil {
		return &InputError{Err: fmt.Errorf("render: %w", err)}
	}
	// The live set's shard memory (dns-01), so that a preview shows what
	// apply would write.
	prev, err := generator.ReadShards(cfg.GeneratedDir)
	if err != nil {
		return err
	}
	set, err := generator.GenerateAfter(cfg, cs, tmpl, prev)
	if err != nil {
		var de *diag.Error
		if errors.As(err, &de) || overridden(tmpl) {
			// The registry, the host configuration or an admin's
			// template is wrong.
			if de == nil {
				return &InputError{Err: fmt.Errorf("render: %w", err)}
			}
			return err
		}
		return fmt.Errorf("render: %w", err)
	}
	// Never the live set: that is written only by the lifecycle's
	// rebuild, under its lock (devhost apply).
	out := ""
	if opts.Out != "" {
		out = opts.Abs(opts.Out)
		if err := generator.Write(out, set); err != nil {
			if errors.Is(err, generator.ErrNotASet) {
				return &InputError{Err: fmt.Errorf("render: %w", err)}
			}
			return fmt.Errorf("render: %w", err)
		}
	}

	switch {
	case opts.JSON:
		res := renderResult{Dir: out, Containers: len(cs), Digest: set.Digest(), HostDigest: set.HostDigest(), Files: set.Paths()}
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return fmt.Errorf("render: %w", err)
		}
	case opts.Show:
		showSet(opts.IO.Out, out, set, cs)
	case out == "":
		printSet(opts.IO.Out, set)
	default:
		fmt.Fprintf(opts.IO.Out, "%s: %d container(s), %d files, digest %s\n", out, len(cs), len(set.Files), set.Digest()[:12])
	}
	return nil
}

// printSet writes every file of set, each after a "==> PATH <==" line
// (as head(1) separates files), ending every file with a newline.
func printSet(w io.Writer, set *generator.Set) {
	bw := bufio.NewWriter(w)
	for _, p := range set.Paths() {
		b := set.Files[p]
		fmt.Fprintf(bw, "==> %s <==\n", p)
		_, _ = bw.Write(b)
		if len(b) > 0 && b[len(b)-1] != '\n' {
			_ = bw.WriteByte('\n')
		}
	}
	_ = bw.Flush()
}

// showSet prints the tree of set's files in dir and one generated file:
// the host side of the first container with aliases (it shows the most),
// else of the first container, else the index. dir is "" for a set that
// was not written: paths are then relative to the set.
func showSet(w io.Writer, dir string, set *generator.Set, cs []*registry.Container) {
	top := dir
	if dir == "" {
		top = "(generated set, not written; --out DIR writes it)"
	}
	fmt.Fprintf(w, "%s\n%s", top, tree(set.Paths()))
	show := generator.IndexFile
	for _, c := range cs {
		if _, ok := set.Files[generator.HostFile(c.Name)]; !ok {
			continue
		}
		if show == generator.IndexFile || len(c.Aliases) > 0 {
			show = generator.HostFile(c.Name)
		}
		if len(c.Aliases) > 0 {
			break
		}
	}
	fmt.Fprintf(w, "\n==> %s <==\n%s", filepath.Join(dir, filepath.FromSlash(show)), set.Files[show])
}

// overridden reports whether an admin template is in use.
func overridden(t *templates.Set) bool {
	for _, src := range t.Sources {
		if src != "embedded" {
			return true
		}
	}
	return false
}

// tree draws slash paths the way tree(1) does, directories with a
// trailing slash.
func tree(paths []string) string {
	type node struct {
		names    []string
		children map[string]*node
	}
	root := &node{children: map[string]*node{}}
	for _, p := range paths {
		n := root
		for _, part := range strings.Split(p, "/") {
			c, ok := n.children[part]
			if !ok {
				c = &node{children: map[string]*node{}}
				n.children[part] = c
				n.names = append(n.names, part)
			}
			n = c
		}
	}
	var b strings.Builder
	var walk func(n *node, indent string)
	walk = func(n *node, indent string) {
		names := slices.Sorted(slices.Values(n.names))
		for i, name := range names {
			c := n.children[name]
			branch, next := "├── ", "│   "
			if i == len(names)-1 {
				branch, next = "└── ", "    "
			}
			if len(c.children) > 0 {
				name += "/"
			}
			b.WriteString(indent + branch + name + "\n")
			walk(c, indent+next)
		}
	}
	walk(root, "")
	return b.String()
}
