package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/flyingcircusio/devhost/internal/lifecycle"
)

// keepOptions are the inputs of `devhost keep`.
type keepOptions struct {
	IO        *IOStreams
	Context   context.Context
	Lifecycle func() (*lifecycle.Host, error)
	Caller    func() (lifecycle.Caller, error)
	Name      string
	Off       bool
	JSON      bool
}

func newCmdKeep(f *Factory) *cobra.Command {
	opts := &keepOptions{IO: f.IO, Lifecycle: f.Lifecycle, Caller: f.Caller}
	cmd := &cobra.Command{
		Use:   "keep NAME [--off]",
		Short: "Exempt a container from the nightly cleanup (or, with --off, no longer)",
		Long: `Set the keep flag of container NAME: the cleanup neither stops nor destroys
it, however long nobody deployed it. --off clears the flag. Only the owner or
a member of the admin group may change it.`,
		Example: `  sudo devhost keep shop
  sudo devhost keep shop --off`,
		Args:              exactArgs(1),
		ValidArgsFunction: completeContainers(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = cmd.Context()
			opts.Name = args[0]
			return keepRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Off, "off", false, "clear the keep flag")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, `print {"name": …, "keep": …}`)
	return cmd
}

func keepRun(opts *keepOptions) error {
	ctx := orBackground(opts.Context)
	h, caller, err := hostAndCaller(opts.Lifecycle, opts.Caller)
	if err != nil {
		return err
	}
	c, err := h.Keep(ctx, opts.Name, !opts.Off, caller)
	if err != nil {
		return lifecycleError(err)
	}
	if opts.JSON {
		return json.NewEncoder(opts.IO.Out).Encode(map[string]any{"name": c.Name, "keep": c.Keep})
	}
	if c.Keep {
		fmt.Fprintf(opts.IO.Out, "container %s is kept: cleanup leaves it alone\n", c.Name)
	} else {
		fmt.Fprintf(opts.IO.Out, "container %s is no longer kept\n", c.Name)
	}
	return nil
}
