package templates

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/nixlit"
)

const secret = `sh"op${x}`

func sample() *Container {
	h := &Host{
		PublicAddress: V("dev.example.com"), HostAddress: V("10.233.0.1"),
		GeneratedDir: V("/g"), WWWRoot: V("/g/www"), ACME: true,
		SelfSignedCert: V("/s/cert.pem"), SelfSignedKey: V("/s/key.pem"),
		CleanupAt: V("03:00"), ProxyConfig: Vs([]string{"proxy_ssl_verify off;"}),
		ProvisionDir: V("/p"),
	}
	return &Container{
		Host: h, Name: V(secret), FQDN: V("shop.dev.example.com"), ProxyPass: V("https://shop"),
		Owner: V("alice"), LocalAddress: V("10.233.0.2"), ProfilePath: V("/profiles/shop/system"),
		ProvisionPath: V("/p/shop.nix"), HostFile: V("containers/shop.nix"), State: V("running"),
		Created: V("2026-01-01T00:00:00Z"), CertNames: Vs([]string{"shop"}),
		URLs: Vs([]string{"https://shop.dev.example.com/"}),
	}
}

func override(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	return dir
}

func TestEmbeddedTemplatesExecute(t *testing.T) {
	s, err := Load("")
	require.NoError(t, err)
	c := sample()
	idx := &Index{Host: c.Host, Containers: []*Container{c}}
	status := &Status{PublicAddress: c.Host.PublicAddress, Containers: []StatusContainer{{Name: c.Name, State: c.State, URLs: c.URLs}}}
	for name, data := range map[string]any{
		DefaultNix: idx, IndexHTML: status, ContainerNix: c, ConfigurationNix: c, VhostNix: c,
	} {
		out, err := s.Execute(name, data)
		require.NoError(t, err, name)
		assert.NotContains(t, string(out), secret, "%s pastes a value unescaped", name)
		assert.Equal(t, "embedded", s.Sources[name])
	}
	out, err := s.Execute(IndexHTML, status)
	require.NoError(t, err)
	assert.Contains(t, string(out), "sh&#34;op${x}", "HTML-escaped")
	out, err = s.Execute(ContainerNix, c)
	require.NoError(t, err)
	assert.Contains(t, string(out), `"sh\"op\${x}"`, "Nix-escaped")
}

// TestUnescapedValueFails is the poisoned-template test: every way a
// template could write a Value without an escaper either fails or writes
// something that is not the value.
func TestUnescapedValueFails(t *testing.T) {
	failing := map[string]string{
		"bare field":        `{{ .Name }}`,
		"bare range item":   `{{ range .URLs }}{{ . }}{{ end }}`,
		"call":              `{{ call .Name }}`,
		"sprig upper":       `{{ .Name | upper }}`,
		"comparison":        `{{ if eq .Name "x" }}{{ end }}`,
		"bare via variable": `{{ $n := .Host.PublicAddress }}{{ $n }}`,
	}
	for what, body := range failing {
		t.Run(what, func(t *testing.T) {
			s, err := Load(override(t, map[string]string{ContainerNix: body}))
			require.NoError(t, err)
			_, err = s.Execute(ContainerNix, sample())
			require.Error(t, err)
			assert.Contains(t, err.Error(), filepath.Join("", ContainerNix))
		})
	}
	s, err := Load(override(t, map[string]string{ContainerNix: `{{ .Name }}`}))
	require.NoError(t, err)
	_, err = s.Execute(ContainerNix, sample())
	require.ErrorContains(t, err, "escaping function")

	harmless := map[string]string{
		"printf":   `{{ printf "%s %v" .Name .Name }}`,
		"print":    `{{ print .Name }}`,
		"quote":    `{{ .Name | quote }}`,
		"toString": `{{ .Name | toString }}`,
		"toJson":   `{{ .Name | toJson }}`,
		"builtin":  `{{ js .Name }}{{ urlquery .Name }}`,
	}
	for what, body := range harmless {
		t.Run(what, func(t *testing.T) {
			s, err := Load(override(t, map[string]string{ContainerNix: body}))
			require.NoError(t, err)
			out, err := s.Execute(ContainerNix, sample())
			if err == nil {
				assert.NotContains(t, string(out), "sh")
			}
		})
	}
}

