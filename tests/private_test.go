package tests

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/tests/doubles/double"
)

// TestStatusShowsControlCharactersOfLastError: a failed build whose output
// holds terminal escapes (a title change, a screen clear, a carriage return
// that would overwrite the line) and a NUL ends up as the container's
// last_error; `devhost status` prints them in escape notation, never raw,
// and --json stays JSON that decodes to the recorded text.
func TestStatusShowsControlCharactersOfLastError(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, sandboxOpts{})
	s.ok("alice", "ensure", "shop", "--channel", channel)
	hostile := "error: \x1b]0;owned\x07\x1b[2Jbuild failed\rall good\x00!\u202e"
	s.setControl(map[string]double.Control{"nix-build": {Fail: true, Message: hostile}})
	r := s.runAs("alice", "ensure", "shop", "--channel", channel, "--alias", "www")
	require.NotEqual(t, 0, r.code, "%s", r.stderr)
	s.setControl(nil)

	r = s.ok("bob", "status", "shop")
	line := ""
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(l, "last error:") || strings.Contains(l, "build failed") {
			line += l + "\n"
		}
	}
	require.Contains(t, line, "build failed", "status prints the last error:\n%s", r.stdout)
	for _, raw := range []string{"\x1b", "\x07", "\r", "\x00", "\u202e"} {
		assert.NotContains(t, r.stdout, raw, "status prints %q raw", raw)
	}
	for _, shown := range []string{`\x1b]0;owned\a\x1b[2Jbuild failed\rall good`, `\u202e`} {
		assert.Contains(t, line, shown)
	}

	r = s.ok("bob", "status", "shop", "--json")
	var st struct {
		LastError string `json:"last_error"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st))
	assert.Contains(t, st.LastError, "\x1b]0;owned\x07\x1b[2Jbuild failed\rall good")
	assert.NotContains(t, r.stdout, "\x1b", "JSON escapes control characters")
}
