package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/generator"
	"github.com/flyingcircusio/devhost/internal/dirtree"
	"github.com/flyingcircusio/devhost/internal/hostconfig"
	"github.com/flyingcircusio/devhost/internal/lifecycle"
	"github.com/flyingcircusio/devhost/internal/registry"
	"github.com/flyingcircusio/devhost/internal/runner"
	"github.com/flyingcircusio/devhost/templates"
)

// renderSandbox is a host configuration with a registry in a temp directory.
type renderSandbox struct {
	dir, config string
	reg         *registry.Registry
}

func newRenderSandbox(t *testing.T, extraConfig string) *renderSandbox {
	t.Helper()
	dir := t.TempDir()
	config := filepath.Join(dir, "devhost.hcl")
	require.NoError(t, os.WriteFile(config, []byte("public_address = \"dev.example.com\"\nstate_dir = \"state\"\n"+extraConfig), 0o644))
	return &renderSandbox{dir: dir, config: config, reg: registry.Open(filepath.Join(dir, "state"))}
}

func (s *renderSandbox) put(t *testing.T, name, addr string, edit func(c *registry.Container)) {
	t.Helper()
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	c := &registry.Container{
		Name: name, Owner: "alice", Environment: "dev",
		Channel: "https://hydra.flyingcircus.io/build/116563/download/1/nixexprs.tar.xz",
		Address: netip.MustParseAddr(addr), State: registry.Running, Created: now, Deployed: now.Add(time.Hour),
	}
	if edit != nil {
		edit(c)
	}
	require.NoError(t, s.reg.Put(c))
}

// renderMain runs devhost with args, returning exit status, stdout, stderr.
func renderMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	io := &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut, Dir: t.TempDir(),
		Env: func(string) string { return "" }}
	code := Main(append([]string{"devhost"}, args...), io)
	return code, out.String(), errOut.String()
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m, err := dirtree.Files(dir)
	require.NoError(t, err)
	return m
}

// TestRenderExample is the README's first command on the bundled example.
func TestRenderExample(t *testing.T) {
	out := filepath.Join(t.TempDir(), "set")
	config, err := filepath.Abs("../../examples/devhost.hcl")
	require.NoError(t, err)
	code, stdout, stderr := renderMain(t, "render", "--config", config, "--out", out, "--show")
	require.Equal(t, 0, code, stderr)
	reg := registry.Open(filepath.Join(filepath.Dir(config), "state"))
	cs, err := reg.LoadAll()
	require.NoError(t, err)
	require.NotEmpty(t, cs)

	files := snapshot(t, out)
	assert.Contains(t, files, "default.nix")
	assert.Contains(t, files, "www/index.html")
	for _, c := range cs {
		assert.Contains(t, files, "containers/"+c.Name+".nix")
		assert.Contains(t, files, c.Name+"/configuration.nix")
		assert.Contains(t, stdout, "── "+c.Name+".nix\n")
	}
	assert.True(t, strings.HasPrefix(stdout, out+"\n├── containers/\n"), stdout)
	// One generated file follows the tree, byte for byte.
	_, shown, ok := strings.Cut(stdout, "\n==> ")
	require.True(t, ok, stdout)
	header, body, _ := strings.Cut(shown, " <==\n")
	rel, err := filepath.Rel(out, header)
	require.NoError(t, err)
	assert.Equal(t, files[filepath.ToSlash(rel)], body)
	for _, c := range cs {
		if len(c.Aliases) > 0 {
			assert.Contains(t, body, "serverAliases = [ \"", "the shown file is one with aliases")
			break
		}
	}
}

