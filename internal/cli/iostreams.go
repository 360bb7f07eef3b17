package cli

import (
	"io"
	"os"
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
}

// SystemIO returns the process' streams and environment.
func SystemIO() *IOStreams {
	dir, _ := os.Getwd()
	color := false
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("NO_COLOR") == "" {
		color = true
	}
	return &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr, Env: os.Getenv, Dir: dir, ColorErr: color}
}
