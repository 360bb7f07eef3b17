package cli

import (
	"encoding/json"
	"errors"
	"fmt"
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
	Out      string // --out; "" means the configured generated_dir
	Show     bool
	JSON     bool
}

func newCmdRender(f *Factory) *cobra.Command {
	opts := &renderOptions{IO: f.IO, Config: f.HostConfig, Registry: f.Registry, Abs: f.abs}
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Regenerate the Nix files of all containers from the registry",
		Long: `Regenerate the generated set from the registry and the host configuration:
default.nix (imported by the devhost NixOS module), one containers/<name>.nix
per container (its container declaration, nginx virtual host and hosts entry),
<name>/configuration.nix (the container's own NixOS system) and the status page
www/index.html.

The set is written to --out (default: the configured generated_dir) as a
whole: a new directory is swapped in atomically, the previous one is kept as
<dir>.old. Nothing is rebuilt; the next rebuild of the host picks it up.

When any registry entry is invalid, every problem is reported with its file
and position, nothing is written (the previous set stays as it was) and the
command exits with status 1.

--show prints the tree of written files and one generated file; --json prints
the directory, digests and files for scripts.`,
		Example: `  # the bundled example registry, into a temporary directory
  devhost render --config examples/devhost.hcl --out "$(mktemp -d)" --show
  # on a devhost: regenerate /var/lib/devhost/generated
  sudo devhost render
  devhost render --out /tmp/preview --json | jq -r .host_digest`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return renderRun(opts)
		},
	}
	cmd.Flags().StringVar(&opts.Out, "out", "", "directory to write the generated set to (default: generated_dir of the host configuration)")
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
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	reg, err := opts.Registry()
	if err != nil {
		return err
	}
	cs, err := reg.LoadAll()
	if err != nil {
		return err
	}
	tmpl, err := templates.Load(cfg.TemplateDir)
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
	out := cfg.GeneratedDir
	if opts.Out != "" {
		out = opts.Abs(opts.Out)
	}
	if err := generator.Write(out, set); err != nil {
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
		fmt.Fprintf(opts.IO.Out, "%s\n%s", out, tree(set.Paths()))
		// One container's host side: the first with aliases (it shows the
		// most), else the first, else the index.
		show := generator.IndexFile
		for i, c := range cs {
			if i == 0 || len(c.Aliases) > 0 {
				show = generator.HostFile(c.Name)
			}
			if len(c.Aliases) > 0 {
				break
			}
		}
		fmt.Fprintf(opts.IO.Out, "\n==> %s <==\n%s", filepath.Join(out, filepath.FromSlash(show)), set.Files[show])
	default:
		fmt.Fprintf(opts.IO.Out, "%s: %d container(s), %d files, digest %s\n", out, len(cs), len(set.Files), set.Digest()[:12])
	}
	return nil
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
