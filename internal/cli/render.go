package cli

import (
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
	Out      string // --out; "" means apply to the live set (applyRun)
	Show     bool
	JSON     bool
	// Apply is `devhost apply`, which render without --out runs.
	Apply *applyOptions
}

func newCmdRender(f *Factory) *cobra.Command {
	opts := &renderOptions{IO: f.IO, Config: f.HostConfig, Registry: f.Registry, Abs: f.abs, Apply: newApplyOptions(f)}
	cmd := &cobra.Command{
		Use:   "render [--out DIR]",
		Short: "Regenerate the Nix files of all containers from the registry",
		Long: `Regenerate the generated set from the registry and the host configuration:
default.nix (imported by the devhost NixOS module), one containers/<name>.nix
per container (its container declaration, nginx virtual host and hosts entry),
<name>/configuration.nix (the container's own NixOS system) and the status page
www/index.html.

With --out DIR the set is only written to DIR, as a whole: a new directory
is swapped in atomically, the previous one is kept as <DIR>.old. DIR must
not exist yet, be empty, or hold a set written before; any other directory
is refused and left alone. Nothing is rebuilt and the live set is not
touched; anyone may preview a set this way.

Without --out, render is devhost apply: the live set (generated_dir) is
regenerated and applied through the same locked, coalesced host rebuild
that ensure and destroy use, and the command says whether a rebuild ran.
That needs root or the admin group.

When any registry entry is invalid, every problem is reported with its file
and position, nothing is written (the previous set stays as it was) and the
command exits with status 1.

--show prints the tree of files and one generated file; --json prints the
directory, digests and files for scripts (without --out also the applied
generation and whether the host was rebuilt).`,
		Example: `  # the bundled example registry, into a temporary directory
  devhost render --config examples/devhost.hcl --out "$(mktemp -d)" --show
  devhost render --out /tmp/preview --json | jq -r .host_digest
  # on a devhost: regenerate /var/lib/devhost/generated and rebuild if needed
  sudo devhost render`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Out == "" {
				a := opts.Apply
				a.Context, a.Show, a.JSON = cmd.Context(), opts.Show, opts.JSON
				return applyRun(a)
			}
			return renderRun(opts)
		},
	}
	cmd.Flags().StringVar(&opts.Out, "out", "", "only write the generated set to this directory (default: apply to the live set, as devhost apply)")
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
	set, err := generator.Generate(cfg, cs, tmpl)
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
	if opts.Out == "" {
		// Never the live set: that is written only by the lifecycle's
		// rebuild, under its lock (applyRun).
		return errors.New("render: no --out directory")
	}
	out := opts.Abs(opts.Out)
	if err := generator.Write(out, set); err != nil {
		if errors.Is(err, generator.ErrNotASet) {
			return &InputError{Err: fmt.Errorf("render: %w", err)}
		}
		return fmt.Errorf("render: %w", err)
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
	default:
		fmt.Fprintf(opts.IO.Out, "%s: %d container(s), %d files, digest %s\n", out, len(cs), len(set.Files), set.Digest()[:12])
	}
	return nil
}

// showSet prints the tree of set's files in dir and one generated file:
// the host side of the first container with aliases (it shows the most),
// else of the first container, else the index.
func showSet(w io.Writer, dir string, set *generator.Set, cs []*registry.Container) {
	fmt.Fprintf(w, "%s\n%s", dir, tree(set.Paths()))
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