func TestRenderOutJSON(t *testing.T) {
	s := newRenderSandbox(t, "generated_dir = \"gen\"\n")
	s.put(t, "web", "10.233.0.2", func(c *registry.Container) { c.Aliases = []string{"shop"} })
	out := filepath.Join(s.dir, "preview")
	code, stdout, stderr := renderMain(t, "--config", s.config, "render", "--out", out, "--json")
	require.Equal(t, 0, code, stderr)
	var res renderResult
	require.NoError(t, json.Unmarshal([]byte(stdout), &res))
	assert.Equal(t, out, res.Dir)
	assert.Equal(t, 1, res.Containers)
	assert.Len(t, res.Digest, 64)
	assert.Contains(t, res.Files, "containers/web.nix")
	assert.FileExists(t, filepath.Join(out, "web", "configuration.nix"))
	assert.NoDirExists(t, filepath.Join(s.dir, "gen"), "a preview never touches the live set")

	code, stdout, _ = renderMain(t, "--config", s.config, "render", "--out", out)
	require.Equal(t, 0, code)
	assert.Equal(t, out+": 1 container(s), 4 files, digest "+res.Digest[:12]+"\n", stdout)
}

// recordingRunner is a test double for the commands the lifecycle runs
// (here only the host rebuild): it records every argv and succeeds.
type recordingRunner struct {
	mu    sync.Mutex
	calls [][]string
}

func (r *recordingRunner) Run(_ context.Context, c runner.Cmd) (runner.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, append([]string(nil), c.Argv...))
	return runner.Result{}, nil
}

func (r *recordingRunner) rebuilds(argv0 string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.calls {
		if c[0] == argv0 {
			n++
		}
	}
	return n
}

// applySandbox drives applyRun (devhost apply, and render without --out)
// with the lifecycle of a render sandbox and a recording runner.
func (s *renderSandbox) apply(t *testing.T, run *recordingRunner, caller lifecycle.Caller, jsonOut bool) (string, error) {
	t.Helper()
	cfg, err := hostconfig.Load(s.config)
	require.NoError(t, err)
	tmpl, err := templates.Load("")
	require.NoError(t, err)
	var out bytes.Buffer
	opts := &applyOptions{
		IO:       &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out},
		Registry: func() (*registry.Registry, error) { return s.reg, nil },
		Lifecycle: func() (*lifecycle.Host, error) {
			return lifecycle.New(cfg, s.reg, run, &lifecycle.Renderer{Cfg: cfg, Templates: tmpl}), nil
		},
		Caller: func() (lifecycle.Caller, error) { return caller, nil },
		JSON:   jsonOut,
	}
	err = applyRun(opts)
	return out.String(), err
}

// TestApply: the live set is written only through the lifecycle, which
// runs the rebuild command when the host's declarations changed and
// records the result; a second apply finds nothing to do; a hand-edit is
// applied; a non-admin is refused before anything is written.
func TestApply(t *testing.T) {
	s := newRenderSandbox(t, "generated_dir = \"gen\"\ncommands {\n  rebuild = [\"rebuild-double\", \"switch\"]\n}\n")
	s.put(t, "web", "10.233.0.2", nil)
	gen := filepath.Join(s.dir, "gen")
	run := &recordingRunner{}

	_, err := s.apply(t, run, lifecycle.Caller{User: "dave", Groups: []string{"users"}}, false)
	var ie *InputError
	require.ErrorAs(t, err, &ie)
	assert.ErrorIs(t, err, lifecycle.ErrDenied)
	assert.Equal(t, ExitInput, exitCode(err))
	assert.NoDirExists(t, gen, "refused: nothing written")
	assert.Zero(t, run.rebuilds("rebuild-double"))

	admin := lifecycle.Caller{User: "carol", Groups: []string{"wheel"}}
	stdout, err := s.apply(t, run, admin, true)
	require.NoError(t, err)
	var res applyResult
	require.NoError(t, json.Unmarshal([]byte(stdout), &res), stdout)
	assert.True(t, res.Rebuilt)
	assert.True(t, res.Wrote)
	assert.Equal(t, gen, res.Dir)
	assert.Equal(t, 1, res.Containers)
	assert.Contains(t, res.Files, "containers/web.nix")
	assert.Equal(t, [][]string{{"rebuild-double", "switch"}}, run.calls)
	live, err := lifecycle.ReadSet(gen)
	require.NoError(t, err)
	assert.Equal(t, live.Digest(), res.Digest)

	stdout, err = s.apply(t, run, admin, false)
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("%s: generation %d is already applied; no rebuild needed\n", gen, res.Generation), stdout)
	assert.Equal(t, 1, run.rebuilds("rebuild-double"))

	// An admin adds an alias by hand.
	s.put(t, "web", "10.233.0.2", func(c *registry.Container) { c.Aliases = []string{"shop"} })
	stdout, err = s.apply(t, run, lifecycle.Caller{User: "root", Root: true}, false)
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("%s: generation %d applied, host rebuilt (1 container(s))\n", gen, res.Generation+1), stdout)
	assert.Equal(t, 2, run.rebuilds("rebuild-double"))
	live, err = lifecycle.ReadSet(gen)
	require.NoError(t, err)
	assert.Contains(t, string(live.Files["containers/web.nix"]), "shop.web.dev.example.com")
}

