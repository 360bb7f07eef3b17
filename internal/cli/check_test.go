package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/dirtree"
	"github.com/flyingcircusio/devhost/internal/environment"
)

// repoDir is the module root (two levels above this package).
func repoDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	return d
}

// treeHash records every path, mode and content below dir.
func treeHash(t *testing.T, dir string) map[string]string {
	t.Helper()
	m, err := dirtree.Snapshot(dir)
	require.NoError(t, err)
	return m
}

func runMain(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	io := &IOStreams{In: bytes.NewReader(nil), Out: &out, ErrOut: &errOut, Env: func(string) string { return "" }, Dir: dir}
	code := Main(append([]string{"devhost"}, args...), io)
	return code, out.String(), errOut.String()
}

func haveNix() bool {
	_, err := exec.LookPath("nix-instantiate")
	return err == nil
}

// nixSkipWarning is what check prints on stderr for an environment without
// problems that has a provision.nix: nothing, or without Nix the notice that
// provision.nix was not checked (then errOut must hold it).
func nixSkipWarning(t *testing.T, errOut string) string {
	t.Helper()
	if haveNix() {
		return ""
	}
	require.Contains(t, errOut, "warning: provision.nix was not checked: nix-instantiate not found")
	return errOut
}

func TestCheckShop(t *testing.T) {
	repo := repoDir(t)
	shop := filepath.Join(repo, "examples", "shop")
	before := treeHash(t, shop)

	tests := []struct {
		name       string
		dir        string
		args       []string
		wantCode   int
		wantOut    []string
		wantErrOut []string
		emptyOut   bool
	}{
		{
			name: "dev: the README's check example", dir: repo,
			args:     []string{"check", "--root", "examples/shop", "dev"},
			wantCode: ExitOK,
			wantOut: []string{
				"Environment dev in examples/shop: devhost up dev would provision 2 container(s).",
				"web -> container (assigned on first up)",
				"  devhost       dev.example.com\n",
				"  channel       https://hydra.flyingcircus.io/build/116563/download/1/nixexprs.tar.xz\n",
				"  aliases       shop admin api\n",
				"  urls          https://<name>.dev.example.com/\n                https://shop.<name>.dev.example.com/\n",
				"  components    nginx, shop:debug, !mailer\n",
				"db -> container (assigned on first up)",
				"Not provisioned:\n  legacy (provisioner = none)\n",
				"provision.nix  copied to /etc/local/nixos/provision-container.nix",
			},
		},
		{
			name: "review, run inside the deployment root", dir: shop,
			args:       []string{"check", "review"},
			wantCode:   ExitOK,
			wantOut:    []string{"shopreview -> container shopreview\n", "https://shopreview.dev.example.com/", "https://admin.shopreview.dev.example.com/", "file:///nix/var/nix/profiles/per-user/root/channels/nixos"},
			wantErrOut: []string{"warning: No provisioning code found in environments/review/provision.nix or environments/review/provision.sh. This might be unintentional."},
		},
		{
			name: "broken: every mistake in one run", dir: repo,
			args:     []string{"check", "--root", "examples/shop", "broken"},
			wantCode: ExitInput,
			emptyOut: true,
			wantErrOut: []string{
				"examples/shop/environments/broken/environment.cfg:7:11: error: invalid channel URL",
				"   7: channel = https://example.com/\"; rm -rf / #",
				"examples/shop/environments/broken/environment.cfg:9:7: error: invalid container name \"This_Name_Is_Far_Too_Long\"",
				"examples/shop/environments/broken/environment.cfg:12:5: error: invalid alias \"not_a_dns_label\"",
				"examples/shop/environments/broken/environment.cfg:13:5: error: duplicate alias \"ok\"",
				"nothing was changed",
			},
		},
		{
			name: "a file batou's parser rejects: the error shows its line", dir: repo,
			args:     []string{"check", "--root", rejectedRoot(t), "bad"},
			wantCode: ExitInput,
			emptyOut: true,
			wantErrOut: []string{
				"environments/bad/environment.cfg:3:1: error: Line is not an option, a section header or a comment",
				"   3: no delimiter here\n        ^^^^^^^^^^^^^^^^^\n",
			},
		},
		{
			name: "unknown environment", dir: shop,
			args:       []string{"check", "prod"},
			wantCode:   ExitInput,
			emptyOut:   true,
			wantErrOut: []string{"error: Missing environment `prod`", "Environments here: broken, dev, review."},
		},
		{
			name: "no environment given", dir: shop,
			args:       []string{"check"},
			wantCode:   ExitInput,
			emptyOut:   true,
			wantErrOut: []string{"accepts 1 arg(s), received 0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runMain(t, tt.dir, tt.args...)
			assert.Equal(t, tt.wantCode, code, "stderr: %s", errOut)
			for _, w := range tt.wantOut {
				assert.Contains(t, out, w)
			}
			for _, w := range tt.wantErrOut {
				assert.Contains(t, errOut, w)
			}
			if tt.emptyOut {
				assert.Empty(t, out)
			}
			if len(tt.wantErrOut) == 0 {
				assert.Equal(t, nixSkipWarning(t, errOut), errOut)
			}
		})
	}
	t.Run("broken: provision.nix", func(t *testing.T) {
		if !haveNix() {
			t.Skip("nix-instantiate not on PATH: skipping the provision.nix syntax check")
		}
		code, _, errOut := runMain(t, repo, "check", "--root", "examples/shop", "broken")
		assert.Equal(t, ExitInput, code)
		assert.Contains(t, errOut, "examples/shop/environments/broken/provision.nix:4:39: error: Nix syntax error in provision.nix: syntax error, unexpected '=', expecting ';'")
		assert.Contains(t, errOut, "   4:   networking.firewall.allowedTCPPorts = [ 80 443 ];")
		assert.Contains(t, errOut, "devhost: 5 error(s); nothing was changed")
	})
	assert.Equal(t, before, treeHash(t, shop), "check writes nothing")
}

