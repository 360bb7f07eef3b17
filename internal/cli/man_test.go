package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestManWritesOnePagePerVisibleCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "man1")
	var out, errOut bytes.Buffer
	env := map[string]string{"SOURCE_DATE_EPOCH": "86400"}
	io := &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut, Env: func(k string) string { return env[k] }, Dir: t.TempDir()}
	code := Main([]string{"devhost", "man", dir}, io)
	require.Equal(t, 0, code, errOut.String())

	var want []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		want = append(want, strings.ReplaceAll(c.CommandPath(), " ", "-")+".1")
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				walk(sub)
			}
		}
	}
	walk(NewRootCmd(io))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	assert.ElementsMatch(t, want, got)
	assert.NotContains(t, got, "devhost-man.1", "hidden commands get no page")

	page, err := os.ReadFile(filepath.Join(dir, "devhost-version.1"))
	require.NoError(t, err)
	assert.Contains(t, string(page), `.TH "DEVHOST" "1" "Jan 1970" "devhost" "devhost manual"`)
	assert.Contains(t, string(page), "Print devhost's version")
}

func TestManRejectsBadSourceDateEpoch(t *testing.T) {
	var out, errOut bytes.Buffer
	io := &IOStreams{Out: &out, ErrOut: &errOut, Env: func(k string) string {
		if k == "SOURCE_DATE_EPOCH" {
			return "yesterday"
		}
		return ""
	}, Dir: t.TempDir()}
	assert.Equal(t, 1, Main([]string{"devhost", "man", "out"}, io))
	assert.Contains(t, errOut.String(), "SOURCE_DATE_EPOCH")
}

func TestVersion(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "devhost 20260101-abc1234\n"},
		{[]string{"--json"}, "{\"version\":\"20260101-abc1234\"}\n"},
	} {
		var out bytes.Buffer
		opts := &versionOptions{IO: &IOStreams{Out: &out}, Version: "20260101-abc1234", JSON: len(tt.args) > 0}
		require.NoError(t, versionRun(opts))
		assert.Equal(t, tt.want, out.String())
	}
}
