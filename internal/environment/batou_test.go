package environment

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// batouPython returns the python3 to run batou with: DEVHOST_BATOU_PYTHON,
// else python3 from PATH (or skips the test).
func batouPython(t *testing.T) string {
	t.Helper()
	if py := os.Getenv("DEVHOST_BATOU_PYTHON"); py != "" {
		return py
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not on PATH: skipping the comparison with batou's own environment model")
	}
	return py
}

// batouCase is one environment handed to batou and to devhost.
type batouCase struct {
	Name    string  `json:"name"`
	Cfg     string  `json:"cfg"`
	Hostmap *string `json:"hostmap"`
	// devhostErrors: devhost rejects what batou accepts (container names,
	// aliases, channels devhost cannot use).
	devhostErrors bool
}

type batouHost struct {
	Name        string            `json:"name"`
	Real        string            `json:"real"`
	Ignore      bool              `json:"ignore"`
	Platform    *string           `json:"platform"`
	ServiceUser *string           `json:"service_user"`
	Provisioner *string           `json:"provisioner"`
	Remap       bool              `json:"remap"`
	Aliases     []string          `json:"aliases"`
	Data        map[string]string `json:"data"`
}

type batouComponent struct {
	Features []string `json:"features"`
	Ignore   bool     `json:"ignore"`
}

type batouResult struct {
	LoadError    *string                              `json:"load_error"`
	Exceptions   []string                             `json:"exceptions"`
	Hosts        []batouHost                          `json:"hosts"`
	Provisioners map[string]map[string]string         `json:"provisioners"`
	Settings     map[string]any                       `json:"settings"`
	Components   map[string]map[string]batouComponent `json:"components"`
	Hostmap      *string                              `json:"hostmap"`
}

// suggestLikeScript is the script's deterministic suggest_name.
func suggestLikeScript(h *Host) (string, error) {
	sum := md5.Sum([]byte(h.Name))
	return "s" + hex.EncodeToString(sum[:])[:10], nil
}

func strp(s string) *string { return &s }

// opt is Python's None for an unset setting.
func opt(s Setting) *string {
	if !s.Set && s.Value == "" {
		return nil
	}
	return strp(s.Value)
}

