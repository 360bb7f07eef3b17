package cli

import (
	"strings"

	"github.com/spf13/cobra"
)

// CompatName is the name batou 2.3/2.4's container provisioner calls on
// the devhost. The devhost binary answers to it as argv[0] (the package
// installs a link of that name) and as a subcommand.
const CompatName = "fc-build-dev-container"

func newCmdCompat(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   CompatName + " <ensure|destroy> NAME …",
		Short: "The old devhost's interface, for batou 2.3/2.4's container provisioner",
		Long: `The command line of the container devhost this one replaces, so batou's
built-in provisioner works unchanged. batou runs, over ssh:

  sudo fc-build-dev-container ensure NAME CHANNEL_URL 'ALIAS ALIAS'
  sudo fc-build-dev-container destroy NAME

ensure is "devhost ensure NAME --channel CHANNEL_URL --alias ALIAS …" (the
aliases are one whitespace-separated argument, possibly empty); it keeps the
container's provision.nix, if it has one, since batou copies provision.nix
into the container itself. destroy of an unknown container succeeds, as it
did before. With the host's compat.bootstrap_key, every container authorises
batou's well-known key for the user developer.`,
		Example: `  sudo fc-build-dev-container ensure 3f2a9c1d0b7 https://hydra.flyingcircus.io/build/116563/download/1/nixexprs.tar.xz 'www admin'
  sudo devhost fc-build-dev-container destroy 3f2a9c1d0b7`,
	}
	cmd.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return inputErrorf("%s: unknown action %q; use ensure or destroy", CompatName, args[0])
		}
		return nil
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		_ = cmd.Help()
		return inputErrorf("%s: an action is required: ensure or destroy", CompatName)
	}
	ensure := &ensureOptions{IO: f.IO, Lifecycle: f.Lifecycle, Caller: f.Caller, KeepProvision: true}
	cmd.AddCommand(&cobra.Command{
		Use:     "ensure NAME CHANNEL_URL ['ALIASES']",
		Short:   "Create or start a container pinned to a channel",
		Example: `  sudo fc-build-dev-container ensure shop file:///srv/channels/nixos 'www admin'`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 || len(args) > 3 {
				return inputErrorf("usage: %s ensure NAME CHANNEL_URL ['ALIAS ALIAS']", CompatName)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ensure.Context = cmd.Context()
			ensure.Name, ensure.Channel = args[0], args[1]
			ensure.Aliases = nil
			if len(args) == 3 {
				ensure.Aliases = strings.Fields(args[2])
			}
			return ensureRun(ensure)
		},
	})
	destroy := &destroyOptions{IO: f.IO, Lifecycle: f.Lifecycle, Caller: f.Caller, Lenient: true}
	cmd.AddCommand(&cobra.Command{
		Use:     "destroy NAME",
		Short:   "Remove a container (an unknown one is not an error)",
		Example: `  sudo fc-build-dev-container destroy shop`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			destroy.Context = cmd.Context()
			destroy.Name = args[0]
			return destroyRun(destroy)
		},
	})
	return cmd
}

// compatArgs rewrites the arguments of a process started as
// fc-build-dev-container into those of the subcommand.
func compatArgs(args []string) []string {
	if len(args) == 0 {
		return args
	}
	base := args[0]
	if i := strings.LastIndexByte(base, '/'); i >= 0 {
		base = base[i+1:]
	}
	if base != CompatName {
		return args
	}
	return append([]string{args[0], CompatName}, args[1:]...)
}
