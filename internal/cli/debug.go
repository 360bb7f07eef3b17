package cli

import (
	"github.com/spf13/cobra"
)

// newCmdDebug groups the commands that show how devhost reads its inputs,
// so a user can compare devhost's view with batou's.
func newCmdDebug(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "debug <command>",
		Short: "Show how devhost reads its inputs",
		Example: `  # What batou sees in an environment file
  devhost debug cfg environments/dev/environment.cfg`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			return inputErrorf("unknown command %q for %q\nRun '%s --help' for usage", args[0], cmd.CommandPath(), cmd.CommandPath())
		},
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newCmdDebugCfg(f, nil))
	return cmd
}
