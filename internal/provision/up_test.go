package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/flyingcircusio/devhost/internal/environment"
)

// fakeDevhost records what Up asks of the devhost.
type fakeDevhost struct {
	mu        sync.Mutex
	next      int
	reserved  []string
	ensured   []EnsureRequest
	destroyed []string
	hostKey   string
	failOn    string
}

func (d *fakeDevhost) Reserve(context.Context) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.next++
	n := fmt.Sprintf("a%010d", d.next)
	d.reserved = append(d.reserved, n)
	return n, nil
}

func (d *fakeDevhost) Ensure(_ context.Context, req EnsureRequest) (EnsureResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if req.Name == d.failOn {
		return EnsureResult{}, &RemoteError{Host: "dev.example.com", What: "ensure container " + req.Name, Status: 1, Stderr: "devhost: container belongs to bob"}
	}
	d.ensured = append(d.ensured, req)
	return EnsureResult{Name: req.Name, State: "running", Address: "10.233.0.2", HostKey: d.hostKey}, nil
}

func (d *fakeDevhost) Destroy(_ context.Context, name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.destroyed = append(d.destroyed, name)
	return nil
}

const upEnvCfg = `[environment]
service_user = s-shop

[provisioner:default]
method = devhost
host = dev.example.com
channel = https://example.com/nixexprs.tar.xz

[host:web]
provision-dynamic-hostname = True
provision-aliases = shop admin
components = shop

[host:fixed]
components = postgres

[host:legacy]
provisioner = none
components = mailer

[component:shop]
admin_email = dev@example.com
`