// rejectedRoot is a deployment root whose environment "bad" has an
// environment.cfg that RawConfigParser rejects.
func rejectedRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "environments", "bad")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "environment.cfg"), []byte("[hosts]\na = x\nno delimiter here\n"), 0o644))
	return root
}

func TestCheckJSON(t *testing.T) {
	repo := repoDir(t)
	code, out, errOut := runMain(t, repo, "check", "--json", "--root", "examples/shop", "dev")
	require.Equal(t, ExitOK, code, errOut)
	var res checkResult
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	assert.True(t, res.Valid)
	assert.Equal(t, "dev", res.Environment)
	require.Len(t, res.Containers, 2)
	web := res.Containers[0]
	assert.Equal(t, "web", web.Host)
	assert.Nil(t, web.Name)
	assert.Equal(t, "assigned on first up", web.NameSource)
	assert.Equal(t, "dev.example.com", web.Devhost)
	assert.Equal(t, []string{"shop", "admin", "api"}, web.Aliases)
	assert.Equal(t, "https://api.<name>.dev.example.com/", web.URLs[3])
	assert.Equal(t, []checkHost{{Host: "legacy", Reason: "provisioner = none", Components: []string{"mailer"}}}, res.NotProvisioned)
	require.NotNil(t, res.Provision.Nix)
	assert.Equal(t, "examples/shop/environments/dev/provision.nix", *res.Provision.Nix)
	assert.True(t, res.Provision.NixCopied)
	if haveNix() {
		assert.Empty(t, res.Diagnostics)
	} else {
		require.Len(t, res.Diagnostics, 1)
		assert.Equal(t, "warning", res.Diagnostics[0].Severity)
		assert.Contains(t, res.Diagnostics[0].Summary, "provision.nix was not checked")
		assert.Equal(t, nixSkipWarning(t, errOut), errOut)
	}

	// The stable keys scripts rely on.
	var raw map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &raw))
	for _, k := range []string{"environment", "root", "valid", "containers", "not_provisioned", "provision", "diagnostics"} {
		assert.Contains(t, raw, k)
	}

	code, out, _ = runMain(t, repo, "check", "--json", "--root", "examples/shop", "broken")
	assert.Equal(t, ExitInput, code)
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	assert.False(t, res.Valid)
	lines := map[string]bool{}
	for _, d := range res.Diagnostics {
		if !haveNix() && d.Severity == "warning" {
			assert.Contains(t, d.Summary, "provision.nix was not checked")
			continue
		}
		assert.Equal(t, "error", d.Severity)
		lines[fmt.Sprintf("%s:%d", filepath.Base(d.File), d.Line)] = true
	}
	for _, w := range []string{"environment.cfg:7", "environment.cfg:9", "environment.cfg:12", "environment.cfg:13"} {
		assert.True(t, lines[w], w)
	}
	if haveNix() {
		assert.True(t, lines["provision.nix:4"])
		assert.Len(t, res.Diagnostics, 5)
	}
}

