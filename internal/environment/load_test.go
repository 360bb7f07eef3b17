package environment

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/dirtree"
)

const shop = "../../examples/shop"

func needNix(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		t.Skip("nix-instantiate not on PATH: skipping the provision.nix syntax check (install nix-bin to run it)")
	}
}

func needBash(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not on PATH: skipping the provision.sh syntax check")
	}
}

// snapshot records every file's path, mode and content hash below dir.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m, err := dirtree.Snapshot(dir)
	require.NoError(t, err)
	return m
}

func TestLoadShop(t *testing.T) {
	needNix(t)
	needBash(t)
	before := snapshot(t, shop)
	ctx := context.Background()

	env, diags := Load(ctx, shop, "dev", Options{DisplayRoot: "shop"})
	require.Empty(t, diagStrings(diags))
	var got []string
	for _, h := range env.Hosts {
		got = append(got, fmt.Sprintf("%s provisioned=%v dynamic=%v assigned=%v", h.Name, h.Provisioned(), h.Dynamic, h.Assigned()))
	}
	assert.Equal(t, []string{
		"web provisioned=true dynamic=true assigned=false",
		"db provisioned=true dynamic=true assigned=false",
		"legacy provisioned=false dynamic=false assigned=true",
	}, got)
	assert.True(t, env.Provision.NixExists)
	assert.True(t, env.Provision.ShExists)
	assert.True(t, env.Provision.NixCopied, "provision.sh does not mention provision.nix")
	assert.Equal(t, "shop/environments/dev/environment.cfg", env.ConfigFile)
	assert.Contains(t, env.Files(), "shop/environments/dev/provision.nix")

	env, diags = Load(ctx, shop, "review", Options{DisplayRoot: "shop"})
	require.Equal(t, []string{"- warning: No provisioning code found in environments/review/provision.nix or environments/review/provision.sh. This might be unintentional."}, diagStrings(diags))
	assert.Equal(t, "shopreview", env.Hosts[0].RealName)

	// broken: the five mistakes of the example's README, in one run.
	_, diags = Load(ctx, shop, "broken", Options{DisplayRoot: "shop"})
	got = diagStrings(diags)
	sort.Strings(got)
	want := []string{
		`shop/environments/broken/environment.cfg:12:5 error: invalid alias "not_a_dns_label"`,
		`shop/environments/broken/environment.cfg:13:5 error: duplicate alias "ok"`,
		`shop/environments/broken/environment.cfg:7:11 error: invalid channel URL`,
		`shop/environments/broken/environment.cfg:9:7 error: invalid container name "This_Name_Is_Far_Too_Long"`,
		`shop/environments/broken/provision.nix:4:39 error: Nix syntax error in provision.nix: syntax error, unexpected '='`,
	}
	require.Len(t, got, len(want), "%q", got)
	for i := range want {
		assert.Contains(t, got[i], want[i])
	}
	for _, d := range diags {
		r := d.Subject
		require.NotNil(t, r)
		assert.Greater(t, r.End.Byte, r.Start.Byte, "a snippet needs byte offsets: %s", d.Summary)
	}
	// The alias diagnostic covers exactly the alias.
	for _, d := range diags {
		if strings.Contains(d.Summary, "not_a_dns_label") {
			src, err := os.ReadFile(filepath.Join(shop, "environments", "broken", "environment.cfg"))
			require.NoError(t, err)
			assert.Equal(t, "not_a_dns_label", string(src[d.Subject.Start.Byte:d.Subject.End.Byte]))
		}
	}

	assert.Equal(t, before, snapshot(t, shop), "Load writes nothing")
}

// fixtureDirs are the batou environment fixtures: the copy in testdata
// (always there) and ../shared/fixtures beside the clone, when present.
func fixtureDirs(t testing.TB) []string {
	t.Helper()
	return fixtureDirsIn(t, "testdata/batou-environments", "../../../shared/fixtures/batou-environments")
}

func fixtureDirsIn(t testing.TB, dirs ...string) []string {
	t.Helper()
	var roots []string
	for _, dir := range dirs {
		ms, err := filepath.Glob(filepath.Join(dir, "*", "environment.cfg"))
		require.NoError(t, err)
		for _, m := range ms {
			roots = append(roots, filepath.Dir(m))
		}
	}
	require.NotEmpty(t, roots)
	return roots
}

// fixtureRoot lays a fixture out as a deployment root (environments/<env>/)
// in a temporary directory, as batou expects it.
func fixtureRoot(t testing.TB, dirs []string) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range dirs {
		src, err := os.ReadFile(filepath.Join(d, "environment.cfg"))
		require.NoError(t, err)
		env := filepath.Join(root, "environments", envName(d))
		require.NoError(t, os.MkdirAll(env, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(env, "environment.cfg"), src, 0o644))
	}
	return root
}