// TestRenderWithoutOutOnlyRenders is issue 10's finding: on a fresh
// clone, `devhost render --config examples/devhost.hcl` (no --out, no
// nixos-rebuild) applied the registry, and the failed rebuild deleted all
// four example entries. render only renders: without --out it prints every
// file of the set, exactly as --out writes it, and changes no file.
func TestRenderWithoutOutOnlyRenders(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, os.DirFS("../../examples")))
	before := snapshot(t, dir)
	require.NotEmpty(t, before)
	config := filepath.Join(dir, "devhost.hcl")

	code, stdout, stderr := renderMain(t, "render", "--config", config)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, before, snapshot(t, dir), "render changed files (registry, lifecycle state or live set)")

	out := filepath.Join(t.TempDir(), "set")
	code, _, stderr = renderMain(t, "render", "--config", config, "--out", out)
	require.Equal(t, 0, code, stderr)
	files := snapshot(t, out)
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	var want strings.Builder
	for _, p := range paths {
		want.WriteString("==> " + p + " <==\n" + files[p])
		if !strings.HasSuffix(files[p], "\n") {
			want.WriteString("\n")
		}
	}
	assert.Equal(t, want.String(), stdout, "stdout is the set --out writes")

	// --show and --json work without --out as well, and write nothing.
	code, stdout, stderr = renderMain(t, "render", "--config", config, "--show")
	require.Equal(t, 0, code, stderr)
	assert.True(t, strings.HasPrefix(stdout, "(generated set, not written; --out DIR writes it)\n├── containers/\n"), stdout)
	assert.Contains(t, stdout, "\n==> containers/")
	code, stdout, stderr = renderMain(t, "render", "--config", config, "--json")
	require.Equal(t, 0, code, stderr)
	var res renderResult
	require.NoError(t, json.Unmarshal([]byte(stdout), &res), stdout)
	assert.Empty(t, res.Dir)
	assert.Equal(t, paths, res.Files)
	assert.Equal(t, 4, res.Containers)
	assert.Equal(t, before, snapshot(t, dir))
}

// TestRenderNeedsNoAdmin: render is a preview anyone may run; it never
// reaches the lifecycle (no admin check, no live set, no rebuild).
func TestRenderNeedsNoAdmin(t *testing.T) {
	s := newRenderSandbox(t, "generated_dir = \"gen\"\naccess {\n  admin_group = \"nosuchgroup\"\n}\ncommands {\n  rebuild = [\"/nonexistent/rebuild\"]\n}\n")
	s.put(t, "web", "10.233.0.2", nil)
	before := snapshot(t, s.dir)
	code, stdout, stderr := renderMain(t, "--config", s.config, "render")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "==> containers/web.nix <==\n")
	assert.Equal(t, before, snapshot(t, s.dir))
}