func batouCases(t *testing.T) []batouCase {
	t.Helper()
	var cases []batouCase
	for _, d := range fixtureDirsIn(t, "testdata/batou-environments") {
		src, err := os.ReadFile(filepath.Join(d, "environment.cfg"))
		require.NoError(t, err)
		cases = append(cases, batouCase{Name: filepath.Base(d), Cfg: string(src)})
	}
	for _, e := range []string{"dev", "review", "broken"} {
		src, err := os.ReadFile(filepath.Join(shop, "environments", e, "environment.cfg"))
		require.NoError(t, err)
		cases = append(cases, batouCase{Name: "shop-" + e, Cfg: string(src), devhostErrors: e == "broken"})
	}
	dyn := provDefault + "[host:web]\ncomponents = a\nprovision-dynamic-hostname = True\nprovision-aliases =\n\tshop\n    admin api\n" +
		"[host:db]\ncomponents = b\nprovision-dynamic-hostname = True\n" +
		"[hosts]\nplain = x, y:z, !y:w\n!off = q\n"
	cases = append(cases,
		batouCase{Name: "dyn-new", Cfg: dyn},
		batouCase{Name: "dyn-known", Cfg: dyn, Hostmap: strp(`{"db": "abcdef12345"}`)},
		batouCase{Name: "dyn-stale", Cfg: dyn, Hostmap: strp(`{"gone": "old", "plain": "stale", "web": "c0ffee12345"}`)},
		batouCase{Name: "all-static", Cfg: provDefault + "[hosts]\na = x\n", Hostmap: strp(`{"a": "b"}`)},
		// [DEFAULT]'s options become [hosts] entries, provisioned by
		// default: "service_user" is too long a container name.
		batouCase{Name: "defaults", devhostErrors: true, Cfg: "[DEFAULT]\ndata-team = web\nservice_user = s-x\n[environment]\nhost_domain = example.org\n" + provDefault +
			"[host:a]\ncomponents = x,y,\nprovisioner = none\nplatform = nixos\n[host:b]\ncomponents =\n  x\n\n  y:1\ndata-role = db\nignore = True\n[hosts]\nc = z\n"},
		batouCase{Name: "two-provisioners", Cfg: provDefault + "[provisioner:other]\nmethod = fc-nixos-dev-container\nhost = o.example.com\nchannel = file:///nix/c\n" +
			"[host:a]\ncomponents = x\nprovisioner = other\nprovision-aliases = w\n[host:b]\ncomponents = x\nprovisioner = none\n"},
		batouCase{Name: "missing-provisioner", Cfg: "[host:a]\ncomponents = x\nprovisioner = nope\n"},
		batouCase{Name: "duplicate-host", Cfg: "[hosts]\na = x\n[host:a]\ncomponents = y\n"},
		batouCase{Name: "unknown-section", Cfg: "[hosts]\na = x\n[stuff]\nk = v\n"},
		batouCase{Name: "empty-provisioner-and-bangs", Cfg: provDefault + "[host:a]\ncomponents = x\nprovisioner =\nprovision-dynamic-hostname = False\n[hosts]\n!!b = y\n"},
		batouCase{Name: "dyn-unprovisioned-mapped", Cfg: "[host:a]\ncomponents = x\nprovisioner = none\nprovision-dynamic-hostname = True\n", Hostmap: strp(`{"a": "zzz"}`)},
		batouCase{Name: "dyn-unprovisioned", Cfg: "[host:a]\ncomponents = x\nprovisioner = none\nprovision-dynamic-hostname = True\n"},
		batouCase{Name: "bad-timeout", Cfg: "[environment]\ntimeout = soon\n[hosts]\na = x\n"},
	)
	return cases
}

