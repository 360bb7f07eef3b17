package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
)

// version is set at build time by the Nix package
// (-ldflags "-X github.com/flyingcircusio/devhost/internal/cli.version=...");
// a plain `go build` reports "dev".
var version = "dev"

// versionOptions are the inputs of `devhost version`.
type versionOptions struct {
	IO      *IOStreams
	Version string
	JSON    bool
}

func newCmdVersion(f *Factory) *cobra.Command {
	opts := &versionOptions{IO: f.IO, Version: version}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print devhost's version",
		Long: `Print the version of this devhost build: the date and commit of the flake
source it was built from, or "dev" for a plain go build.`,
		Example: `  devhost version
  devhost version --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return versionRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print a JSON object")
	return cmd
}

func versionRun(opts *versionOptions) error {
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		return enc.Encode(struct {
			Version string `json:"version"`
		}{opts.Version})
	}
	fmt.Fprintf(opts.IO.Out, "devhost %s\n", opts.Version)
	return nil
}
