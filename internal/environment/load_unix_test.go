//go:build unix

package environment

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// loadGuarded runs Load and fails the test instead of hanging when Load
// blocks (as it did reading a named pipe).
func loadGuarded(t *testing.T, root string) (*Environment, hcl.Diagnostics) {
	t.Helper()
	type result struct {
		env   *Environment
		diags hcl.Diagnostics
	}
	done := make(chan result, 1)
	go func() {
		env, diags := Load(context.Background(), root, "dev", Options{DisplayRoot: ".", NoScriptChecks: true})
		done <- result{env, diags}
	}()
	select {
	case r := <-done:
		return r.env, r.diags
	case <-time.After(10 * time.Second):
		t.Fatal("Load still blocks after 10 s")
		return nil, nil
	}
}

func firstError(t *testing.T, diags hcl.Diagnostics) *hcl.Diagnostic {
	t.Helper()
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			return d
		}
	}
	t.Fatalf("no error in %v", diagStrings(diags))
	return nil
}

// TestLoadRefusesSpecialFiles: a named pipe in place of any file of the
// environment, or a directory, is reported by name instead of waited on;
// a hostmap.json over its limit is reported with the limit.
func TestLoadRefusesSpecialFiles(t *testing.T) {
	for _, name := range []string{"environment.cfg", HostMapFile, "provision.nix", "provision.sh"} {
		t.Run("named pipe "+name, func(t *testing.T) {
			files := map[string]string{"environment.cfg": oneContainer}
			delete(files, name)
			root := project(t, files)
			dir := filepath.Join(root, "environments", "dev")
			require.NoError(t, os.MkdirAll(dir, 0o755))
			require.NoError(t, syscall.Mkfifo(filepath.Join(dir, name), 0o644))
			_, diags := loadGuarded(t, root)
			require.True(t, diags.HasErrors(), "%v", diagStrings(diags))
			d := firstError(t, diags)
			assert.Equal(t, "cannot read environments/dev/"+name, d.Summary)
			assert.Contains(t, d.Detail, name+" is a named pipe (FIFO), not a regular file")
		})
	}
	t.Run("directory hostmap.json", func(t *testing.T) {
		root := project(t, map[string]string{"environment.cfg": oneContainer, HostMapFile + "/x": ""})
		_, diags := loadGuarded(t, root)
		require.True(t, diags.HasErrors())
		assert.Contains(t, firstError(t, diags).Detail, "hostmap.json is a directory")
	})
	t.Run("hostmap.json too large", func(t *testing.T) {
		big := `{"web": "` + strings.Repeat("x", MaxHostMap) + `"}`
		root := project(t, map[string]string{"environment.cfg": oneContainer, HostMapFile: big})
		_, diags := loadGuarded(t, root)
		require.True(t, diags.HasErrors())
		d := firstError(t, diags)
		assert.Equal(t, "cannot read environments/dev/hostmap.json", d.Summary)
		assert.Contains(t, d.Detail, "hostmap.json is larger than 1 MiB")
	})
	t.Run("environment.cfg at its limit is read", func(t *testing.T) {
		cfg := oneContainer + "# " + strings.Repeat("x", MaxConfig-len(oneContainer)-3) + "\n"
		require.Len(t, cfg, MaxConfig)
		root := project(t, map[string]string{"environment.cfg": cfg})
		_, diags := loadGuarded(t, root)
		assert.False(t, diags.HasErrors(), "%v", diagStrings(diags))
		require.NoError(t, os.WriteFile(filepath.Join(root, "environments", "dev", "environment.cfg"), []byte(cfg+"\n"), 0o644))
		_, diags = loadGuarded(t, root)
		require.True(t, diags.HasErrors())
		assert.Contains(t, firstError(t, diags).Detail, "environment.cfg is larger than 8 MiB")
	})
}