// TestAgainstBatou loads every case with batou itself (2.4, through
// testdata/batou_model.py) and with devhost, and requires the same hosts
// (name, real name, ignore, platform, service user, provisioner, dynamic
// flag, aliases, data), provisioners, settings, component lists and the
// same hostmap.json bytes after names were assigned; where batou fails or
// reports a problem, devhost must report one too.
func TestAgainstBatou(t *testing.T) {
	t.Parallel()
	py := batouPython(t)
	cases := batouCases(t)
	in, err := json.Marshal(cases)
	require.NoError(t, err)
	cmd := exec.Command(py, filepath.Join("testdata", "batou_model.py"))
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, stderr.String())
	var unavailable struct{ Unavailable string }
	if json.Unmarshal(out, &unavailable) == nil && unavailable.Unavailable != "" {
		t.Skipf("%s has no batou 2.4 (%s): skipping the comparison with batou's own environment model "+
			"(pip install batou==2.4.1, then set DEVHOST_BATOU_PYTHON to that python)", py, unavailable.Unavailable)
	}
	var results []batouResult
	require.NoError(t, json.Unmarshal(out, &results))
	require.Len(t, results, len(cases))

	for i, c := range cases {
		want := results[i]
		t.Run(c.Name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "environments", c.Name)
			require.NoError(t, os.MkdirAll(dir, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "environment.cfg"), []byte(c.Cfg), 0o644))
			if c.Hostmap != nil {
				require.NoError(t, os.WriteFile(filepath.Join(dir, "hostmap.json"), []byte(*c.Hostmap), 0o644))
			}
			env, diags := Load(context.Background(), root, c.Name, Options{NoScriptChecks: true})
			require.NotNil(t, env, "%q", diagStrings(diags))

			switch {
			case want.LoadError != nil && *want.LoadError == "CmdExecutionError":
				// batou set up the Mercurial repository (after loading the
				// hosts), which needs hg: not part of the model.
			case want.LoadError != nil:
				require.False(t, strings.HasPrefix(*want.LoadError, "script:"), *want.LoadError)
				assert.True(t, hasProblem(diags), "batou fails with %s; devhost must report it: %q", *want.LoadError, diagStrings(diags))
				return
			case len(want.Exceptions) > 0:
				assert.True(t, hasProblem(diags), "batou reports %v; devhost must report it", want.Exceptions)
			case c.devhostErrors:
				assert.True(t, diags.HasErrors())
			default:
				assert.False(t, diags.HasErrors(), "%q", diagStrings(diags))
			}

			require.NoError(t, env.AssignNames(suggestLikeScript))
			var gotMap *string
			if env.HostMap.Needed() {
				gotMap = strp(string(env.HostMap.Marshal()))
			}
			assert.Equal(t, want.Hostmap, gotMap, "hostmap.json")

			// batou's hosts dict: keyed by real name, first position, last value.
			got := []batouHost{}
			index := map[string]int{}
			for _, h := range env.Hosts {
				bh := batouHost{Name: h.Name, Real: h.RealName, Ignore: h.Ignore, Platform: opt(h.Platform),
					ServiceUser: opt(h.ServiceUser), Remap: h.Dynamic, Aliases: []string{}, Data: map[string]string{}}
				if h.Provisioner != nil {
					bh.Provisioner = strp(h.Provisioner.Name)
				}
				// batou keeps aliases in a dict: a repeated one (an error
				// for devhost) appears once.
				for _, a := range h.Aliases {
					if !slices.Contains(bh.Aliases, a.Name) {
						bh.Aliases = append(bh.Aliases, a.Name)
					}
				}
				for _, d := range h.Data {
					bh.Data[d.Name] = d.Value.Value
				}
				if j, ok := index[h.RealName]; ok {
					got[j] = bh
					continue
				}
				index[h.RealName] = len(got)
				got = append(got, bh)
			}
			for j := range want.Hosts {
				if want.Hosts[j].Aliases == nil {
					want.Hosts[j].Aliases = []string{}
				}
			}
			assert.Equal(t, want.Hosts, got, "hosts")

			gotProv := map[string]map[string]string{}
			for _, p := range env.Provisioners {
				gotProv[p.Name] = map[string]string{"host": p.Host.Value, "channel": p.Channel.Value}
			}
			assert.Equal(t, want.Provisioners, gotProv, "provisioners")

			s := env.Settings
			gotSettings := map[string]any{
				"service_user": opt(s.ServiceUser), "host_domain": opt(s.HostDomain), "branch": opt(s.Branch),
				"update_method": opt(s.UpdateMethod), "platform": opt(s.Platform), "timeout": float64(s.TimeoutSeconds),
				"repository_url": opt(s.RepositoryURL), "jobs": opt(s.Jobs),
			}
			wantSettings := map[string]any{}
			for k, v := range want.Settings {
				if str, ok := v.(string); ok {
					v = strp(str)
				} else if v == nil {
					v = (*string)(nil)
				}
				wantSettings[k] = v
			}
			assert.Equal(t, wantSettings, gotSettings, "settings")

			gotComp := map[string]map[string]batouComponent{}
			for _, h := range env.Hosts {
				if !h.Section.IsZero() && h.Section.Name() != "host:"+h.Name {
					continue
				}
				if len(h.Components) == 0 && !h.Section.IsZero() {
					continue
				}
				m := map[string]batouComponent{}
				for _, comp := range h.Components {
					f := comp.Features
					if f == nil {
						f = []string{}
					}
					m[comp.Name] = batouComponent{Features: f, Ignore: comp.Ignore}
				}
				gotComp[h.Name] = m
			}
			assert.Equal(t, want.Components, gotComp, "components")
		})
	}
}

func hasProblem(diags hcl.Diagnostics) bool { return len(diags) > 0 }