func TestOverride(t *testing.T) {
	dir := override(t, map[string]string{IndexHTML: `custom {{ html .PublicAddress }}`})
	s, err := Load(dir)
	require.NoError(t, err)
	c := sample()
	out, err := s.Execute(IndexHTML, &Status{PublicAddress: c.Host.PublicAddress})
	require.NoError(t, err)
	assert.Equal(t, "custom dev.example.com", string(out))
	assert.Equal(t, filepath.Join(dir, IndexHTML), s.Sources[IndexHTML])
	// The others stay embedded.
	out, err = s.Execute(ContainerNix, c)
	require.NoError(t, err)
	assert.Contains(t, string(out), "containers.")

	// A vhost override is used by the container template that includes it.
	s, err = Load(override(t, map[string]string{VhostNix: `{ overridden = true; }`}))
	require.NoError(t, err)
	out, err = s.Execute(ContainerNix, c)
	require.NoError(t, err)
	assert.Contains(t, string(out), `= { overridden = true; };`)
}

func TestOverrideErrors(t *testing.T) {
	_, err := Load(override(t, map[string]string{"contianer.nix.tmpl": "x"}))
	require.ErrorContains(t, err, "unknown template")
	require.ErrorContains(t, err, ContainerNix)

	_, err = Load(override(t, map[string]string{ConfigurationNix: "{{ if }}"}))
	require.ErrorContains(t, err, ConfigurationNix)

	_, err = Load(override(t, map[string]string{DefaultNix: "{{ nixStrr .Host.PublicAddress }}"}))
	require.ErrorContains(t, err, "nixStrr")

	// A missing override directory is no override.
	_, err = Load(filepath.Join(t.TempDir(), "absent"))
	require.NoError(t, err)
}

func TestEscapersRejectNUL(t *testing.T) {
	s, err := Load("")
	require.NoError(t, err)
	c := sample()
	c.Owner = V("a\x00b")
	_, err = s.Execute(ContainerNix, c)
	require.ErrorContains(t, err, "NUL")
}

func TestValue(t *testing.T) {
	assert.True(t, V("").Empty())
	assert.True(t, Value(nil).Empty())
	assert.False(t, V("x").Empty())
	assert.Equal(t, "x", Unwrap(V("x")))
	assert.Nil(t, Vs(nil))
	assert.Equal(t, []string{"a", "b"}, []string{Unwrap(Vs([]string{"a", "b"})[0]), Unwrap(Vs([]string{"a", "b"})[1])})
	assert.True(t, strings.HasSuffix(Names()[0], ".tmpl"))
}

func TestNixList(t *testing.T) {
	got, err := nixList(4, Vs([]string{"a", `"${`}))
	require.NoError(t, err)
	assert.Equal(t, "[\n    \"a\"\n    \"\\\"\\${\"\n  ]", got)
	got, err = nixList(4, nil)
	require.NoError(t, err)
	assert.Equal(t, "[ ]", got)
	_, err = nixList(0, Vs([]string{"a"}))
	require.Error(t, err)
	_, err = nixList(4, Vs([]string{"\x00"}))
	require.ErrorIs(t, err, nixlit.ErrNUL)
}

// TestStatusOverrideCannotReachPrivateData: the status page's data has no
// owner, environment, root, labels or last error, so an admin's override
// that asks for one fails instead of publishing it.
func TestStatusOverrideCannotReachPrivateData(t *testing.T) {
	c := sample()
	status := &Status{PublicAddress: c.Host.PublicAddress, Containers: []StatusContainer{{Name: c.Name, State: c.State, URLs: c.URLs}}}
	for _, field := range []string{"Owner", "Environment", "Root", "Labels", "LastError", "Host"} {
		t.Run(field, func(t *testing.T) {
			s, err := Load(override(t, map[string]string{IndexHTML: `{{ range .Containers }}{{ html .` + field + ` }}{{ end }}`}))
			require.NoError(t, err)
			_, err = s.Execute(IndexHTML, status)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "can't evaluate field "+field)
		})
	}
}