// envName names a fixture directory's environment uniquely.
func envName(dir string) string {
	n := filepath.Base(dir)
	if strings.Contains(dir, "shared") {
		n = "shared-" + n
	}
	return n
}

// TestFixtures loads every fixture: none is rejected by the reader, and
// none has an error devhost would stop for (batou-only problems such as the
// invalid resolver address are warnings).
func TestFixtures(t *testing.T) {
	dirs := fixtureDirs(t)
	root := fixtureRoot(t, dirs)
	wantWarnings := map[string][]string{
		"errors--errors":                        {"unknown section [superfluoussection]"},
		"sample_service--test-resolver-invalid": {`"thisisinvalid" is not an IP address`},
		// batou gives this warning too, when it provisions.
		"sample_service--test-with-check-local": {"No provisioning code found"},
		"tutorial-provision-container--dev":     {"No provisioning code found"},
	}
	for _, d := range dirs {
		name := envName(d)
		t.Run(name, func(t *testing.T) {
			env, diags := Load(context.Background(), root, name, Options{NoScriptChecks: true})
			require.NotNil(t, env, "reader error: %q", diagStrings(diags))
			assert.False(t, diags.HasErrors(), "%q", diagStrings(diags))
			var warnings []string
			for _, d := range diags {
				if d.Severity == hcl.DiagWarning {
					warnings = append(warnings, d.Summary)
				}
			}
			want := wantWarnings[strings.TrimPrefix(name, "shared-")]
			require.Len(t, warnings, len(want), "%q", warnings)
			for i := range want {
				assert.Contains(t, warnings[i], want[i])
			}
		})
	}

	// Spot checks against what batou makes of them.
	env, _ := Load(context.Background(), root, "tutorial-provision-container--dev", Options{NoScriptChecks: true})
	h := env.Hosts[0]
	assert.Equal(t, "mycontainer", h.Name)
	assert.True(t, h.Dynamic)
	assert.Equal(t, "largo.fcdev.fcio.net", h.Provisioner.Host.Value)
	var aliases []string
	for _, a := range h.Aliases {
		aliases = append(aliases, fmt.Sprintf("%s@%d:%d", a.Name, a.Range.Start.Line, a.Range.Start.Column))
	}
	assert.Equal(t, []string{"my@10:2", "directory@11:2", "api@12:2"}, aliases)

	env, _ = Load(context.Background(), root, "ignores--ignores", Options{NoScriptChecks: true})
	require.Len(t, env.Hosts, 2)
	assert.Equal(t, "otherhost", env.Hosts[1].Name)
	assert.True(t, env.Hosts[1].Ignore)
	assert.Equal(t, []Component{{Name: "component1", Range: env.Hosts[0].Components[0].Range}, {Name: "fail", Ignore: true, Range: env.Hosts[0].Components[1].Range}}, env.Hosts[0].Components)

	env, _ = Load(context.Background(), root, "venvs--dev", Options{NoScriptChecks: true})
	assert.Equal(t, 30, env.Settings.TimeoutSeconds)
	assert.Equal(t, "local", env.Settings.ConnectMethod.Value)

	env, _ = Load(context.Background(), root, "sample_service--test-with-check-local", Options{NoScriptChecks: true})
	assert.Equal(t, "localhost", env.Provisioned()[0].RealName, "[hosts] entries use [provisioner:default]")
}

