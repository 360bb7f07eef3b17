package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDebugCfg(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
	}
	write("ok.cfg", "[DEFAULT]\nshared = 1\n[hosts]\nweb = nginx, app\n[host:web]\ncomponents =\n    nginx\n    app\nshared = 2\n[b]\nx = \"<&>\" \u2028 end\n")
	write("dup.cfg", "[s]\na = 1\n\n[s]\n")
	write("bad.cfg", "[s]\na = 1\nno delimiter here\n")
	write("cr.cfg", "[s]\ra = 1\rbad line\r")

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantOut    string
		wantErrOut []string
	}{
		{
			name:     "merged and sorted, escaped like Python's json.dumps",
			args:     []string{"debug", "cfg", "ok.cfg"},
			wantCode: ExitOK,
			wantOut: `{"sections": {"b": {"shared": "1", "x": "\"<&>\" ` + "\u2028" + ` end"}, ` +
				`"host:web": {"components": "\nnginx\napp", "shared": "2"}, "hosts": {"shared": "1", "web": "nginx, app"}}}` + "\n",
		},
		{
			name:       "duplicate section",
			args:       []string{"debug", "cfg", "dup.cfg"},
			wantCode:   ExitInput,
			wantOut:    `{"error": "DuplicateSectionError"}` + "\n",
			wantErrOut: []string{"dup.cfg:4:1: error: Section [s] appears twice", "already started on line 1", "   4: [s]"},
		},
		{
			name:       "unparsable line",
			args:       []string{"debug", "cfg", "--json", "bad.cfg"},
			wantCode:   ExitInput,
			wantOut:    `{"error": "ParsingError"}` + "\n",
			wantErrOut: []string{"bad.cfg:3:1: error: Line is not an option", "   3: no delimiter here", "1 error(s)"},
		},
		{
			name:       "lone CR ends a line, also in the snippet",
			args:       []string{"debug", "cfg", "cr.cfg"},
			wantCode:   ExitInput,
			wantOut:    `{"error": "ParsingError"}` + "\n",
			wantErrOut: []string{"cr.cfg:3:1: error:", "   3: bad line"},
		},
		{
			name:       "missing file",
			args:       []string{"debug", "cfg", "nope.cfg"},
			wantCode:   ExitInput,
			wantOut:    `{"error": "FileNotFoundError"}` + "\n",
			wantErrOut: []string{"cannot read nope.cfg"},
		},
		{
			name:       "a directory",
			args:       []string{"debug", "cfg", "."},
			wantCode:   ExitInput,
			wantOut:    `{"error": "IsADirectoryError"}` + "\n",
			wantErrOut: []string{"cannot read ."},
		},
		{
			name:       "unknown debug subcommand",
			args:       []string{"debug", "nope"},
			wantCode:   ExitInput,
			wantErrOut: []string{`unknown command "nope" for "devhost debug"`},
		},
		{
			name:       "no argument",
			args:       []string{"debug", "cfg"},
			wantCode:   ExitInput,
			wantErrOut: []string{"accepts 1 arg(s), received 0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			io := &IOStreams{In: &bytes.Buffer{}, Out: &out, ErrOut: &errOut, Env: func(string) string { return "" }, Dir: dir}
			code := Main(append([]string{"devhost"}, tt.args...), io)
			assert.Equal(t, tt.wantCode, code, "stderr: %s", errOut.String())
			assert.Equal(t, tt.wantOut, out.String())
			for _, s := range tt.wantErrOut {
				assert.Contains(t, errOut.String(), s)
			}
		})
	}
}

func TestDebugCfgHelpHasExample(t *testing.T) {
	var out bytes.Buffer
	io := &IOStreams{In: &bytes.Buffer{}, Out: &out, ErrOut: &out, Env: func(string) string { return "" }, Dir: t.TempDir()}
	require.Equal(t, ExitOK, Main([]string{"devhost", "debug", "cfg", "--help"}, io))
	assert.Contains(t, out.String(), "devhost debug cfg environments/dev/environment.cfg")
}
