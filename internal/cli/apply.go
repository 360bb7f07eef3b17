package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/flyingcircusio/devhost/generator"
	"github.com/flyingcircusio/devhost/internal/lifecycle"
	"github.com/flyingcircusio/devhost/internal/registry"
)

// applyOptions are the inputs of `devhost apply`.
type applyOptions struct {
	IO        *IOStreams
	Context   context.Context
	Registry  func() (*registry.Registry, error)
	Lifecycle func() (*lifecycle.Host, error)
	Caller    func() (lifecycle.Caller, error)
	Show      bool
	JSON      bool
	Full      bool
}

func newCmdApply(f *Factory) *cobra.Command {
	opts := &applyOptions{IO: f.IO, Registry: f.Registry, Lifecycle: f.Lifecycle, Caller: f.Caller}
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Apply the registry to the host, e.g. after hand-editing an entry (admin)",
		Long: `Regenerate the live generated set (generated_dir) from the registry and
apply it: changes made behind devhost's back (a hand-edited registry entry,
changed templates or host configuration) are counted, and everything
pending is applied in one host rebuild, under the same lock and with the
same rollback on failure as devhost ensure and destroy. When the host's
declarations did not change, no rebuild runs. Commands interrupted earlier
are cleaned up first.

Only root and members of the admin group may apply. An invalid registry
entry is reported with its file and position and nothing changes (exit
status 1). A failed rebuild exits with 2: the host gets its previous
generated set back, the registry entries stay as they are (what an admin
wrote is the desired state; each one the rebuild could not apply records
the failure as its last_error, shown by devhost status) and the error names
those containers. Fix the cause and run devhost apply again.

A rebuild renders only the containers whose registry entries changed
since the live set was written (and all of them after a change of the
templates or the host configuration). With --full, every entry is rendered
and the live set is made exactly that render: files that differ are
rewritten, files the render does not have are removed. The result is the
same set byte for byte; --full repairs a set someone changed by hand.

devhost render previews the set without applying anything.`,
		Example: `  # after adding an alias to /var/lib/devhost/containers/shop.hcl by hand
  sudo devhost apply
  sudo devhost apply --json | jq .rebuilt`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = cmd.Context()
			return applyRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Show, "show", false, "also print the tree of the live set's files and one generated file")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the result as JSON")
	cmd.Flags().BoolVar(&opts.Full, "full", false, "render every entry and make the live set exactly that render")
	return cmd
}

// applyResult is `devhost apply --json`: render's keys, describing the
// live set, plus what the apply did. The keys are stable.
type applyResult struct {
	renderResult
	Generation uint64 `json:"generation"`
	Rebuilt    bool   `json:"rebuilt"`
	Wrote      bool   `json:"wrote"`
	// Restarted are the running containers restarted because the
	// rebuild changed their addresses or limits.
	Restarted    []string `json:"restarted"`
	RestartError string   `json:"restart_error,omitempty"`
}

func applyRun(opts *applyOptions) error {
	ctx := orBackground(opts.Context)
	h, caller, err := hostAndCaller(opts.Lifecycle, opts.Caller)
	if err != nil {
		return err
	}
	sync := h.Sync
	if opts.Full {
		sync = h.SyncFull
	}
	st, err := sync(ctx, caller)
	if err != nil {
		return lifecycleError(err)
	}

	// Describe the live set as it is now (a concurrent command may have
	// applied a later generation meanwhile; that is the set the host runs).
	dir := h.Cfg.GeneratedDir
	set, err := lifecycle.ReadSet(dir)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	res := applyResult{renderResult: renderResult{Dir: dir, Files: []string{}}, Generation: st.Gen, Rebuilt: st.Rebuilt, Wrote: st.Wrote,
		Restarted: nonNil(st.Restarted), RestartError: st.RestartErr}
	if set != nil {
		res.Digest, res.HostDigest, res.Files = set.Digest(), set.HostDigest(), set.Paths()
		for _, p := range res.Files {
			if generator.IsHostFile(p) && strings.HasPrefix(p, "containers/") {
				res.Containers++
			}
		}
	}

	switch {
	case opts.JSON:
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		return restartError(res)
	case opts.Show && set != nil:
		reg, err := opts.Registry()
		if err != nil {
			return err
		}
		// Only to pick the file to show: LoadAll returns the valid
		// entries even when another one broke since the apply.
		cs, _ := reg.LoadAll()
		showSet(opts.IO.Out, dir, set, cs)
	}
	fmt.Fprintln(opts.IO.Out, applySummary(dir, res))
	if len(res.Restarted) > 0 {
		fmt.Fprintf(opts.IO.Out, "restarted (addresses or limits changed): %s\n", strings.Join(res.Restarted, " "))
	}
	return restartError(res)
}

// restartWarnings are the warnings of a command whose rebuild restarted
// other containers and failed to: the command's own change stands.
func restartWarnings(st lifecycle.ApplyStats) []string {
	if st.RestartErr == "" {
		return nil
	}
	return []string{st.RestartErr}
}

// restartError fails an apply whose rebuild succeeded but whose restart
// of the containers it changed did not: they run with their old addresses
// or limits until restarted.
func restartError(r applyResult) error {
	if r.RestartError == "" {
		return nil
	}
	return fmt.Errorf("apply: generation %d is applied, but %s; they keep their previous addresses and limits until restarted (`systemctl restart container@NAME`)", r.Generation, r.RestartError)
}

// applySummary says in one line what an apply did.
func applySummary(dir string, r applyResult) string {
	switch {
	case r.Rebuilt:
		return fmt.Sprintf("%s: generation %d applied, host rebuilt (%d container(s))", dir, r.Generation, r.Containers)
	case r.Wrote:
		return fmt.Sprintf("%s: generation %d written; the host's declarations are unchanged, no rebuild needed", dir, r.Generation)
	default:
		return fmt.Sprintf("%s: generation %d is already applied; no rebuild needed", dir, r.Generation)
	}
}
