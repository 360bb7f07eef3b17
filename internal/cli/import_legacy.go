package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"

	"github.com/flyingcircusio/devhost/internal/channel"
	"github.com/flyingcircusio/devhost/internal/diag"
	"github.com/flyingcircusio/devhost/internal/hostconfig"
	"github.com/flyingcircusio/devhost/internal/legacy"
	"github.com/flyingcircusio/devhost/internal/lifecycle"
	"github.com/flyingcircusio/devhost/internal/names"
)

// importLegacyOptions are the inputs of `devhost import-legacy`.
type importLegacyOptions struct {
	IO            *IOStreams
	Context       context.Context
	Lifecycle     func() (*lifecycle.Host, error)
	Caller        func() (lifecycle.Caller, error)
	Dirs          []string
	ContainersDir string
	EtcContainers string
	Owner         string
	Channel       string
	DryRun        bool
	JSON          bool
}

func newCmdImportLegacy(f *Factory) *cobra.Command {
	opts := &importLegacyOptions{IO: f.IO, Lifecycle: f.Lifecycle, Caller: f.Caller}
	cmd := &cobra.Command{
		Use:   "import-legacy",
		Short: "Register the containers of the old container devhost (/etc/devhost/*.json)",
		Long: `Register, in one host rebuild, the containers the old devhost role created
with fc-build-dev-container. It recorded each as /etc/devhost/<name>.json
(earlier /etc/devserver): {"name", "ip", "aliases", "enabled"}.

Each container keeps its address when it lies in the host's address pool and
is free (else it gets a new one, reported), its aliases, its state (enabled:
running, else stopped) and, as its last deployment, the record's
modification time, which the old cleanup used. Its channel is read from the
enc.json the old script left in the container
(<containers-dir>/<name>/etc/nixos/enc.json); --channel is the fallback. Its
system profile (<profiles>/<name>/system, where nixos-container put it) is
used as it is; the next "devhost ensure" rebuilds it. The old
/etc/containers/<name>.conf is renamed to <name>.conf.pre-devhost so the
declarative container can take over (and renamed back if the rebuild fails).

Names already registered are skipped. Owners are not recorded by the old
devhost: --owner sets them (default root; hand them over later with an
admin's devhost ensure). Only root and the admin group may import.`,
		Example: `  sudo devhost import-legacy --dry-run
  sudo devhost import-legacy --owner alice --channel https://hydra.flyingcircus.io/build/116563/download/1/nixexprs.tar.xz`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = cmd.Context()
			return importLegacyRun(opts)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&opts.Dirs, "dir", legacy.DefaultDirs, "directory of the old devhost's <name>.json records (repeatable)")
	fl.StringVar(&opts.ContainersDir, "containers-dir", legacy.DefaultContainersDir, "the old containers' root directories (for enc.json)")
	fl.StringVar(&opts.EtcContainers, "etc-containers", "/etc/containers", `where nixos-container keeps <name>.conf ("" leaves them alone)`)
	fl.StringVar(&opts.Owner, "owner", "root", "owner of the imported containers")
	fl.StringVar(&opts.Channel, "channel", "", "channel of containers whose enc.json names none")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "show what would be imported, change nothing")
	fl.BoolVar(&opts.JSON, "json", false, "print the results as JSON")
	return cmd
}

func importLegacyRun(opts *importLegacyOptions) error {
	ctx := orBackground(opts.Context)
	if err := names.Login(opts.Owner); err != nil {
		return &InputError{Err: fmt.Errorf("--owner: %w", err)}
	}
	if opts.Channel != "" {
		if _, err := channel.Parse(opts.Channel); err != nil {
			return &InputError{Err: fmt.Errorf("--channel: %w", err)}
		}
	}
	recs, diags, files := legacy.Read(opts.Dirs)
	if diags.HasErrors() {
		return diag.NewError(diags, files)
	}
	for _, d := range diags {
		fmt.Fprintf(opts.IO.ErrOut, "devhost: %s\n", diag.Line(d))
	}
	h, caller, err := hostAndCaller(opts.Lifecycle, opts.Caller)
	if err != nil {
		return err
	}
	var (
		items   []lifecycle.ImportItem
		missing hcl.Diagnostics
	)
	for _, r := range recs {
		enc := filepath.Join(opts.ContainersDir, r.Name, "etc", "nixos", "enc.json")
		why := enc + " names none"
		ch, ok := legacy.Channel(opts.ContainersDir, r.Name)
		if ok {
			// enc.json lies inside the old container, whose root could
			// write it: its channel is checked like any ensure's.
			if _, err := h.ResolveChannel(ch); err != nil {
				why = fmt.Sprintf("%s names a channel this devhost refuses (%v)", enc, err)
				if opts.Channel != "" {
					fmt.Fprintf(opts.IO.ErrOut, "devhost: warning: %s: %s; using --channel %s\n", r.Name, why, opts.Channel)
				}
				ok = false
			}
		}
		if !ok {
			ch = opts.Channel
		}
		if ch == "" {
			missing = append(missing, &hcl.Diagnostic{Severity: hcl.DiagError,
				Summary: fmt.Sprintf("No channel for container %q", r.Name),
				Detail:  why + "; pass --channel URL with a channel this devhost allows."})
			continue
		}
		items = append(items, lifecycle.ImportItem{Name: r.Name, Owner: opts.Owner, Channel: ch, Aliases: r.Aliases,
			Address: r.IP, Running: r.Enabled, Deployed: r.ModTime})
	}
	if err := diag.NewError(missing, nil); err != nil {
		return err
	}
	warnMovedRoots(opts, h, items)
	results, st, err := h.Import(ctx, items, caller, lifecycle.ImportOptions{DryRun: opts.DryRun, EtcContainersDir: opts.EtcContainers})
	if err != nil {
		return lifecycleError(err)
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"dry_run": opts.DryRun, "containers": results, "host_rebuilt": st.Rebuilt})
	}
	verb := "imported"
	if opts.DryRun {
		verb = "would import"
	}
	for _, r := range results {
		switch {
		case r.Skipped != "":
			fmt.Fprintf(opts.IO.Out, "%-11s skipped: %s\n", r.Name, r.Skipped)
		default:
			line := fmt.Sprintf("%-11s %s, address %s", r.Name, verb, r.Address)
			if r.OldAddress != "" {
				line += " (was " + r.OldAddress + ")"
			}
			fmt.Fprintln(opts.IO.Out, line)
		}
		if r.Warning != "" {
			fmt.Fprintf(opts.IO.ErrOut, "devhost: warning: %s: %s\n", r.Name, r.Warning)
		}
	}
	return nil
}

// warnMovedRoots says when an old container's root directory is not where
// the devhost's containers live (the host configuration's containers_dir):
// the declared container would then start on an empty root, its data left
// in the old place. Moving it is the admin's decision, so this only warns.
func warnMovedRoots(opts *importLegacyOptions, h *lifecycle.Host, items []lifecycle.ImportItem) {
	newDir := h.Cfg.ContainersDir
	if newDir == "" {
		newDir = hostconfig.DefaultContainersDir
	}
	if filepath.Clean(newDir) == filepath.Clean(opts.ContainersDir) {
		return
	}
	for _, it := range items {
		old := filepath.Join(opts.ContainersDir, it.Name)
		if _, err := os.Stat(old); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(newDir, it.Name)); err == nil {
			continue
		}
		fmt.Fprintf(opts.IO.ErrOut, "devhost: warning: %s: its root directory is %s, but containers run from %s (containers_dir): move it there before the import, or the container starts empty\n", it.Name, old, filepath.Join(newDir, it.Name))
	}
}
