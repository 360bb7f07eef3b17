package hostconfig

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/diag"
	"github.com/flyingcircusio/devhost/internal/inputfile"
)

// TestDeepConfigIsRefused: 200,000 nested brackets (which overflow the
// stack of HCL's parsers, killing every devhost command that loads the
// configuration) are refused with the file and position, in both
// syntaxes.
func TestDeepConfigIsRefused(t *testing.T) {
	deep := strings.Repeat("[", 200_000) + strings.Repeat("]", 200_000)
	for _, tc := range []struct{ file, src string }{
		{"devhost.hcl", "public_address = \"h.example\"\naccess {\n  groups = " + deep + "\n}\n"},
		{"devhost.json", "{\"public_address\": \"h.example\",\n\"access\": {\"groups\": " + deep + "}}\n"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tc.file)
			require.NoError(t, os.WriteFile(path, []byte(tc.src), 0o644))
			_, err := Load(path)
			var de *diag.Error
			require.ErrorAs(t, err, &de)
			d := de.Diags[0]
			assert.Equal(t, "Nesting too deep", d.Summary)
			require.NotNil(t, d.Subject)
			assert.Equal(t, path, d.Subject.Filename)
			line := strings.Count(tc.src[:strings.Index(tc.src, "[")], "\n") + 1
			assert.Equal(t, line, d.Subject.Start.Line)
			assert.Contains(t, err.Error(), path)
		})
	}
}

func TestOversizedOrSpecialConfigIsRefused(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.hcl")
	require.NoError(t, os.WriteFile(big, []byte("public_address = \"h.example\"\n# "+strings.Repeat("x", MaxSize)+"\n"), 0o644))
	_, err := Load(big)
	assert.True(t, errors.As(err, new(*inputfile.TooLargeError)), "%v", err)

	fifo := filepath.Join(dir, "devhost.hcl")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	done := make(chan error, 1)
	go func() { _, err := Load(fifo); done <- err }()
	select {
	case err := <-done:
		assert.True(t, errors.As(err, new(*inputfile.NotRegularError)), "%v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("Load waited on a FIFO")
	}
}