func TestLoadMissingAndRejected(t *testing.T) {
	root := t.TempDir()
	ctx := context.Background()

	_, diags := Load(ctx, root, "dev", Options{})
	assert.Equal(t, []string{"- error: Missing environment `dev`"}, diagStrings(diags))
	assert.Contains(t, diags[0].Detail, "pass --root")

	require.NoError(t, os.MkdirAll(filepath.Join(root, "environments", "qa"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "environments", "qa", "environment.cfg"), []byte("[hosts]\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "environments", "dev.cfg"), []byte("[hosts]\n"), 0o644))
	_, diags = Load(ctx, root, "dev", Options{})
	assert.Contains(t, diags[0].Detail, "move the file there")
	assert.Contains(t, diags[0].Detail, "Environments here: qa.")

	for _, bad := range []string{"", "..", "a/b", ".hidden"} {
		_, diags = Load(ctx, root, bad, Options{})
		assert.Contains(t, diagStrings(diags)[0], "invalid environment name", bad)
	}

	// A file RawConfigParser rejects is a positioned error.
	require.NoError(t, os.WriteFile(filepath.Join(root, "environments", "qa", "environment.cfg"), []byte("[hosts]\na = 1\na = 2\n"), 0o644))
	env, diags := Load(ctx, root, "qa", Options{DisplayRoot: "."})
	got := diagStrings(diags)
	require.NotEmpty(t, got)
	assert.Contains(t, got[0], "environments/qa/environment.cfg:3:1 error:")
	// No model, but the file's bytes for the snippet of the error.
	require.NotNil(t, env)
	assert.Nil(t, env.File)
	assert.Empty(t, env.Hosts)
	assert.Equal(t, "[hosts]\na = 1\na = 2\n", string(env.Files()[diags[0].Subject.Filename]))
}

// project writes a deployment root with one environment "dev".
func project(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, "environments", "dev", name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	return root
}

const oneContainer = provDefault + "[host:web]\ncomponents = a\n"

func TestProvisionScripts(t *testing.T) {
	ctx := context.Background()
	t.Run("nix missing: a warning, not an error", func(t *testing.T) {
		root := project(t, map[string]string{"environment.cfg": oneContainer, "provision.nix": "{ broken"})
		_, diags := Load(ctx, root, "dev", Options{DisplayRoot: ".", NixInstantiate: filepath.Join(t.TempDir(), "nix-instantiate")})
		assert.Equal(t, []string{"- warning: provision.nix was not checked: " + "nix-instantiate not found"}, replaceTemp(diagStrings(diags)))
	})
	t.Run("bash syntax error", func(t *testing.T) {
		needBash(t)
		root := project(t, map[string]string{"environment.cfg": oneContainer, "provision.sh": "COPY a /b\nif then\nRUN true\n"})
		env, diags := Load(ctx, root, "dev", Options{DisplayRoot: "."})
		got := diagStrings(diags)
		require.Len(t, got, 1)
		assert.Contains(t, got[0], "environments/dev/provision.sh:2:1 error: shell syntax error in provision.sh: syntax error near unexpected token `then'")
		assert.False(t, env.Provision.NixExists)
		assert.Equal(t, "if then", string(env.Files()["environments/dev/provision.sh"][diags[0].Subject.Start.Byte:diags[0].Subject.End.Byte]))
	})
	t.Run("nix unterminated string points at its end", func(t *testing.T) {
		needNix(t)
		root := project(t, map[string]string{"environment.cfg": oneContainer, "provision.nix": "{\n  a = \"x;\n}\n",
			"provision.sh": "# installs provision.nix itself\nCOPY provision.nix /etc/nixos/x.nix\n"})
		env, diags := Load(ctx, root, "dev", Options{DisplayRoot: "."})
		got := diagStrings(diags)
		require.Len(t, got, 1)
		assert.Contains(t, got[0], "environments/dev/provision.nix:")
		assert.Contains(t, got[0], "error: Nix syntax error in provision.nix: syntax error, unexpected end of file")
		assert.False(t, env.Provision.NixCopied, "provision.sh mentions provision.nix")
	})
	t.Run("check timeout is reported", func(t *testing.T) {
		needBash(t)
		slow := filepath.Join(t.TempDir(), "slow-nix")
		require.NoError(t, os.WriteFile(slow, []byte("#!/bin/sh\nexec sleep 5\n"), 0o755))
		root := project(t, map[string]string{"environment.cfg": oneContainer, "provision.nix": "{ }\n"})
		_, diags := Load(ctx, root, "dev", Options{DisplayRoot: ".", NixInstantiate: slow, Timeout: 100_000_000})
		got := diagStrings(diags)
		require.Len(t, got, 1)
		assert.Contains(t, got[0], "warning: provision.nix was not checked")
	})
	t.Run("environment name the devhost cannot record", func(t *testing.T) {
		root := t.TempDir()
		for _, env := range []string{"review 2", "plain env"} {
			dir := filepath.Join(root, "environments", env)
			require.NoError(t, os.MkdirAll(dir, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "provision.sh"), []byte("RUN true\n"), 0o644))
			cfg := oneContainer
			if env == "plain env" {
				cfg = "[hosts]\nlocalhost = a\n"
			}
			require.NoError(t, os.WriteFile(filepath.Join(dir, "environment.cfg"), []byte(cfg), 0o644))
		}
		_, diags := Load(ctx, root, "review 2", Options{NoScriptChecks: true})
		assert.Equal(t, []string{`- error: invalid environment name "review 2": devhost records only names of letters, digits, '.', '_' and '-' (at most 64, starting with a letter or digit)`}, diagStrings(diags))
		assert.Contains(t, diags[0].Detail, "Rename the directory environments/review 2")
		_, diags = Load(ctx, root, "plain env", Options{NoScriptChecks: true})
		assert.Empty(t, diags, "only provisioned environments are recorded")
	})
	t.Run("no provisioning code", func(t *testing.T) {
		root := project(t, map[string]string{"environment.cfg": oneContainer})
		_, diags := Load(ctx, root, "dev", Options{})
		assert.Equal(t, []string{"- warning: No provisioning code found in environments/dev/provision.nix or environments/dev/provision.sh. This might be unintentional."}, diagStrings(diags))
		root = project(t, map[string]string{"environment.cfg": "[hosts]\nlocalhost = a\n"})
		_, diags = Load(ctx, root, "dev", Options{})
		assert.Empty(t, diags, "no warning without provisioned hosts")
	})
}

func replaceTemp(ss []string) []string {
	for i, s := range ss {
		if i := strings.Index(s, ": /"); i >= 0 && strings.Contains(s, "nix-instantiate not found") {
			s = s[:i+2] + "nix-instantiate not found"
		}
		ss[i] = s
	}
	return ss
}

// BenchmarkLoadFixtures loads each of the 44 fixture environments of
// testdata once per iteration (without the Nix and bash checks, which time
// external programs).
func BenchmarkLoadFixtures(b *testing.B) {
	dirs := fixtureDirsIn(b, "testdata/batou-environments")
	root := fixtureRoot(b, dirs)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		for _, d := range dirs {
			if env, _ := Load(ctx, root, envName(d), Options{NoScriptChecks: true}); env == nil {
				b.Fatal(d)
			}
		}
	}
}

// TestCheckerFailsWithoutPosition: a check command failing without naming
// a position in the file (Nix cannot open its store, say) is a warning, not
// an error about the user's file.
func TestCheckerFailsWithoutPosition(t *testing.T) {
	needBash(t)
	bin := t.TempDir()
	nixDouble := filepath.Join(bin, "nix-double")
	require.NoError(t, os.WriteFile(nixDouble, []byte("#!/bin/sh\necho \"error: opening lock file '/nix/var/nix/db/big-lock': Permission denied\" >&2\nexit 1\n"), 0o755))
	bashDouble := filepath.Join(bin, "bash-double")
	require.NoError(t, os.WriteFile(bashDouble, []byte("#!/bin/sh\necho 'bash: cannot allocate memory' >&2\nexit 2\n"), 0o755))
	root := project(t, map[string]string{"environment.cfg": oneContainer, "provision.nix": "{ }\n", "provision.sh": "RUN true\n"})
	_, diags := Load(context.Background(), root, "dev", Options{DisplayRoot: ".", NixInstantiate: nixDouble, Bash: bashDouble})
	assert.Equal(t, []string{
		"- warning: provision.nix was not checked: " + nixDouble + " failed",
		"- warning: provision.sh was not checked: " + bashDouble + " -n failed",
	}, diagStrings(diags))
	assert.Contains(t, diags[0].Detail, "Permission denied")
}

// TestNixOldErrorFormat uses a test double for nix-instantiate that prints
// the one-line error format of older Nix ("…, at FILE:L:C") and records its
// argv.
func TestNixOldErrorFormat(t *testing.T) {
	needBash(t)
	bin := t.TempDir()
	argvFile := filepath.Join(bin, "argv")
	double := filepath.Join(bin, "nix-instantiate-double")
	script := "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + argvFile + "\n" +
		"echo \"error: syntax error, unexpected '=', expecting ';', at $2:2:5\" >&2\nexit 1\n"
	require.NoError(t, os.WriteFile(double, []byte(script), 0o755))
	root := project(t, map[string]string{"environment.cfg": oneContainer, "provision.nix": "{\n  a = 1\n  b = 2;\n}\n"})

	_, diags := Load(context.Background(), root, "dev", Options{DisplayRoot: ".", NixInstantiate: double})
	assert.Equal(t, []string{"environments/dev/provision.nix:2:5 error: Nix syntax error in provision.nix: syntax error, unexpected '=', expecting ';'"}, diagStrings(diags))
	argv, err := os.ReadFile(argvFile)
	require.NoError(t, err)
	abs, err := filepath.Abs(filepath.Join(root, "environments", "dev", "provision.nix"))
	require.NoError(t, err)
	assert.Equal(t, "--parse\n"+abs+"\n", string(argv))
}

// TestLoneCRLineEnds: CPython ends lines at a lone "\r" too; positions
// and snippet sources agree.
func TestLoneCRLineEnds(t *testing.T) {
	cfg := strings.ReplaceAll(oneContainer+"provision-aliases = ok\n  Bad\n", "\n", "\r")
	root := project(t, map[string]string{"environment.cfg": cfg, "provision.sh": "RUN true\n"})
	env, diags := Load(context.Background(), root, "dev", Options{DisplayRoot: ".", NoScriptChecks: true})
	require.Equal(t, []string{`environments/dev/environment.cfg:8:3 error: invalid alias "Bad": it contains upper-case letters`}, diagStrings(diags))
	src := env.Files()["environments/dev/environment.cfg"]
	r := diags[0].Subject
	assert.Equal(t, "Bad", string(src[r.Start.Byte:r.End.Byte]))
	assert.Equal(t, 7, bytes.Count(src[:r.Start.Byte], []byte("\n")), "the snippet source has a \\n per line")
}
