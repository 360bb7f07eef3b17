// Package cli is devhost's command line: flags, output and exit codes. The
// work is done by the packages it calls; nothing here decides policy.
package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/flyingcircusio/devhost/internal/diag"
)

// Main runs devhost with args (args[0] is the program name) and returns the
// process exit status.
func Main(args []string, io *IOStreams) int {
	defer startTestProfile(io)()
	root := NewRootCmd(io)
	args = compatArgs(args) // argv[0] fc-build-dev-container: the compatibility CLI
	root.SetArgs(args[1:])
	root.SetIn(io.In)
	root.SetOut(io.Out)
	root.SetErr(io.ErrOut)
	err := root.Execute()
	if err != nil {
		reportError(io, err)
	}
	return exitCode(err)
}

func reportError(io *IOStreams, err error) {
	var (
		de *diag.Error
		se *silentError
	)
	switch {
	case errors.As(err, &se):
	case errors.As(err, &de):
		_ = diag.Write(io.ErrOut, de.Diags, de.Files, io.ColorErr)
		n := 0
		for _, d := range de.Diags {
			if d.Severity == 1 {
				n++
			}
		}
		fmt.Fprintf(io.ErrOut, "devhost: %d error(s); nothing was changed\n", n)
	default:
		fmt.Fprintf(io.ErrOut, "devhost: %v\n", err)
	}
}

// NewRootCmd builds the command tree.
func NewRootCmd(io *IOStreams) *cobra.Command {
	f := &Factory{IO: io}
	root := &cobra.Command{
		Use:   "devhost <command>",
		Short: "Personal development deployments as NixOS containers on a shared devhost",
		Long: `devhost turns batou environments (environments/<env>/environment.cfg,
provision.nix, provision.sh) into NixOS containers with public HTTPS names
on a shared NixOS machine, and cleans up what nobody deploys any more.

Exit status: 0 success, 1 the input is wrong, 2 devhost or a command it ran failed.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.HiddenDefaultCmd = true
	f.addConfigFlag(root)
	// Unknown commands are the user's mistake (exit 1), with cobra's
	// "did you mean" suggestions.
	root.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
		}
		return &InputError{Err: fmt.Errorf("%s\nRun '%s --help' for usage", msg, cmd.CommandPath())}
	}
	root.RunE = func(cmd *cobra.Command, args []string) error { return cmd.Help() }
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &InputError{Err: fmt.Errorf("%w\nRun '%s --help' for usage", err, c.CommandPath())}
	})
	for _, add := range commands {
		root.AddCommand(add(f))
	}
	return root
}

// commands lists the constructors of devhost's top-level commands.
var commands = []func(*Factory) *cobra.Command{
	newCmdUp,
	newCmdConnect,
	newCmdSync,
	newCmdReserve,
	newCmdDebug,
	newCmdList,
	newCmdRender,
	newCmdApply,
	newCmdCheck,
	newCmdMan,
	newCmdVersion,
	newCmdEnsure, newCmdDestroy, newCmdCleanup, newCmdKeep, newCmdShare, newCmdUnshare, newCmdProtect, newCmdStatus, newCmdCompat, newCmdImportLegacy,
}

// Factory hands commands their dependencies lazily, so a command that does
// not need the host configuration never reads it.
type Factory struct {
	IO     *IOStreams
	config configState // host configuration (factory_config.go)
}

// abs resolves p against the working directory of f.IO.
func (f *Factory) abs(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(f.IO.Dir, p)
}

// exactArgs is cobra.ExactArgs with an input error (exit 1).
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return &InputError{Err: fmt.Errorf("%w\nRun '%s --help' for usage", err, cmd.CommandPath())}
		}
		return nil
	}
}
