package cli

import (
	"errors"
	"fmt"

	"github.com/flyingcircusio/devhost/internal/diag"
)

// Exit codes of every devhost command.
const (
	ExitOK    = 0 // success
	ExitInput = 1 // the input (arguments, files, environment) is wrong
	ExitFail  = 2 // devhost itself or a command it ran failed
)

// InputError marks an error as the user's to fix: the command exits with 1.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// inputErrorf returns an *InputError with a formatted message.
func inputErrorf(format string, args ...any) error {
	return &InputError{Err: fmt.Errorf(format, args...)}
}

// silentError carries an exit code for a command that already reported its
// problem on its own (e.g. `debug cfg` printing {"error": …}).
type silentError struct{ code int }

func (e *silentError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// exitCode maps an error returned by a command to the process exit status,
// in this one place.
func exitCode(err error) int {
	var (
		ie *InputError
		de *diag.Error
		se *silentError
	)
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &se):
		return se.code
	case errors.As(err, &ie), errors.As(err, &de):
		return ExitInput
	default:
		return ExitFail
	}
}