// TestCheckDynamicNames: names from hostmap.json are shown, and check does
// not create hostmap.json (batou would, on load).
func TestCheckDynamicNames(t *testing.T) {
	root := t.TempDir()
	env := filepath.Join(root, "environments", "dev")
	require.NoError(t, os.MkdirAll(env, 0o755))
	cfg := "[provisioner:default]\nmethod = devhost\nhost = dev.example.com\nchannel = https://example.com/nixexprs.tar.xz\n" +
		"[host:web]\ncomponents = a\nprovision-dynamic-hostname = True\nprovision-aliases = www\n" +
		"[host:db]\ncomponents = b\nprovision-dynamic-hostname = True\n"
	require.NoError(t, os.WriteFile(filepath.Join(env, "environment.cfg"), []byte(cfg), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(env, "provision.sh"), []byte("RUN true\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(env, "hostmap.json"), []byte(`{"web": "c0ffee12345"}`), 0o644))
	before := treeHash(t, root)

	code, out, errOut := runMain(t, root, "check", "dev")
	require.Equal(t, ExitOK, code, errOut)
	assert.Contains(t, out, "web -> container c0ffee12345 (from hostmap.json)\n")
	assert.Contains(t, out, "https://www.c0ffee12345.dev.example.com/")
	assert.Contains(t, out, "db -> container (assigned on first up)\n")
	assert.Contains(t, out, "provision.nix  none")
	assert.Equal(t, before, treeHash(t, root), "check writes nothing")

	require.NoError(t, os.WriteFile(filepath.Join(env, "hostmap.json"), []byte(`{"web": "Not Valid"}`), 0o644))
	code, _, errOut = runMain(t, root, "check", "dev")
	assert.Equal(t, ExitInput, code)
	assert.Contains(t, errOut, `environments/dev/hostmap.json:1:9: error: invalid container name "Not Valid"`)
	assert.Contains(t, errOut, `1: {"web": "Not Valid"}`)
}

// TestCheckWithoutNix drives checkRun with a Nix that does not exist: the
// check is skipped with a warning, and the environment is still valid.
func TestCheckWithoutNix(t *testing.T) {
	repo := repoDir(t)
	var out, errOut bytes.Buffer
	opts := &checkOptions{
		IO:      &IOStreams{Out: &out, ErrOut: &errOut, Dir: repo},
		Context: context.Background(),
		Env:     "dev", Root: "examples/shop",
		Load: environment.Options{NixInstantiate: filepath.Join(t.TempDir(), "no-nix-here")},
	}
	require.NoError(t, checkRun(opts))
	assert.Contains(t, errOut.String(), "warning: provision.nix was not checked:")
	assert.Contains(t, out.String(), "devhost up dev would provision 2 container(s)")
}

// TestCheckPrintsNoControlCharacters: names from environment.cfg reach the
// terminal without their escape sequences.
func TestCheckPrintsNoControlCharacters(t *testing.T) {
	root := t.TempDir()
	env := filepath.Join(root, "environments", "dev")
	require.NoError(t, os.MkdirAll(env, 0o755))
	cfg := "[provisioner:default]\nmethod = devhost\nhost = dev.example.com\nchannel = https://example.com/nixexprs.tar.xz\n" +
		"[host:web]\ncomponents = nginx, \x1b]0;owned\x07\n" +
		"[host:x\x1b[2J]\nprovisioner = none\ncomponents = a\n"
	require.NoError(t, os.WriteFile(filepath.Join(env, "environment.cfg"), []byte(cfg), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(env, "provision.sh"), []byte("RUN true\n"), 0o644))
	code, out, errOut := runMain(t, root, "check", "dev")
	require.Equal(t, ExitOK, code, errOut)
	assert.NotContains(t, out, "\x1b")
	assert.NotContains(t, out, "\x07")
	assert.Contains(t, out, "  components    nginx, \ufffd]0;owned\ufffd\n")
	assert.Contains(t, out, "  x\ufffd[2J (provisioner = none)\n")
}
