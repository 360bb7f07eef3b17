package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/flyingcircusio/devhost/internal/diag"
	"github.com/flyingcircusio/devhost/internal/rawconfig"
)

// DebugCfgOptions are the inputs of `devhost debug cfg`.
type DebugCfgOptions struct {
	IO *IOStreams
	// File is the INI file as the user named it (used in messages).
	File string
	// Path is File resolved against the working directory.
	Path string
	// JSON is accepted for uniformity; the output is always JSON.
	JSON bool
}

func newCmdDebugCfg(f *Factory, runF func(*DebugCfgOptions) error) *cobra.Command {
	opts := &DebugCfgOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "cfg FILE",
		Short: "Print an environment.cfg as batou's parser reads it",
		Long: `Print the sections, options and values of FILE as batou sees them.

batou reads environment.cfg with Python's configparser.RawConfigParser,
option names kept case-sensitive; devhost reads it the same way. The output
is JSON with sorted keys, in the form Python's json.dumps writes it:

  {"sections": {"<section>": {"<option>": "<value>"}}}

[DEFAULT] values are merged into every section, and DEFAULT is not listed.
When batou would reject the file, the output is

  {"error": "<the Python exception class CPython raises>"}

the error with its line is shown on stderr, and the exit status is 1.`,
		Example: `  # What batou sees in the dev environment
  devhost debug cfg environments/dev/environment.cfg

  # One value, with jq
  devhost debug cfg environments/dev/environment.cfg | jq -r '.sections.hosts'`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.File = args[0]
			opts.Path = f.abs(args[0])
			if runF != nil {
				return runF(opts)
			}
			return debugCfgRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", true, "print JSON (always on; accepted for scripts that pass it)")
	return cmd
}

// debugCfgRun prints FILE as the reader sees it, or the Python exception
// class batou would fail with.
func debugCfgRun(opts *DebugCfgOptions) error {
	path := opts.File
	src, err := os.ReadFile(opts.Path)
	if err != nil {
		// Python's open() raises these classes; batou's config.read()
		// would even ignore a missing file, but a debug view of a file
		// that is not there helps nobody.
		class := "OSError"
		switch {
		case errors.Is(err, fs.ErrNotExist):
			class = "FileNotFoundError"
		case errors.Is(err, fs.ErrPermission):
			class = "PermissionError"
		case errors.Is(err, syscall.EISDIR):
			class = "IsADirectoryError"
		}
		fmt.Fprintf(opts.IO.Out, "%s\n", rawconfig.ErrorJSON(class))
		return &InputError{Err: fmt.Errorf("cannot read %s: %w", path, err)}
	}
	f, err := rawconfig.Parse(path, src)
	if err != nil {
		var perr *rawconfig.Error
		if !errors.As(err, &perr) {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		fmt.Fprintf(opts.IO.Out, "%s\n", rawconfig.ErrorJSON(perr.PythonClass))
		return &diag.Error{Diags: perr.Diagnostics(), Files: map[string][]byte{path: rawconfig.SnippetSource(src)}}
	}
	fmt.Fprintf(opts.IO.Out, "%s\n", f.JSON())
	return nil
}