// upFixture is a deployment root with one environment and doubles for ssh,
// rsync and sudo; remote commands run locally with $ROOT as "/".
func upFixture(t *testing.T, provisionSh string) (opts Options, dev *fakeDevhost, root, log string) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found: the provision wrapper needs bash")
	}
	deploy := t.TempDir()
	envDir := filepath.Join(deploy, "environments", "dev")
	require.NoError(t, os.MkdirAll(envDir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(envDir, "environment.cfg"), []byte(upEnvCfg), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(envDir, "provision.nix"), []byte("{ }\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(envDir, "provision.sh"), []byte(provisionSh), 0o644))
	env, diags := environment.Load(context.Background(), deploy, "dev", environment.Options{NoScriptChecks: true})
	require.False(t, diags.HasErrors(), diags.Error())

	root = t.TempDir()
	bin, log := fakeBin(t, root)
	dev = &fakeDevhost{hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGc7V2c2zFPRMl8/gmBv1/MEldEuJau8jHjhx+2qziYs"}
	var progress strings.Builder
	opts = Options{
		Env: env, Devhost: func(string) Devhost { return dev },
		SSH: filepath.Join(bin, "ssh"), Rsync: filepath.Join(bin, "rsync"),
		Home:    t.TempDir(),
		BaseEnv: []string{"PATH=" + bin + ":/usr/bin:/bin", "ROOT=" + root, "PROVISION_REBUILD=stale"},
		Secrets: map[string]map[string]string{"postgres": {"admin_password": "pw with 'quotes' $x"}},
		TempDir: t.TempDir(), Progress: &progress, ScriptOut: &progress,
	}
	return opts, dev, root, log
}

func TestUp(t *testing.T) {
	opts, dev, root, log := upFixture(t, `RUN 'env | grep -E "^(PROVISION|COMPONENT|SSH_CONFIG|RSYNC_RSH)" | sort > "$ROOT/env.$PROVISION_CONTAINER"'
ECHO "$COMPONENT_POSTGRES_ADMIN_PASSWORD" "$ROOT/secret.$PROVISION_CONTAINER"
`)
	env := opts.Env
	res, err := Up(context.Background(), opts)
	require.NoError(t, err)

	// Names: one reservation for the dynamic host, remembered as batou does.
	assert.Equal(t, []string{"a0000000001"}, dev.reserved)
	hm, err := os.ReadFile(filepath.Join(env.Dir, "hostmap.json"))
	require.NoError(t, err)
	assert.Equal(t, `{"web": "a0000000001", "fixed": "fixed", "legacy": "legacy"}`, string(hm))

	// Ensure: every provisioned host, with the environment's key (the
	// hosts are ensured at once, in any order).
	require.Len(t, dev.ensured, 2)
	slices.SortFunc(dev.ensured, func(a, b EnsureRequest) int { return strings.Compare(a.Name, b.Name) })
	kp, err := EnsureKey(env.Root, "dev", false)
	require.NoError(t, err)
	assert.False(t, kp.Created)
	assert.Equal(t, EnsureRequest{Name: "a0000000001", Channel: "https://example.com/nixexprs.tar.xz",
		Aliases: []string{"shop", "admin"}, Environment: "dev", Root: env.Root, ServiceUser: "s-shop",
		SSHKeys: []string{kp.Public}, ProvisionNix: []byte("{ }\n")}, dev.ensured[0])
	assert.Equal(t, "fixed", dev.ensured[1].Name)

	// ssh_config and pinned host keys.
	cfg, err := os.ReadFile(filepath.Join(env.Root, "ssh_config_dev"))
	require.NoError(t, err)
	assert.Contains(t, string(cfg), "\nHost a0000000001 web\n    HostName a0000000001\n    ProxyJump dev.example.com\n    User developer\n    IdentityFile "+kp.PrivatePath+"\n")
	assert.Contains(t, string(cfg), "\nHost fixed\n")
	assert.Contains(t, string(cfg), "StrictHostKeyChecking yes\n")
	assert.NotContains(t, string(cfg), "legacy")
	kh, err := ReadKnownHosts(filepath.Join(env.Root, "ssh_known_hosts_dev"))
	require.NoError(t, err)
	assert.Equal(t, KnownHosts{"a0000000001": dev.hostKey, "fixed": dev.hostKey}, kh)

	// provision.sh saw batou's variables; PROVISION_REBUILD only on rebuild.
	vars, err := os.ReadFile(filepath.Join(root, "env.a0000000001"))
	require.NoError(t, err)
	cfgPath := filepath.Join(env.Root, "ssh_config_dev")
	assert.Equal(t, strings.Join([]string{
		"COMPONENT_POSTGRES_ADMIN_PASSWORD=pw with 'quotes' $x",
		"COMPONENT_SHOP_ADMIN_EMAIL=dev@example.com",
		"PROVISION_ALIASES=shop admin",
		"PROVISION_CHANNEL=https://example.com/nixexprs.tar.xz",
		"PROVISION_CONTAINER=a0000000001",
		"PROVISION_HOST=dev.example.com",
		"RSYNC_RSH=" + RsyncRSH(opts.SSH, cfgPath),
		"SSH_CONFIG=" + cfgPath,
	}, "\n")+"\n", string(vars))
	secret, err := os.ReadFile(filepath.Join(root, "secret.fixed"))
	require.NoError(t, err)
	assert.Equal(t, "pw with 'quotes' $x\n", string(secret))
	// provision.nix copied as batou copies it.
	assert.FileExists(t, filepath.Join(root, "etc/local/nixos/provision-container.nix"))
	l, _ := os.ReadFile(log)
	assert.NotContains(t, string(l), "quotes", "the secret is on no command line")

	// Summary.
	require.Len(t, res.Hosts, 2)
	assert.Equal(t, HostResult{Host: "web", Name: "a0000000001", Devhost: "dev.example.com",
		Channel: "https://example.com/nixexprs.tar.xz", Aliases: []string{"shop", "admin"}, State: "running",
		Address: "10.233.0.2", NewName: true, Rebuild: "skipped",
		URLs: []string{"https://a0000000001.dev.example.com/", "https://shop.a0000000001.dev.example.com/", "https://admin.a0000000001.dev.example.com/"}},
		res.Hosts[0])
	_, err = json.Marshal(res)
	require.NoError(t, err)

	// A second run reuses names and key.
	opts2, _, _, _ := upFixture(t, "true\n")
	opts2.Env, opts2.Devhost = env, func(string) Devhost { return dev }
	env2, diags := environment.Load(context.Background(), env.Root, "dev", environment.Options{NoScriptChecks: true})
	require.False(t, diags.HasErrors())
	opts2.Env = env2
	_, err = Up(context.Background(), opts2)
	require.NoError(t, err)
	assert.Equal(t, []string{"a0000000001"}, dev.reserved, "no new reservation")
	again, err := EnsureKey(env.Root, "dev", false)
	require.NoError(t, err)
	assert.Equal(t, kp.Public, again.Public)

	// --rebuild --host web: destroys only web, keeps the key (other
	// containers still trust it), sets PROVISION_REBUILD.
	opts2.Rebuild, opts2.Hosts = true, []string{"web"}
	res, err = Up(context.Background(), opts2)
	require.NoError(t, err)
	assert.Equal(t, []string{"a0000000001"}, dev.destroyed)
	assert.False(t, res.KeyRotated)
	// --rebuild of everything rotates the key.
	opts2.Hosts = nil
	res, err = Up(context.Background(), opts2)
	require.NoError(t, err)
	assert.True(t, res.KeyRotated)
	rotated, err := EnsureKey(env.Root, "dev", false)
	require.NoError(t, err)
	assert.NotEqual(t, kp.Public, rotated.Public)
	assert.Equal(t, []string{rotated.Public}, dev.ensured[len(dev.ensured)-1].SSHKeys)
}

func TestUpFailures(t *testing.T) {
	t.Run("unknown --host", func(t *testing.T) {
		opts, dev, _, _ := upFixture(t, "true\n")
		opts.Hosts = []string{"nope"}
		_, err := Up(context.Background(), opts)
		var ie *InputError
		require.ErrorAs(t, err, &ie)
		assert.Contains(t, err.Error(), "provisioned hosts: web, fixed")
		assert.Empty(t, dev.reserved)
	})
	t.Run("secret duplicates an override", func(t *testing.T) {
		// batou refuses it (DuplicateOverride); so does up, before
		// anything is touched, without showing the value.
		opts, dev, _, _ := upFixture(t, "true\n")
		opts.Secrets["shop"] = map[string]string{"admin_email": "hidden-value"}
		_, err := Up(context.Background(), opts)
		var ie *InputError
		require.ErrorAs(t, err, &ie)
		assert.Contains(t, err.Error(), "[component:shop] admin_email is also set in environment.cfg")
		assert.NotContains(t, err.Error(), "hidden-value")
		assert.Empty(t, dev.reserved)
		assert.NoFileExists(t, filepath.Join(opts.Env.Dir, "hostmap.json"))
	})
	t.Run("secret up cannot export", func(t *testing.T) {
		// check cannot see secrets; up refuses them before anything is
		// touched, with the rule check applies to environment.cfg.
		for attr, val := range map[string]string{"foo-bar": "x", "token": "a\x00b"} {
			opts, dev, _, _ := upFixture(t, "true\n")
			opts.Secrets["shop"] = map[string]string{attr: val}
			_, err := Up(context.Background(), opts)
			var ie *InputError
			require.ErrorAs(t, err, &ie, attr)
			assert.Contains(t, err.Error(), "secrets: [component:shop] "+attr)
			assert.Empty(t, dev.reserved)
			assert.NoFileExists(t, filepath.Join(opts.Env.Dir, "hostmap.json"))
		}
	})
	t.Run("provision.sh fails", func(t *testing.T) {
		opts, _, _, _ := upFixture(t, "true\nRUN 'exit 3'\n")
		_, err := Up(context.Background(), opts)
		var se *ScriptError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, 2, se.Line)
		assert.Equal(t, 3, se.Status)
		assert.Contains(t, err.Error(), "environments/dev/provision.sh:2")
		entries, _ := os.ReadDir(opts.TempDir)
		assert.Empty(t, entries, "wrapper removed")
	})
	t.Run("ensure refused", func(t *testing.T) {
		opts, dev, _, _ := upFixture(t, "true\n")
		dev.failOn = "a0000000001"
		_, err := Up(context.Background(), opts)
		var re *RemoteError
		require.ErrorAs(t, err, &re)
		assert.Contains(t, err.Error(), "the devhost refused: devhost: container belongs to bob")
		// The reserved name is remembered: the next run reuses it.
		hm, rerr := os.ReadFile(filepath.Join(opts.Env.Dir, "hostmap.json"))
		require.NoError(t, rerr)
		assert.Contains(t, string(hm), `"web": "a0000000001"`)
	})
	t.Run("rebuild forgets hashed host keys", func(t *testing.T) {
		// Compatibility mode: the devhost reports no host key, ssh wrote
		// the container's first key itself, hashed (HashKnownHosts yes).
		// --rebuild makes a new container with a new key: the old one must
		// go, or accept-new meets a changed key and ssh refuses.
		opts, dev, _, _ := upFixture(t, "true\n")
		dev.hostKey = ""
		key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGc7V2c2zFPRMl8/gmBv1/MEldEuJau8jHjhx+2qziYs"
		_, khPath := SSHConfigPaths(opts.Env.Root, "dev")
		require.NoError(t, os.WriteFile(khPath, []byte(knownhosts.HashHostname("fixed")+" "+key+"\nother "+key+"\n"), 0o644))
		opts.Rebuild = true
		_, err := Up(context.Background(), opts)
		require.NoError(t, err)
		data, err := os.ReadFile(khPath)
		require.NoError(t, err)
		assert.Equal(t, "other "+key+"\n", string(data))
	})
	t.Run("keys ssh accepted stay", func(t *testing.T) {
		// Compatibility mode: ssh records each container's key itself
		// (accept-new) while provision.sh runs; writing the next host's
		// entry must not drop it.
		key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGc7V2c2zFPRMl8/gmBv1/MEldEuJau8jHjhx+2qziYs"
		opts, dev, _, _ := upFixture(t, `echo "$PROVISION_CONTAINER `+key+`" >> "$(dirname "$SSH_CONFIG")/ssh_known_hosts_dev"`+"\n")
		dev.hostKey = ""
		_, err := Up(context.Background(), opts)
		require.NoError(t, err)
		_, khPath := SSHConfigPaths(opts.Env.Root, "dev")
		kh, err := ReadKnownHosts(khPath)
		require.NoError(t, err)
		assert.Equal(t, KnownHosts{"a0000000001": key, "fixed": key}, kh)
	})
	t.Run("rebuild inside fails", func(t *testing.T) {
		opts, _, root, _ := upFixture(t, "true\n")
		bin := filepath.Dir(opts.SSH)
		require.NoError(t, os.WriteFile(filepath.Join(bin, "fc-manage"), []byte("#!/bin/sh\necho 'error: infinite recursion' >&2\nexit 1\n"), 0o755))
		_ = root
		res, err := Up(context.Background(), opts)
		require.NoError(t, err)
		assert.Equal(t, "failed", res.Hosts[0].Rebuild)
		assert.Contains(t, opts.Progress.(*strings.Builder).String(), "error: infinite recursion")
		opts.Strict = true
		_, err = Up(context.Background(), opts)
		var rb *RebuildError
		require.ErrorAs(t, err, &rb)
		assert.True(t, errors.As(err, &rb))
	})
}

// TestRsyncRSHAsRealRsyncSplitsIt: rsync splits RSYNC_RSH itself ('…'
// quotes, doubled quote inside, no backslash escapes), so COPY must reach
// ssh with the right -F file even from a root like "/home/x/Jane's shop".
func TestRsyncRSHAsRealRsyncSplitsIt(t *testing.T) {
	rsync, err := exec.LookPath("rsync")
	if err != nil {
		t.Skip("rsync not found: install rsync to check RSYNC_RSH with real rsync")
	}
	for _, dirName := range []string{"plain", "Jane Doe", "Jane's shop", `say "hi"`} {
		t.Run(dirName, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), dirName)
			require.NoError(t, os.MkdirAll(dir, 0o755))
			log := filepath.Join(t.TempDir(), "argv")
			ssh := filepath.Join(dir, "ssh")
			require.NoError(t, os.WriteFile(ssh, []byte("#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > "+Quote(log)+"\nexit 1\n"), 0o755))
			src := filepath.Join(t.TempDir(), "src")
			require.NoError(t, os.WriteFile(src, []byte("x"), 0o644))
			cfg := filepath.Join(dir, "ssh_config_dev")
			cmd := exec.Command(rsync, src, "abc0123def4:/srv/x")
			cmd.Env = append(os.Environ(), "RSYNC_RSH="+RsyncRSH(ssh, cfg))
			_ = cmd.Run() // the ssh double fails; its argv is what counts
			data, err := os.ReadFile(log)
			require.NoError(t, err, "rsync ran the ssh double (RSYNC_RSH=%s)", RsyncRSH(ssh, cfg))
			argv := strings.Split(string(data), "\n")
			require.GreaterOrEqual(t, len(argv), 3)
			assert.Equal(t, []string{"-F", cfg, "abc0123def4"}, argv[:3])
		})
	}
}

// writerFunc is a writer of a type == cannot compare.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestSameWriter: Up gives Progress and ScriptOut one lock when they are
// one writer (as the tests' shared strings.Builder); -race saw two
// locks write to one builder at once.
func TestSameWriter(t *testing.T) {
	var a, b strings.Builder
	f := writerFunc(func(p []byte) (int, error) { return len(p), nil })
	tests := []struct {
		name string
		x, y io.Writer
		want bool
	}{
		{"same", &a, &a, true},
		{"different", &a, &b, false},
		{"nil", nil, nil, false},
		{"one nil", &a, nil, false},
		{"uncomparable", f, f, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, sameWriter(tt.x, tt.y))
		})
	}
}
