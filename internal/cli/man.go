package cli

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// manOptions are the inputs of `devhost man`.
type manOptions struct {
	IO   *IOStreams
	Dir  string
	Root *cobra.Command
}

// newCmdMan is a hidden command the package build runs to install man pages
// generated from the command tree, so they never drift from --help.
func newCmdMan(f *Factory) *cobra.Command {
	opts := &manOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:    "man DIR",
		Short:  "Write devhost's man pages (section 1) into DIR",
		Hidden: true,
		Long: `Write one man page per command (devhost.1, devhost-list.1, ...) into DIR,
creating it if needed. The pages' date is SOURCE_DATE_EPOCH when set (as in a
Nix build), so the output is reproducible.`,
		Example: `  devhost man share/man/man1
  SOURCE_DATE_EPOCH=0 devhost man /tmp/man && man /tmp/man/devhost-list.1`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dir = f.abs(args[0])
			opts.Root = cmd.Root()
			return manRun(opts)
		},
	}
	return cmd
}

func manRun(opts *manOptions) error {
	date := time.Now().UTC()
	if s := opts.IO.Env("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return &InputError{Err: fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds", s)}
		}
		date = time.Unix(sec, 0).UTC()
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	opts.Root.DisableAutoGenTag = true
	header := &doc.GenManHeader{Title: "DEVHOST", Section: "1", Source: "devhost", Manual: "devhost manual", Date: &date}
	if err := doc.GenManTree(opts.Root, header, opts.Dir); err != nil {
		return fmt.Errorf("man pages in %s: %w", opts.Dir, err)
	}
	return nil
}
