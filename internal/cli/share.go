package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/flyingcircusio/devhost/internal/lifecycle"
)

// shareOptions are the inputs of `devhost share` and `devhost unshare`.
type shareOptions struct {
	IO        *IOStreams
	Context   context.Context
	Lifecycle func() (*lifecycle.Host, error)
	Caller    func() (lifecycle.Caller, error)
	Name      string
	Users     []string
	On        bool
	JSON      bool
}

func newCmdShare(f *Factory) *cobra.Command {
	return shareCmd(f, true, &cobra.Command{
		Use:   "share NAME USER...",
		Short: "Let colleagues log into a container as developer with their own keys (through sudo)",
		Long: `Share container NAME with the devhost users USER...: they may log into it as
developer with the keys they log into the devhost with (their
~/.ssh/authorized_keys here), deploy it and keep it. Only the owner or a
member of the admin group may share; destroying it stays theirs too.

The keys are read again on every ensure, so a colleague's new key reaches
the container with the next deployment. Keys with options (command=,
from=, …) are skipped with a warning. The container's system is rebuilt
and a running container switched to it; the host is not rebuilt.

A colleague writes an ssh_config for the container on their laptop with
` + "`devhost connect NAME --devhost HOST`" + `.`,
		Example: `  sudo devhost share shop jane.doe bob
  sudo devhost share shop jane.doe --json`,
	})
}

func newCmdUnshare(f *Factory) *cobra.Command {
	return shareCmd(f, false, &cobra.Command{
		Use:   "unshare NAME USER...",
		Short: "Take back a colleague's access to a container (through sudo)",
		Long: `Remove USER... from the users container NAME is shared with: their keys
leave the container's configuration, which is rebuilt and switched to.
Only the owner or a member of the admin group may unshare. Users the
container is not shared with are ignored.`,
		Example: `  sudo devhost unshare shop jane.doe`,
	})
}

// shareCmd completes cmd as share (on) or unshare: NAME USER..., the
// container names completed, --json (the only flag: the module's sudo rules
// allow both with any arguments).
func shareCmd(f *Factory, on bool, cmd *cobra.Command) *cobra.Command {
	opts := &shareOptions{IO: f.IO, Lifecycle: f.Lifecycle, Caller: f.Caller, On: on}
	cmd.Args = minArgs(2)
	cmd.ValidArgsFunction = completeContainers(f)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		opts.Context = cmd.Context()
		opts.Name, opts.Users = args[0], args[1:]
		return shareRun(opts)
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, `print {"name": …, "shared_with": […], "unit": …, "warnings": […]}`)
	return cmd
}

func shareRun(opts *shareOptions) error {
	ctx := orBackground(opts.Context)
	h, caller, err := hostAndCaller(opts.Lifecycle, opts.Caller)
	if err != nil {
		return err
	}
	res, err := h.Share(ctx, opts.Name, opts.Users, opts.On, caller)
	if err != nil {
		return lifecycleError(err)
	}
	printWarnings(opts.IO.ErrOut, res.Warnings)
	c := res.Container
	if opts.JSON {
		return json.NewEncoder(opts.IO.Out).Encode(map[string]any{
			"name": c.Name, "shared_with": nonNil(c.SharedWith), "unit": res.Unit, "warnings": nonNil(res.Warnings),
		})
	}
	if len(c.SharedWith) == 0 {
		fmt.Fprintf(opts.IO.Out, "container %s is shared with nobody (unit %s)\n", c.Name, res.Unit)
	} else {
		fmt.Fprintf(opts.IO.Out, "container %s is shared with %s (unit %s)\n", c.Name, strings.Join(c.SharedWith, " "), res.Unit)
	}
	return nil
}

// printWarnings writes each warning on its own line of w.
func printWarnings(w io.Writer, warnings []string) {
	for _, s := range warnings {
		fmt.Fprintf(w, "devhost: warning: %s\n", s)
	}
}

// minArgs is cobra.MinimumNArgs as an input error (exit status 1).
func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.MinimumNArgs(n)(cmd, args); err != nil {
			return &InputError{Err: fmt.Errorf("%w\nRun '%s --help' for usage", err, cmd.CommandPath())}
		}
		return nil
	}
}

// completeContainers completes the first argument with the names of the
// devhost's containers (the registry's file names: nothing is parsed).
func completeContainers(f *Factory) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return containerNames(f, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

func containerNames(f *Factory, prefix string) []cobra.Completion {
	reg, err := f.Registry()
	if err != nil {
		return nil
	}
	all, err := reg.Names()
	if err != nil {
		return nil
	}
	var out []cobra.Completion
	for _, n := range all {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}
