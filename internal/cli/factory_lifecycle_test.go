package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/hostconfig"
	"github.com/flyingcircusio/devhost/templates"
)

// TestSudoTemplateDirMustBeRoots: root running devhost for a sudo user
// refuses a template_dir that user could change (here one owned by nobody
// under /tmp, which everybody may write); root on its own loads it. hostconfig.TestCheckRootOnly covers the rule's cases.
func TestSudoTemplateDirMustBeRoots(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: the rule applies only when root runs devhost for a sudo user")
	}
	dir := filepath.Join(t.TempDir(), "templates")
	require.NoError(t, os.Mkdir(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, templates.IndexHTML), []byte("mine"), 0o644))
	require.NoError(t, os.Chown(dir, 65534, 65534))
	cfg := &hostconfig.Config{TemplateDir: dir}

	sudo := func(k string) string { return map[string]string{"SUDO_USER": "nobody"}[k] }
	_, err := loadTemplates(cfg, sudo)
	var ie *InputError
	require.ErrorAs(t, err, &ie)
	assert.Contains(t, err.Error(), "template_dir: /tmp is writable by its group or others") // the first step a user can change
	assert.Contains(t, err.Error(), "only root can change")

	s, err := loadTemplates(cfg, func(string) string { return "" })
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, templates.IndexHTML), s.Sources[templates.IndexHTML])
}
