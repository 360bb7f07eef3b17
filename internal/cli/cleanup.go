package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/flyingcircusio/devhost/internal/lifecycle"
)

// cleanupOptions are the inputs of `devhost cleanup`.
type cleanupOptions struct {
	IO        *IOStreams
	Context   context.Context
	Lifecycle func() (*lifecycle.Host, error)
	Caller    func() (lifecycle.Caller, error)
	DryRun    bool
	Now       string
	JSON      bool
	Clock     func() time.Time
}

func newCmdCleanup(f *Factory) *cobra.Command {
	opts := &cleanupOptions{IO: f.IO, Lifecycle: f.Lifecycle, Caller: f.Caller, Clock: time.Now}
	cmd := &cobra.Command{
		Use:   "cleanup [--dry-run] [--now TIME]",
		Short: "Stop idle containers and destroy abandoned ones (the nightly timer runs this)",
		Long: `Apply the host's cleanup policy: a container nobody deployed for
cleanup.stop_after (default 7 days) is stopped and no longer started at boot;
one not deployed for cleanup.destroy_after (default 30 days) is destroyed.
Containers with the keep flag (devhost keep) are left alone. All changes
share one host rebuild at the end. Containers another devhost command is
working on are skipped and listed.

--dry-run prints the plan and changes nothing (anyone may run it); the
cleanup itself needs root or the admin group. --now evaluates the policy at
another time (RFC 3339, or a date YYYY-MM-DD), for planning and tests.`,
		Example: `  devhost cleanup --dry-run
  devhost cleanup --dry-run --now 2026-12-24 --json
  sudo devhost cleanup`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = cmd.Context()
			return cleanupRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print the plan, change nothing")
	cmd.Flags().StringVar(&opts.Now, "now", "", "evaluate the policy at this time instead of now (RFC 3339 or YYYY-MM-DD)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the plan (and what was done) as JSON")
	return cmd
}

// parseNow reads --now.
func parseNow(s string, clock func() time.Time) (time.Time, error) {
	if s == "" {
		return clock().UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, inputErrorf("--now %q: use an RFC 3339 time such as 2026-12-24T03:00:00Z, or a date such as 2026-12-24", s)
}

func cleanupRun(opts *cleanupOptions) error {
	ctx := orBackground(opts.Context)
	now, err := parseNow(opts.Now, opts.Clock)
	if err != nil {
		return err
	}
	h, err := opts.Lifecycle()
	if err != nil {
		return err
	}
	var (
		plan lifecycle.CleanupPlan
		st   lifecycle.ApplyStats
	)
	if opts.DryRun {
		if plan, err = h.Plan(now); err != nil && plan.Items == nil && plan.Now.IsZero() {
			return err
		} else if err != nil {
			plan.Warnings = append(plan.Warnings, err.Error())
		}
	} else {
		caller, err := opts.Caller()
		if err != nil {
			return err
		}
		if plan, st, err = h.Cleanup(ctx, now, caller); err != nil {
			return lifecycleError(err)
		}
		plan.Warnings = append(plan.Warnings, restartWarnings(st)...)
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"dry_run": opts.DryRun, "plan": plan, "host_rebuilt": st.Rebuilt})
	}
	printPlan(opts.IO.Out, plan, opts.DryRun)
	for _, w := range plan.Warnings {
		fmt.Fprintf(opts.IO.ErrOut, "devhost: warning: %s\n", w)
	}
	return nil
}

func printPlan(w io.Writer, p lifecycle.CleanupPlan, dry bool) {
	if len(p.Items) == 0 {
		fmt.Fprintf(w, "nothing to clean up at %s\n", fmtTime(p.Now))
		return
	}
	verb := map[string]string{lifecycle.ActionStop: "stopped", lifecycle.ActionDestroy: "destroyed", lifecycle.ActionKeep: "kept (keep flag)"}
	if dry {
		verb = map[string]string{lifecycle.ActionStop: "would stop", lifecycle.ActionDestroy: "would destroy", lifecycle.ActionKeep: "would keep (keep flag)"}
	}
	for _, it := range p.Items {
		line := fmt.Sprintf("%-11s %-22s owner %s, last deployed %s (%d days ago)", it.Name, verb[it.Action], it.Owner, fmtTime(it.Deployed), int(it.Idle.Hours()/24))
		if it.Reason == lifecycle.ReasonExpired {
			line = fmt.Sprintf("%-11s %-22s owner %s, expired %s", it.Name, verb[it.Action], it.Owner, fmtTime(*it.ExpiresAt))
		}
		if it.Skipped != "" {
			line += "; skipped: " + it.Skipped
		}
		fmt.Fprintln(w, line)
	}
}