// TestRenderInvalidEntryKeepsPreviousSet: a broken registry entry is
// reported with its position, exit status 1, and the set on disk stays
// exactly as it was.
func TestRenderInvalidEntryKeepsPreviousSet(t *testing.T) {
	s := newRenderSandbox(t, "")
	s.put(t, "web", "10.233.0.2", nil)
	s.put(t, "db", "10.233.0.3", nil)
	out := filepath.Join(s.dir, "out")
	code, _, stderr := renderMain(t, "--config", s.config, "render", "--out", out)
	require.Equal(t, 0, code, stderr)
	before := snapshot(t, out)

	path := s.reg.Path("db")
	src, err := os.ReadFile(path)
	require.NoError(t, err)
	broken := strings.Replace(string(src), `state        = "running"`, `state        = 42`, 1)
	require.NotEqual(t, string(src), broken, "fixture changed: %s", src)
	require.NoError(t, os.WriteFile(path, []byte(broken), 0o644))

	code, stdout, stderr := renderMain(t, "--config", s.config, "render", "--out", out)
	assert.Equal(t, 1, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, path+":")
	assert.Contains(t, stderr, "nothing was changed")
	assert.Equal(t, before, snapshot(t, out), "the previous set is untouched")
	assert.NoDirExists(t, out+generator.OldSuffix, "no swap happened")
}

// TestRenderOutRefusesForeignDirectory: --out naming a directory that is
// not a generated set (here a project checkout) is the user's mistake
// (exit 1) and the directory stays as it was.
func TestRenderOutRefusesForeignDirectory(t *testing.T) {
	s := newRenderSandbox(t, "")
	s.put(t, "web", "10.233.0.2", nil)
	project := filepath.Join(s.dir, "project")
	require.NoError(t, os.MkdirAll(project, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(project, "batou"), []byte("#!/bin/sh\n"), 0o755))
	code, stdout, stderr := renderMain(t, "--config", s.config, "render", "--out", project)
	assert.Equal(t, ExitInput, code, stderr)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "not a generated set")
	assert.Equal(t, map[string]string{"batou": "#!/bin/sh\n"}, snapshot(t, project))
	assert.NoDirExists(t, project+generator.OldSuffix)
}

func TestRenderBadTemplateOverride(t *testing.T) {
	s := newRenderSandbox(t, "template_dir = \"tmpl\"\n")
	s.put(t, "web", "10.233.0.2", nil)
	require.NoError(t, os.MkdirAll(filepath.Join(s.dir, "tmpl"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(s.dir, "tmpl", "vhost.nix.tmpl"), []byte(`{ root = "{{ .Name }}"; }`), 0o644))
	out := filepath.Join(s.dir, "out")
	code, _, stderr := renderMain(t, "--config", s.config, "render", "--out", out)
	assert.Equal(t, 1, code, stderr)
	assert.Contains(t, stderr, "vhost.nix.tmpl")
	assert.Contains(t, stderr, "escaping function")
	assert.NoDirExists(t, out)

	require.NoError(t, os.WriteFile(filepath.Join(s.dir, "tmpl", "vhost.tmpl"), []byte(`x`), 0o644))
	code, _, stderr = renderMain(t, "--config", s.config, "render", "--out", out)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "unknown template")
}

func TestTree(t *testing.T) {
	assert.Equal(t, "├── a/\n│   ├── b/\n│   │   └── c\n│   └── d\n├── e\n└── f/\n    └── g\n",
		tree([]string{"a/b/c", "a/d", "e", "f/g"}))
	assert.Empty(t, tree(nil))
}

func TestRenderAndApplyHelp(t *testing.T) {
	for _, verb := range []string{"render", "apply"} {
		code, stdout, stderr := renderMain(t, verb, "--help")
		require.Equal(t, 0, code, stderr)
		assert.Contains(t, stdout, "Examples:\n  ", verb)
		assert.Contains(t, stdout, "sudo devhost apply", verb)
	}
	_, stdout, _ := renderMain(t, "render", "--help")
	assert.NotContains(t, stdout, "sudo devhost render", "render is a preview, never run as root")
}
