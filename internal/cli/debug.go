package cli

import (
	"github.com/spf13/cobra"
)

func newCmdDebug(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "debug <command>",
		Short: "Show how devhost reads its inputs",
	}
	return cmd
}
