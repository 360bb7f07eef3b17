package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/registry"
)

// listSandbox is a host configuration with a registry in a temp directory.
type listSandbox struct {
	dir, config string
	reg         *registry.Registry
	now         time.Time
}

func newListSandbox(t *testing.T, extraConfig string) *listSandbox {
	t.Helper()
	dir := t.TempDir()
	config := filepath.Join(dir, "devhost.hcl")
	require.NoError(t, os.WriteFile(config, []byte("public_address = \"dev.example.com\"\nstate_dir = \"state\"\n"+extraConfig), 0o644))
	return &listSandbox{dir: dir, config: config, reg: registry.Open(filepath.Join(dir, "state")), now: time.Now().UTC()}
}

func (s *listSandbox) put(t *testing.T, name, addr string, edit func(c *registry.Container)) {
	t.Helper()
	c := &registry.Container{
		Name: name, Owner: "alice", Environment: "dev",
		Channel: "https://hydra.flyingcircus.io/build/116563/download/1/nixexprs.tar.xz",
		Address: netip.MustParseAddr(addr), State: registry.Running,
		Created: s.now.Add(-73 * time.Hour), Deployed: s.now.Add(-125 * time.Minute),
	}
	if edit != nil {
		edit(c)
	}
	require.NoError(t, s.reg.Put(c))
}

// listMain runs devhost with args and an environment, returning exit
// status, stdout and stderr.
func listMain(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	io := &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut, Dir: t.TempDir(),
		Env: func(k string) string { return env[k] }}
	code := Main(append([]string{"devhost"}, args...), io)
	return code, out.String(), errOut.String()
}

func TestListTable(t *testing.T) {
	s := newListSandbox(t, "")
	s.put(t, "web", "10.233.0.2", func(c *registry.Container) {
		c.Aliases = []string{"shop", "admin"}
		c.SharedWith = []string{"jane", "dave"}
	})
	s.put(t, "old", "10.233.0.3", func(c *registry.Container) {
		c.Owner, c.Environment, c.State, c.Keep = "bob", "", registry.Stopped, true
		c.Created = s.now.Add(-40 * 24 * time.Hour)
		c.Deployed = time.Time{}
	})
	code, out, errOut := listMain(t, nil, "--config", s.config, "list")
	require.Equal(t, 0, code, errOut)
	assert.Empty(t, errOut)
	assert.Equal(t, []string{
		"NAME\tOWNER\tENVIRONMENT\tSTATE\tAGE\tDEPLOYED\tKEEP\tSHARED\tURLS",
		"old\tbob\t-\tstopped\t40d\tnever\tkeep\t-\thttps://old.dev.example.com/",
		"web\talice\tdev\trunning\t3d\t2h ago\t-\tjane,dave\thttps://web.dev.example.com/ https://shop.web.dev.example.com/ https://admin.web.dev.example.com/",
	}, strings.Split(strings.TrimSuffix(out, "\n"), "\n"))
}

func TestListWithoutAliasProxy(t *testing.T) {
	s := newListSandbox(t, "alias_proxy = false\n")
	s.put(t, "web", "10.233.0.2", func(c *registry.Container) { c.Aliases = []string{"shop"} })
	code, out, errOut := listMain(t, nil, "--config", s.config, "list")
	require.Equal(t, 0, code, errOut)
	assert.True(t, strings.HasSuffix(out, "\thttps://web.dev.example.com/\n"), out)
}

func TestListJSON(t *testing.T) {
	s := newListSandbox(t, "")
	s.put(t, "web", "10.233.0.2", func(c *registry.Container) {
		c.Aliases = []string{"shop"}
		c.Labels = map[string]string{"team": "shop"}
		c.SharedWith = []string{"jane"}
	})
	s.put(t, "new", "10.233.0.3", func(c *registry.Container) { c.Deployed = time.Time{} })
	code, out, errOut := listMain(t, nil, "--config", s.config, "list", "--json")
	require.Equal(t, 0, code, errOut)
	var got []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	require.Len(t, got, 2)
	keys := func(m map[string]any) []string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		return ks
	}
	stable := []string{"name", "owner", "environment", "root", "state", "address", "channel", "aliases",
		"created", "deployed", "age_seconds", "keep", "shared_with", "urls", "labels", "last_error"}
	assert.ElementsMatch(t, stable, keys(got[0]))
	assert.ElementsMatch(t, stable, keys(got[1]))
	assert.Equal(t, "new", got[0]["name"])
	assert.Nil(t, got[0]["deployed"], "never deployed")
	assert.Equal(t, []any{}, got[0]["aliases"])
	assert.Equal(t, []any{}, got[0]["shared_with"])
	assert.Equal(t, []any{"jane"}, got[1]["shared_with"])
	web := got[1]
	assert.Equal(t, "10.233.0.2", web["address"])
	assert.Equal(t, []any{"https://web.dev.example.com/", "https://shop.web.dev.example.com/"}, web["urls"])
	assert.Equal(t, s.now.Add(-125*time.Minute).Truncate(time.Second).Format(time.RFC3339), web["deployed"])
	assert.InDelta(t, float64(73*3600), web["age_seconds"], 120)
	assert.Equal(t, map[string]any{"team": "shop"}, web["labels"])
}

