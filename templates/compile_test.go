package templates

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostile are fragments the generated values are made of: everything that
// means something to Nix, HTML, a shell or text/template, and the empty
// string (Empty, nixList's "[ ]").
var hostile = []string{
	"", "shop", `"`, `\`, "${x}", "''", "'''", "''${", "\n", "\r", "\t", "<script>", "&amp;", `"><a`,
	"/abs/path", "./rel", "../up", "a b", "{{ .Name }}", "ünï", "\u2028", "$", "#", ";", "10.0.0.1", "::1",
}

// hostileString joins up to four random fragments.
func hostileString(r *rand.Rand) string {
	var b strings.Builder
	for range r.IntN(5) {
		b.WriteString(hostile[r.IntN(len(hostile))])
	}
	return b.String()
}

func hostileValue(r *rand.Rand) Value {
	if r.IntN(20) == 0 {
		return nil // a Value nobody set
	}
	return V(hostileString(r))
}

func hostileValues(r *rand.Rand) []Value {
	n := r.IntN(4)
	if n == 0 {
		return nil
	}
	vs := make([]Value, n)
	for i := range vs {
		vs[i] = hostileValue(r)
	}
	return vs
}

func hostileHost(r *rand.Rand) *Host {
	return &Host{
		PublicAddress: hostileValue(r), HostAddress: hostileValue(r), HostAddress6: hostileValue(r), GeneratedDir: hostileValue(r),
		WWWRoot: hostileValue(r), ACME: r.IntN(2) == 0, DNS01: r.IntN(2) == 0, MainCert: hostileValue(r),
		SelfSignedCert: hostileValue(r),
		SelfSignedKey:  hostileValue(r), AliasProxy: r.IntN(2) == 0, Cleanup: r.IntN(2) == 0,
		CleanupAt: hostileValue(r), ProxyConfig: hostileValues(r), BootstrapKey: r.IntN(2) == 0,
		ProvisionDir: hostileValue(r),
	}
}

// hostileContainers are n containers with every value drawn from hostile,
// sharing a few hosts.
func hostileContainers(r *rand.Rand, n int) []*Container {
	hosts := []*Host{hostileHost(r), hostileHost(r), hostileHost(r)}
	cs := make([]*Container, n)
	for i := range cs {
		c := &Container{
			Host: hosts[r.IntN(len(hosts))], Name: hostileValue(r), FQDN: hostileValue(r),
			Aliases: hostileValues(r), AliasFQDNs: hostileValues(r), CertNames: hostileValues(r),
			URLs: hostileValues(r), ProxyPass: hostileValue(r), Owner: hostileValue(r),
			Environment: hostileValue(r), Root: hostileValue(r), ServiceUser: hostileValue(r),
			ServiceHome: hostileValue(r), Channel: hostileValue(r), StateVersion: hostileValue(r),
			LocalAddress: hostileValue(r), LocalAddress6: hostileValue(r), ProfilePath: hostileValue(r), ProvisionPath: hostileValue(r),
			HostFile: hostileValue(r), AutoStart: r.IntN(2) == 0, State: hostileValue(r),
			Created: hostileValue(r), Deployed: hostileValue(r), Keep: r.IntN(2) == 0,
			SSHKeys: hostileValues(r), LastError: hostileValue(r), Unit: hostileValue(r),
			BasicAuthFile: hostileValue(r), Protected: r.IntN(2) == 0,
		}
		if r.IntN(2) == 0 {
			c.Limits = &Limits{MemoryMax: hostileValue(r), CPUWeight: r.IntN(3) * 50, CPUQuota: hostileValue(r), TasksMax: r.IntN(3) * 1000}
		}
		for range r.IntN(3) {
			c.Labels = append(c.Labels, Label{Key: hostileValue(r), Value: hostileValue(r)})
		}
		cs[i] = c
	}
	return cs
}

// execBoth runs name with data through s (compiled where it can) and
// through s.Reference() (text/template alone) and requires the same bytes,
// or the same error. With direct, the compiled executor itself must give
// text/template's output, without falling back (which would hide its
// mistakes behind text/template's result).
func execBoth(t *testing.T, s *Set, name string, data any, direct bool) (failed bool) {
	t.Helper()
	got, gotErr := s.Execute(name, data)
	want, wantErr := s.Reference().Execute(name, data)
	if wantErr != nil {
		require.Error(t, gotErr, "%s: text/template fails, the compiled executor does not", name)
		require.Equal(t, wantErr.Error(), gotErr.Error(), name)
		return true
	}
	require.NoError(t, gotErr, name)
	if !bytes.Equal(want, got) {
		require.Equal(t, string(want), string(got), "%s: output differs from text/template's", name)
	}
	if direct {
		var b bytes.Buffer
		require.NoError(t, s.compiled[name].run(&b, s.compiled, data), "%s: the compiled executor fell back", name)
		if !bytes.Equal(want, b.Bytes()) {
			require.Equal(t, string(want), b.String(), "%s: compiled output differs from text/template's", name)
		}
	}
	return false
}

