package cli

import (
	"io"
	"os"
	"path/filepath"
)

// IOStreams are where a command reads and writes: results go to Out,
// progress, warnings and errors to ErrOut. Tests use buffers.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// Env looks up environment variables; tests pass a map.
	Env func(string) string
	// Dir is the working directory commands resolve relative paths against.
	Dir string
	// ColorErr enables colored diagnostics on ErrOut.
	ColorErr bool
	// ErrTerminal says ErrOut is a terminal (progress is then one
	// updating line per host), ErrWidth its width in columns (0: unknown).
	ErrTerminal bool
	ErrWidth    int
}

// SystemIO returns the process' streams and environment.
func SystemIO() *IOStreams {
	dir, _ := os.Getwd()
	tty := false
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		tty = true
	}
	color := tty && os.Getenv("NO_COLOR") == ""
	term := tty && os.Getenv("TERM") != "dumb" // cursor movement works
	return &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr, Env: os.Getenv, Dir: dir, ColorErr: color,
		ErrTerminal: term, ErrWidth: terminalWidth(os.Stderr)}
}

// deploymentRoot is the batou deployment root that --root names (the
// working directory when flag is ""): as a path, and as the user wrote it,
// for messages.
func (io *IOStreams) deploymentRoot(flag string) (root, display string) {
	display = flag
	if display == "" {
		display = "."
	}
	root = display
	if !filepath.IsAbs(root) {
		root = filepath.Join(io.Dir, root)
	}
	return root, display
}
