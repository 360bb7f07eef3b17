package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/flyingcircusio/devhost/internal/lifecycle"
)

// destroyOptions are the inputs of `devhost destroy`.
type destroyOptions struct {
	IO        *IOStreams
	Context   context.Context
	Lifecycle func() (*lifecycle.Host, error)
	Caller    func() (lifecycle.Caller, error)
	Name      string
	JSON      bool
	// Lenient makes an unknown name a success (fc-build-dev-container
	// destroy, which batou runs before re-creating a container).
	Lenient bool
}

func newCmdDestroy(f *Factory) *cobra.Command {
	opts := &destroyOptions{IO: f.IO, Lifecycle: f.Lifecycle, Caller: f.Caller}
	cmd := &cobra.Command{
		Use:   "destroy NAME",
		Short: "Remove a container: registry entry, proxy, unit, profile and data (through sudo)",
		Long: `Remove the container NAME with one host rebuild: its registry entry goes,
and with it the host's container declaration, nginx virtual host and hosts
entry; after the rebuild succeeded its unit is stopped and its profile, root
directory (<containers_dir>/NAME, by default /var/lib/nixos-containers/NAME)
and provision.nix are deleted.

Only the container's owner, or a member of the admin group, may destroy it.
A failed rebuild restores the entry and exits with 2; an unknown name exits
with 1.`,
		Example: `  sudo devhost destroy shop
  sudo devhost destroy shop --json`,
		Args:              exactArgs(1),
		ValidArgsFunction: completeContainers(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = cmd.Context()
			opts.Name = args[0]
			return destroyRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, `print {"name": …, "destroyed": true, "host_rebuilt": …}`)
	return cmd
}

func destroyRun(opts *destroyOptions) error {
	ctx := orBackground(opts.Context)
	h, caller, err := hostAndCaller(opts.Lifecycle, opts.Caller)
	if err != nil {
		return err
	}
	res, err := h.Destroy(ctx, opts.Name, caller)
	var nf *lifecycle.NotFoundError
	if opts.Lenient && errorsAs(err, &nf) {
		fmt.Fprintf(opts.IO.ErrOut, "devhost: container %s is not registered; nothing to destroy\n", opts.Name)
		return nil
	}
	if err != nil {
		return lifecycleError(err)
	}
	printWarnings(opts.IO.ErrOut, restartWarnings(res.Apply))
	if opts.JSON {
		return json.NewEncoder(opts.IO.Out).Encode(map[string]any{
			"name": opts.Name, "destroyed": true, "host_rebuilt": res.Apply.Rebuilt, "applied_generation": res.Apply.Gen})
	}
	fmt.Fprintf(opts.IO.Out, "container %s destroyed\n", opts.Name)
	return nil
}

func errorsAs[T error](err error, target *T) bool { return err != nil && errors.As(err, target) }
