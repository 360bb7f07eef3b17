package legacy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRead(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	write := func(dir, name, content string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
	write(a, "web.json", `{"name": "web", "ip": "10.233.4.2", "aliases": ["www", "", "www", "admin"], "enabled": true}`)
	write(a, "off.json", `{"name": "off", "ip": "10.233.5.2", "aliases": [""], "enabled": false}`)
	write(a, "noname.json", `{"ip": "10.233.6.2"}`)
	write(a, "badalias.json", `{"name": "badalias", "aliases": ["ok", "Not_OK"]}`)
	write(a, "README", `not a record`)
	write(b, "web.json", `{"name": "web", "ip": "10.233.9.2"}`) // /etc/devserver: the first wins
	write(b, "syntax.json", "{\"name\": \"syntax\",\n  \"aliases\": [\"a\" \"b\"]}")
	write(b, "types.json", `{"name": "types", "enabled": "yes"}`)
	write(b, "Bad.json", `{"name": "Bad_Name"}`)

	recs, diags, files := Read([]string{a, b, filepath.Join(a, "missing")})
	var names []string
	for _, r := range recs {
		names = append(names, r.Name)
	}
	assert.Equal(t, []string{"badalias", "noname", "off", "web"}, names)
	byName := map[string]Record{}
	for _, r := range recs {
		byName[r.Name] = r
	}
	assert.Equal(t, []string{"www", "admin"}, byName["web"].Aliases)
	assert.Equal(t, "10.233.4.2", byName["web"].IP.String())
	assert.True(t, byName["web"].Enabled)
	assert.False(t, byName["off"].Enabled)
	assert.Empty(t, byName["off"].Aliases)
	assert.Equal(t, "10.233.6.2", byName["noname"].IP.String(), "a record without name is named after its file")
	assert.Equal(t, []string{"ok"}, byName["badalias"].Aliases)
	assert.False(t, byName["web"].ModTime.IsZero())

	var errs, warns []string
	for _, d := range diags {
		line := d.Summary
		if d.Subject != nil {
			line = filepath.Base(d.Subject.Filename) + ":" + d.Summary
			assert.Contains(t, files, d.Subject.Filename, "snippet source for %s", d.Subject.Filename)
		}
		if d.Severity == 1 {
			errs = append(errs, line)
		} else {
			warns = append(warns, line)
		}
	}
	assert.ElementsMatch(t, []string{"syntax.json:Invalid JSON", "types.json:Invalid record", "Bad.json:Invalid container name"}, errs)
	assert.ElementsMatch(t, []string{"Alias dropped", `Container "web" recorded twice`}, warns)
	for _, d := range diags {
		if d.Subject != nil && filepath.Base(d.Subject.Filename) == "syntax.json" {
			assert.Equal(t, 2, d.Subject.Start.Line)
		}
	}
}

func TestChannel(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "web", "etc", "nixos", "enc.json")
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(`{"parameters": {"environment_url": "https://hydra.example.org/c.tar.xz", "environment": "container"}}`), 0o644))
	ch, ok := Channel(dir, "web")
	assert.True(t, ok)
	assert.Equal(t, "https://hydra.example.org/c.tar.xz", ch)
	_, ok = Channel(dir, "other")
	assert.False(t, ok)
}
