package generator

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Patching back a write that was killed before it created a new
// container's files removes files that are not there, in a directory that
// may not be there either (or is there, empty: the write died after
// creating it): the patch succeeds, and leaves the set as it was before.
func TestPatchRemovesWhatAWriteNeverCreated(t *testing.T) {
	for _, tt := range []struct {
		name     string
		emptyDir bool
	}{
		{"directory absent", false},
		{"directory created, file not", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "generated")
			require.NoError(t, Patch(dir, map[string][]byte{IndexFile: []byte("{ }\n"), "containers/old.nix": []byte("{ }\n")}))
			if tt.emptyDir {
				require.NoError(t, os.Mkdir(filepath.Join(dir, "new"), 0o755))
			}
			err := Patch(dir, map[string][]byte{"new/configuration.nix": nil, "containers/new.nix": nil})
			require.NoError(t, err)
			assert.NoDirExists(t, filepath.Join(dir, "new"))
			assert.FileExists(t, filepath.Join(dir, "containers", "old.nix"))
			assert.FileExists(t, filepath.Join(dir, IndexFile))
		})
	}
}
