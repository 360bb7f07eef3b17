package cli

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/lifecycle"
)

func TestCompatArgs(t *testing.T) {
	tests := []struct {
		in, want []string
	}{
		{[]string{"devhost", "ensure", "x"}, []string{"devhost", "ensure", "x"}},
		{[]string{"fc-build-dev-container", "ensure", "x", "c", "a b"}, []string{"fc-build-dev-container", CompatName, "ensure", "x", "c", "a b"}},
		{[]string{"/run/current-system/sw/bin/fc-build-dev-container", "destroy", "x"}, []string{"/run/current-system/sw/bin/fc-build-dev-container", CompatName, "destroy", "x"}},
		{[]string{"/usr/bin/devhost"}, []string{"/usr/bin/devhost"}},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, compatArgs(tt.in))
	}
}

func TestParseNow(t *testing.T) {
	clock := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	got, err := parseNow("", clock)
	require.NoError(t, err)
	assert.Equal(t, clock(), got)
	got, err = parseNow("2026-12-24", clock)
	require.NoError(t, err)
	assert.Equal(t, time.Date(2026, 12, 24, 0, 0, 0, 0, time.UTC), got)
	got, err = parseNow("2026-12-24T03:00:00+01:00", clock)
	require.NoError(t, err)
	assert.Equal(t, time.Date(2026, 12, 24, 2, 0, 0, 0, time.UTC), got)
	_, err = parseNow("next week", clock)
	var ie *InputError
	assert.ErrorAs(t, err, &ie)
}

func TestLifecycleErrorExitCodes(t *testing.T) {
	tests := []struct {
		err  error
		code int
	}{
		{&lifecycle.DeniedError{User: "bob", What: "destroy", Why: "not yours"}, ExitInput},
		{fmt.Errorf("wrapped: %w", &lifecycle.NotFoundError{Name: "x"}), ExitInput},
		{&lifecycle.ForeignError{Name: "x", Path: "/p"}, ExitInput},
		{&lifecycle.BuildError{Name: "x", Err: errors.New("nix")}, ExitInput},
		{&lifecycle.NameError{Err: errors.New("bad name")}, ExitInput},
		{&lifecycle.RebuildError{Failure: lifecycle.Failure{Error: "boom"}}, ExitFail},
		{errors.New("disk full"), ExitFail},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.code, exitCode(lifecycleError(tt.err)), tt.err.Error())
	}
}

// The lifecycle commands all document themselves with examples, and the
// compatibility CLI answers to its name as argv[0].
func TestLifecycleCommandsHelp(t *testing.T) {
	for _, args := range [][]string{
		{"devhost", "ensure", "--help"}, {"devhost", "destroy", "--help"}, {"devhost", "cleanup", "--help"},
		{"devhost", "keep", "--help"}, {"devhost", "protect", "--help"}, {"devhost", "status", "--help"}, {"devhost", "import-legacy", "--help"},
		{"fc-build-dev-container", "--help"}, {"fc-build-dev-container", "ensure", "--help"},
	} {
		var out, errb bytes.Buffer
		io := &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errb, Env: func(string) string { return "" }, Dir: t.TempDir()}
		require.Equal(t, 0, Main(args, io), "%v: %s", args, errb.String())
		assert.Contains(t, out.String(), "Examples:", "%v", args)
	}
	var out, errb bytes.Buffer
	io := &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errb, Env: func(string) string { return "" }, Dir: t.TempDir()}
	assert.Equal(t, ExitInput, Main([]string{"fc-build-dev-container", "rebuild", "x"}, io))
	assert.Contains(t, errb.String(), `unknown action "rebuild"`)
}
