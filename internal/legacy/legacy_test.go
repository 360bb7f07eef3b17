package legacy

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

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

// enc.json lies in the container's root, which the container's root
// controls; import-legacy reads it as the host's root.
func TestChannelStaysInsideTheContainer(t *testing.T) {
	const enc = `{"parameters": {"environment_url": "https://hydra.example.org/c.tar.xz"}}`
	tests := []struct {
		name  string
		setup func(t *testing.T, p, outside string)
		ok    bool
	}{
		{"regular", func(t *testing.T, p, _ string) { require.NoError(t, os.WriteFile(p, []byte(enc), 0o644)) }, true},
		{"absolute link out", func(t *testing.T, p, outside string) { require.NoError(t, os.Symlink(outside, p)) }, false},
		{"relative link out", func(t *testing.T, p, outside string) {
			rel, err := filepath.Rel(filepath.Dir(p), outside)
			require.NoError(t, err)
			require.NoError(t, os.Symlink(rel, p))
		}, false},
		{"fifo", func(t *testing.T, p, _ string) { require.NoError(t, syscall.Mkfifo(p, 0o644)) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			outside := filepath.Join(t.TempDir(), "host-enc.json")
			require.NoError(t, os.WriteFile(outside, []byte(`{"parameters": {"environment_url": "https://host.example.org/secret"}}`), 0o600))
			p := filepath.Join(dir, "web", "etc", "nixos", "enc.json")
			require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
			tt.setup(t, p, outside)
			done := make(chan bool, 1)
			go func() {
				_, ok := Channel(dir, "web")
				done <- ok
			}()
			select {
			case ok := <-done:
				assert.Equal(t, tt.ok, ok)
			case <-time.After(5 * time.Second):
				if w, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					_ = w.Close()
				}
				t.Fatal("Channel blocked")
			}
		})
	}
}