func TestListEmpty(t *testing.T) {
	s := newListSandbox(t, "")
	code, out, _ := listMain(t, nil, "--config", s.config, "list", "--json")
	require.Equal(t, 0, code)
	assert.Equal(t, "[]\n", out)
	code, out, _ = listMain(t, nil, "--config", s.config, "list")
	require.Equal(t, 0, code)
	assert.Equal(t, "NAME\tOWNER\tENVIRONMENT\tSTATE\tAGE\tDEPLOYED\tKEEP\tSHARED\tURLS\n", out)
}

func TestListInvalidEntry(t *testing.T) {
	s := newListSandbox(t, "")
	s.put(t, "web", "10.233.0.2", nil)
	path := s.reg.Path("web")
	src, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, bytes.Replace(src, []byte(`"running"`), []byte(`"sleeping"`), 1), 0o644))
	require.NoError(t, os.WriteFile(s.reg.Path("db"), []byte("name = \"db\"\nowner = \"bob\"\naliases = [\"x\",\n"), 0o644))

	code, out, errOut := listMain(t, nil, "--config", s.config, "list")
	assert.Equal(t, ExitInput, code)
	assert.Empty(t, out)
	line := 1 + bytes.Count(src[:bytes.Index(src, []byte(`"running"`))], []byte("\n"))
	assert.Contains(t, errOut, fmt.Sprintf("%s:%d:16: error: Invalid state", path, line))
	assert.Contains(t, errOut, `state        = "sleeping"`, "snippet")
	assert.Contains(t, errOut, s.reg.Path("db")+":4:1: error: Missing expression", "every bad entry is reported")
}

func TestListConfigResolution(t *testing.T) {
	s := newListSandbox(t, "")
	s.put(t, "web", "10.233.0.2", nil)
	// DEVHOST_CONFIG when there is no --config.
	code, out, errOut := listMain(t, map[string]string{"DEVHOST_CONFIG": s.config}, "list")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "web\talice")
	// --config wins over DEVHOST_CONFIG.
	other := newListSandbox(t, "")
	code, out, errOut = listMain(t, map[string]string{"DEVHOST_CONFIG": s.config}, "list", "--config", other.config)
	require.Equal(t, 0, code, errOut)
	assert.NotContains(t, out, "web")
	// A missing file is the user's to fix, and the message says how.
	code, _, errOut = listMain(t, map[string]string{"DEVHOST_CONFIG": filepath.Join(s.dir, "nope.hcl")}, "list")
	assert.Equal(t, ExitInput, code)
	assert.Contains(t, errOut, "nope.hcl does not exist")
	assert.Contains(t, errOut, "--config")
}

// TestListRelativeConfig: a relative --config is relative to the working
// directory, and the paths inside it to the file's own directory.
func TestListRelativeConfig(t *testing.T) {
	s := newListSandbox(t, "")
	s.put(t, "web", "10.233.0.2", nil)
	var out, errOut bytes.Buffer
	io := &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut, Dir: filepath.Dir(s.dir),
		Env: func(string) string { return "" }}
	code := Main([]string{"devhost", "--config", filepath.Join(filepath.Base(s.dir), "devhost.hcl"), "list"}, io)
	require.Equal(t, 0, code, errOut.String())
	assert.Contains(t, out.String(), "web\talice")
}

func TestListBadConfig(t *testing.T) {
	s := newListSandbox(t, "cleanup {\n  at = \"3 am\"\n}\n")
	code, _, errOut := listMain(t, nil, "--config", s.config, "list")
	assert.Equal(t, ExitInput, code)
	assert.Contains(t, errOut, s.config+":4:8: error: Invalid cleanup.at")
}

func TestListExample(t *testing.T) {
	abs, err := filepath.Abs("../../examples/devhost.hcl")
	require.NoError(t, err)
	code, out, errOut := listMain(t, nil, "--config", abs, "list", "--json")
	require.Equal(t, 0, code, errOut)
	var got []struct {
		Name string   `json:"name"`
		Keep bool     `json:"keep"`
		URLs []string `json:"urls"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	require.Len(t, got, 4)
	assert.Equal(t, "demo", got[1].Name)
	assert.True(t, got[1].Keep)
	assert.Len(t, got[3].URLs, 4, "web has three aliases")
}

func TestListHelpHasExample(t *testing.T) {
	code, out, _ := listMain(t, nil, "list", "--help")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "Examples:")
	assert.Contains(t, out, "--json")
	assert.Contains(t, out, "--config")
}

func TestSpan(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second: "0s", 59 * time.Second: "59s", 90 * time.Second: "1m", 47 * time.Hour: "47h",
		48 * time.Hour: "2d", 400 * 24 * time.Hour: "400d",
	} {
		assert.Equal(t, want, span(d), d)
	}
	assert.Equal(t, "just now", ago(30*time.Second))
	assert.Equal(t, "5m ago", ago(5*time.Minute))
}
