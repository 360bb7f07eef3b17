package cli

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readmeCommands are the `go run ./cmd/devhost …` lines of README.md's
// shell blocks, as argument lists (comments dropped, "$(mktemp -d)"
// replaced by tmp).
func readmeCommands(t *testing.T, tmp string) [][]string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	var cmds [][]string
	inSh := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "```sh"):
			inSh = true
		case strings.HasPrefix(l, "```"):
			inSh = false
		case inSh && strings.HasPrefix(l, "go run ./cmd/devhost "):
			l, _, _ = strings.Cut(l, "#")
			l, _, _ = strings.Cut(l, "|") // the command, not what reads its output
			l = strings.ReplaceAll(l, `"$(mktemp -d)"`, tmp)
			require.NotContains(t, l, `"`, "quoting this test does not handle: %s", l)
			cmds = append(cmds, strings.Fields(strings.TrimPrefix(l, "go run ./cmd/devhost ")))
		}
	}
	return cmds
}

// TestReadmeCommandsTouchNoFile: the README's commands, run on a fresh
// copy of examples/, change no file there (the registry above all: a
// render without --out once deleted all four example entries).
func TestReadmeCommandsTouchNoFile(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.CopyFS(filepath.Join(root, "examples"), os.DirFS("../../examples")))
	before := snapshot(t, root)
	cmds := readmeCommands(t, filepath.Join(t.TempDir(), "out"))
	require.GreaterOrEqual(t, len(cmds), 4, "README's commands were not found")
	for _, args := range cmds {
		var out, errOut bytes.Buffer
		io := &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut, Dir: root,
			Env: func(string) string { return "" }}
		code := Main(append([]string{"devhost"}, args...), io)
		if args[0] == "render" {
			assert.Equal(t, 0, code, "%v: %s", args, errOut.String())
		}
		assert.Equal(t, before, snapshot(t, root), "devhost %v changed files", args)
	}
}