// TestCompiledMatchesTextTemplate renders 1,000 containers of hostile
// values, the index of all of them and the status page, with both
// executors: the output (or the error, for values an escaper refuses) is
// the same byte for byte.
func TestCompiledMatchesTextTemplate(t *testing.T) {
	s, err := Load("")
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(11, 1000))
	cs := hostileContainers(r, 1000)
	fails := map[string]int{}
	for _, c := range cs {
		for _, name := range []string{ContainerNix, ConfigurationNix, VhostNix} {
			if execBoth(t, s, name, c, true) {
				fails[name]++
			}
		}
	}
	// The index and the status page, over valid and hostile containers.
	valid := sample()
	for _, list := range [][]*Container{nil, {valid}, cs[:50], cs} {
		for _, host := range []*Host{valid.Host, cs[0].Host} {
			execBoth(t, s, DefaultNix, &Index{Host: host, Containers: list}, true)
		}
		st := &Status{PublicAddress: hostileValue(r)}
		for _, c := range list {
			st.Containers = append(st.Containers, StatusContainer{Name: c.Name, State: c.State, URLs: c.URLs, Protected: c.Protected})
		}
		execBoth(t, s, IndexHTML, st, true)
	}
	// Both kinds of outcome were compared: hostile values make the
	// escapers refuse some containers, and others render.
	for _, name := range []string{ContainerNix, ConfigurationNix, VhostNix} {
		assert.Positive(t, fails[name], "%s: no container was refused; the error path was not compared", name)
		assert.Less(t, fails[name], len(cs), "%s: every container was refused; no output was compared", name)
	}
	// Every embedded template runs compiled (else the speed is gone).
	for _, name := range Names() {
		assert.NotNil(t, s.compiled[name], "%s is not compiled", name)
	}
}

// TestCompiledFallsBack: templates (admin overrides) outside the compiled
// subset, and data the compiled executor does not handle, give exactly
// text/template's output or error.
func TestCompiledFallsBack(t *testing.T) {
	for name, tc := range map[string]struct {
		body     string
		compiled bool
		data     any
	}{
		"sprig pipeline":        {body: `{{ "x" | upper }} {{ nixStr .Name }}`, data: sample()},
		"with":                  {body: `{{ with .Host }}{{ nixStr .PublicAddress }}{{ end }}{{ with .Limits }}x{{ else }}{{ nixStr $.Name }}{{ end }}`, compiled: true, data: sample()},
		"with declaration":      {body: `{{ with $h := .Host }}{{ nixStr $h.PublicAddress }}{{ end }}`, data: sample()},
		"variable declaration":  {body: `{{ $n := .Name }}{{ nixStr $n }}`, data: sample()},
		"range else, break":     {body: `{{ range .URLs }}{{ break }}{{ else }}none{{ end }}`, data: sample()},
		"value printed":         {body: `{{ .Name }}`, compiled: true, data: sample()},
		"value through printf":  {body: `{{ printf "%v" .Name }}`, data: sample()},
		"missing field":         {body: `{{ nixStr .Nope }}`, compiled: true, data: sample()},
		"nil host":              {body: `{{ nixStr .Host.PublicAddress }}`, compiled: true, data: &Container{}},
		"wrong argument type":   {body: `{{ nixStr .CertNames }}`, compiled: true, data: sample()},
		"escaper refuses":       {body: `{{ nixPath .Name }}`, compiled: true, data: sample()},
		"method call with args": {body: `{{ .Name.Empty 1 }}`, data: sample()},
		"len and not":           {body: `{{ len .URLs }} {{ not .Keep }} {{ if not .Root.Empty }}r{{ end }}`, compiled: true, data: sample()},
		"data of another type":  {body: `{{ if .Keep }}k{{ end }}{{ nixStr .Name }}`, compiled: true, data: map[string]any{"Keep": true, "Name": V("x")}},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := Load(override(t, map[string]string{ConfigurationNix: tc.body}))
			require.NoError(t, err)
			assert.Equal(t, tc.compiled, s.compiled[ConfigurationNix] != nil, "compiled")
			execBoth(t, s, ConfigurationNix, tc.data, false)
		})
	}
}

// BenchmarkExecute renders one container's host file and system
// configuration with each executor.
func BenchmarkExecute(b *testing.B) {
	s, err := Load("")
	require.NoError(b, err)
	c := sample()
	c.AliasFQDNs = Vs([]string{"www.shop.dev.example.com", "admin.shop.dev.example.com"})
	c.SSHKeys = Vs([]string{"ssh-ed25519 AAAA alice@laptop"})
	for name, set := range map[string]*Set{"compiled": s, "text-template": s.Reference()} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var buf bytes.Buffer
			for b.Loop() {
				buf.Reset()
				for _, tmpl := range []string{ContainerNix, ConfigurationNix} {
					if err := set.ExecuteTo(&buf, tmpl, c); err != nil {
						b.Fatal(fmt.Errorf("%s: %w", tmpl, err))
					}
				}
			}
		})
	}
}
