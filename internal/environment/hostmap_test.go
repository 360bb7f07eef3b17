package environment

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadHostMap(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hostmap.json")

	m, src, diags := ReadHostMap(path, "hostmap.json")
	require.Empty(t, diags)
	assert.Nil(t, src)
	assert.False(t, m.Exists)
	assert.Empty(t, m.Entries())

	// Python's json.load: a repeated key keeps its first position and
	// takes its last value.
	require.NoError(t, os.WriteFile(path, []byte("{\n  \"web\": \"abc\",\n  \"db\" : \"def\", \"web\": \"xyz\"\n}\n"), 0o644))
	m, src, diags = ReadHostMap(path, "hostmap.json")
	require.Empty(t, diags)
	assert.NotNil(t, src)
	assert.True(t, m.Exists)
	e := m.Entries()
	require.Len(t, e, 2)
	assert.Equal(t, "web", e[0].Key)
	assert.Equal(t, "xyz", e[0].Value)
	assert.Equal(t, 3, e[0].ValueRange.Start.Line)
	assert.Equal(t, 24, e[0].ValueRange.Start.Column)
	assert.Equal(t, 2, e[0].KeyRange.Start.Line)
	assert.Equal(t, 3, e[0].KeyRange.Start.Column)
	assert.Equal(t, "def", e[1].Value)
	assert.Equal(t, 3, e[1].ValueRange.Start.Line)
	assert.Equal(t, 10, e[1].ValueRange.Start.Column)
	assert.Equal(t, `"def"`, string(src[e[1].ValueRange.Start.Byte:e[1].ValueRange.End.Byte]))
}

func TestReadHostMapErrors(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{`[]`, "hostmap.json:1:1 error: hostmap.json is not a JSON object of names: it must be an object"},
		{`{"web": 1}`, `hostmap.json:1:9 error: hostmap.json is not a JSON object of names: the real name of "web" must be a string`},
		{"{\"web\": \"a\",\n \"db\": }", "hostmap.json:2:8 error: hostmap.json is not a JSON object of names"},
		{`{"web": "a"`, "hostmap.json:1:12 error: hostmap.json is not a JSON object of names: it ends too early"},
		{`{"web": "a"} {}`, "hostmap.json:1:14 error: hostmap.json is not a JSON object of names: extra data"},
		{"", "hostmap.json:1:1 error: hostmap.json is not a JSON object of names: it ends too early"},
	} {
		t.Run(c.src, func(t *testing.T) {
			m := &HostMap{Name: "hostmap.json"}
			got := diagStrings(m.parse([]byte(c.src)))
			require.Len(t, got, 1)
			assert.Contains(t, got[0], c.want)
		})
	}
}

// pyDumps runs batou's json.dump over each case's pairs, in order, in one
// CPython process.
func pyDumps(t *testing.T, cases [][][2]string) []string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not on PATH: skipping the byte comparison with batou's json.dump")
	}
	in, err := json.Marshal(cases)
	require.NoError(t, err)
	const script = `
import io, json, sys
out = []
for pairs in json.load(sys.stdin):
    f = io.StringIO()
    json.dump(dict(pairs), f)
    out.append(f.getvalue())
json.dump(out, sys.stdout)
`
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	require.NoError(t, err)
	var dumps []string
	require.NoError(t, json.Unmarshal(out, &dumps))
	return dumps
}

var marshalCases = [][][2]string{
	{{"web", "c0ffee12345"}},
	{{"web", "c0ffee12345"}, {"db", "db"}, {"legacy", "legacy"}},
	{{"quote\"back\\slash", "tab\tnl\nctl\x01del\x7f"}, {"umlaut ü", "emoji 😀"}, {"\u2028", "/"}},
}

func TestMarshalLikeBatou(t *testing.T) {
	want := []string{
		`{"web": "c0ffee12345"}`,
		`{"web": "c0ffee12345", "db": "db", "legacy": "legacy"}`,
		`{"quote\"back\\slash": "tab\tnl\nctl\u0001del\u007f", "umlaut \u00fc": "emoji \ud83d\ude00", "\u2028": "/"}`,
	}
	for i, pairs := range marshalCases {
		m := &HostMap{}
		for _, p := range pairs {
			m.Set(p[0], p[1])
		}
		assert.Equal(t, want[i], string(m.Marshal()))
	}
}

func TestMarshalAgainstPython(t *testing.T) {
	t.Parallel()
	want := pyDumps(t, marshalCases)
	for i, pairs := range marshalCases {
		m := &HostMap{}
		for _, p := range pairs {
			m.Set(p[0], p[1])
		}
		assert.Equal(t, want[i], string(m.Marshal()))
	}
}

func TestSaveWritesOrRemoves(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "environments", "dev", "hostmap.json")
	m := &HostMap{Path: path, Name: "hostmap.json"}
	m.Set("db", "db")
	require.NoError(t, m.Save())
	_, err := os.Stat(path)
	assert.True(t, os.IsNotExist(err), "no name differs: no file")

	m.Set("web", "c0ffee12345")
	require.NoError(t, m.Save())
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, `{"db": "db", "web": "c0ffee12345"}`, string(got))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
	m.Set("web", "web")
	require.NoError(t, m.Save())
	_, err = os.Stat(path)
	assert.True(t, os.IsNotExist(err), "the file is removed when every name is its own")
	ents, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	assert.Empty(t, ents, "no temporary files left behind")

	assert.Error(t, (&HostMap{}).Save(), "a map without path cannot be saved")
}

// TestAssignNames follows batou's Host.name: static hosts map to their own
// name (a stale entry is replaced in place), dynamic hosts keep their entry
// or get a new one appended, entries of unknown hosts stay.
func TestAssignNames(t *testing.T) {
	cfg := provDefault + `[hosts]
plain = a
[host:web]
components = a
provision-dynamic-hostname = True
[host:db]
components = a
provision-dynamic-hostname = True
`
	env, diags := build(t, cfg, `{"old": "f00", "plain": "stale", "db": "abc"}`)
	require.Empty(t, diagStrings(diags)[1:], "only the stale-entry warning")
	var asked []string
	err := env.AssignNames(func(h *Host) (string, error) {
		asked = append(asked, h.Name)
		return "c0ffee12345", nil
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"web"}, asked)
	assert.Equal(t, `{"old": "f00", "plain": "plain", "db": "abc", "web": "c0ffee12345"}`, string(env.HostMap.Marshal()))
	assert.Equal(t, "c0ffee12345", env.Host("web").RealName)

	env, _ = build(t, cfg, "")
	err = env.AssignNames(func(h *Host) (string, error) { return "NOT VALID", nil })
	assert.ErrorContains(t, err, "host web: suggested name")
}

func TestSuggestName(t *testing.T) {
	// The first 6 random bytes give only digits ("012345678901"[:11]),
	// which is no valid container name; the next ones are taken, then free.
	random := bytes.NewReader(append(append(
		[]byte{0x01, 0x23, 0x45, 0x67, 0x89, 0x01},
		0xab, 0xcd, 0xef, 0x01, 0x23, 0x45),
		0xde, 0xad, 0xbe, 0xef, 0x00, 0x11))
	name, err := SuggestName(random, func(s string) bool { return s == "abcdef01234" })
	require.NoError(t, err)
	assert.Equal(t, "deadbeef001", name)

	name, err = SuggestName(nil, nil)
	require.NoError(t, err)
	assert.Len(t, name, 11)
	assert.Equal(t, strings.ToLower(name), name)

	_, err = SuggestName(bytes.NewReader(nil), nil)
	assert.Error(t, err)
}
