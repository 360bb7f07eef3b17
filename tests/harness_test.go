// Package tests runs devhost end to end: the real binary (built once, with
// the devhosttest tag that lets it play several users unprivileged) against
// a sandbox state directory, with recording test doubles standing in for
// nix-build, nix-env, nixos-rebuild and systemctl.
package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/generator"
	"github.com/flyingcircusio/devhost/internal/hostconfig"
	"github.com/flyingcircusio/devhost/internal/lifecycle"
	"github.com/flyingcircusio/devhost/internal/registry"
	"github.com/flyingcircusio/devhost/templates"
	"github.com/flyingcircusio/devhost/tests/doubles/double"
	"github.com/flyingcircusio/devhost/tests/testbin"
)

// binDir holds devhost, its fc-build-dev-container link and the doubles.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "devhost-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer os.RemoveAll(dir)
	if err := testbin.Build(append([]testbin.Target{testbin.Devhost(dir)}, testbin.Doubles(dir)...)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := os.Symlink("devhost", filepath.Join(dir, "fc-build-dev-container")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	binDir = dir
	return m.Run()
}

// sandbox is one devhost: state, generated set, profiles and container
// roots in a temporary directory, and the doubles' record and control.
type sandbox struct {
	t         *testing.T
	dir       string
	cfgPath   string
	record    string
	control   string
	groupFile string
}

type sandboxOpts struct {
	bootstrapKey bool
	prefixes     []string
	timeout      string // commands.timeout, default 2m
}

const channel = "https://hydra.example.org/build/1/download/1/nixexprs.tar.xz"

func newSandbox(t *testing.T, o sandboxOpts) *sandbox {
	t.Helper()
	dir := t.TempDir()
	s := &sandbox{t: t, dir: dir, cfgPath: filepath.Join(dir, "devhost.hcl"),
		record: filepath.Join(dir, "record.jsonl"), control: filepath.Join(dir, "control.json"),
		groupFile: filepath.Join(dir, "group")}
	prefixes := ""
	if len(o.prefixes) > 0 {
		q := make([]string, len(o.prefixes))
		for i, p := range o.prefixes {
			q[i] = fmt.Sprintf("%q", p)
		}
		prefixes = "channels {\n  allowed_prefixes = [" + strings.Join(q, ", ") + "]\n}\n"
	}
	timeout := o.timeout
	if timeout == "" {
		timeout = "2m"
	}
	cfg := fmt.Sprintf(`public_address = "dev.example.com"
state_dir     = "state"
generated_dir = "generated"
profile_dir   = "profiles"
containers_dir = "containers"
system_profile = "system"
addresses {
  network      = "10.100.0.0/16"
  host_address = "10.100.0.1"
}
%s
compat {
  bootstrap_key = %t
}
access {
  groups      = ["users", "service"]
  admin_group = "wheel"
}
commands {
  rebuild        = [%q, "switch"]
  nix_build      = [%q]
  nix_env        = [%q]
  nix_instantiate = [%q]
  systemctl      = [%q]
  timeout        = %q
}
`, prefixes, o.bootstrapKey, filepath.Join(binDir, "nixos-rebuild"), filepath.Join(binDir, "nix-build"),
		filepath.Join(binDir, "nix-env"), filepath.Join(binDir, "nix-instantiate"), filepath.Join(binDir, "systemctl"), timeout)
	require.NoError(t, os.WriteFile(s.cfgPath, []byte(cfg), 0o644))
	require.NoError(t, os.WriteFile(s.groupFile, []byte(
		"users:x:100:alice,bob,carol,dave\nservice:x:900:svc\nwheel:x:10:carol\nnogroup:x:65534:mallory\n"), 0o644))
	return s
}

// localChannel makes a file:// channel named nixos-<release> in dir (a
// channeltest.Dir, which the channel policy accepts) whose nixpkgs lib says
// it is release: all of nixpkgs devhost evaluates before the build, which
// the nix-build double stands in for.
func localChannel(t testing.TB, dir, release string) string {
	ch := filepath.Join(dir, "nixos-"+release)
	writeChannelLib(t, ch, release)
	return "file://" + ch
}

// writeChannelLib gives the channel directory ch a nixpkgs lib of release.
func writeChannelLib(t testing.TB, ch, release string) {
	require.NoError(t, os.MkdirAll(filepath.Join(ch, "lib"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(ch, "lib", "default.nix"),
		[]byte("{ trivial.release = \""+release+"\"; }\n"), 0o644))
}

// configuration is the container's generated configuration.nix.
func (s *sandbox) configuration(name string) string {
	b, err := os.ReadFile(generator.ConfigurationPath(s.config(), name))
	require.NoError(s.t, err)
	return string(b)
}

func (s *sandbox) path(p ...string) string { return filepath.Join(append([]string{s.dir}, p...)...) }

// env is the environment of a devhost process run as user.
func (s *sandbox) env(user string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + s.dir,
		// The invoking environment's search path (root's, on a devhost),
		// which a container's restricted build must not see.
		"NIX_PATH=nixos-config=" + s.path("host", "configuration.nix"),
		"DEVHOST_CONFIG=" + s.cfgPath,
		"DEVHOST_DOUBLE_RECORD=" + s.record,
		"DEVHOST_DOUBLE_CONTROL=" + s.control,
		"DEVHOST_DOUBLE_STATE=" + s.path("double"),
		"DEVHOST_DOUBLE_GENERATED=" + s.path("generated"),
		"DEVHOST_DOUBLE_SYSTEM_PROFILE=" + s.path("system"),
		lifecycle.EnvTestUser + "=" + user,
		lifecycle.EnvTestGroupFile + "=" + s.groupFile,
		lifecycle.EnvTestHomes + "=" + s.path("homes"),
	}
	if ni, err := exec.LookPath("nix-instantiate"); err == nil {
		env = append(env, "DEVHOST_DOUBLE_NIX_INSTANTIATE="+ni)
	}
	return env
}

// result of one devhost run.
type result struct {
	code           int
	stdout, stderr string
	end            time.Time
}

// command prepares devhost (or argv0 = fc-build-dev-container) as user.
func (s *sandbox) command(ctx context.Context, user, argv0 string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, argv0), args...)
	cmd.Env = s.env(user)
	cmd.Dir = s.dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	return cmd, &out, &errb
}

func (s *sandbox) runAs(user string, args ...string) result {
	return s.runArgv0(user, "devhost", args...)
}

func (s *sandbox) runArgv0(user, argv0 string, args ...string) result {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd, out, errb := s.command(ctx, user, argv0, args...)
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), end: time.Now()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		s.t.Fatalf("run %v: %v", args, err)
	}
	return r
}

// ok runs devhost and requires success.
func (s *sandbox) ok(user string, args ...string) result {
	s.t.Helper()
	r := s.runAs(user, args...)
	require.Equalf(s.t, 0, r.code, "devhost %v\nstdout:\n%s\nstderr:\n%s", args, r.stdout, r.stderr)
	return r
}

// setControl tells the doubles how to behave.
func (s *sandbox) setControl(c map[string]double.Control) {
	s.t.Helper()
	b, err := json.Marshal(c)
	require.NoError(s.t, err)
	tmp := s.control + ".tmp"
	require.NoError(s.t, os.WriteFile(tmp, b, 0o644))
	require.NoError(s.t, os.Rename(tmp, s.control))
}

// argvs are the records' argument lists, in order.
func argvs(recs []double.Record) [][]string {
	out := make([][]string, len(recs))
	for i, r := range recs {
		out[i] = r.Argv
	}
	return out
}

// records returns the doubles' records, optionally only of one tool.
func (s *sandbox) records(tool string) []double.Record {
	s.t.Helper()
	f, err := os.Open(s.record)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(s.t, err)
	defer f.Close()
	var out []double.Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var r double.Record
		require.NoError(s.t, json.Unmarshal(sc.Bytes(), &r))
		if tool == "" || r.Tool == tool {
			out = append(out, r)
		}
	}
	require.NoError(s.t, sc.Err())
	return out
}

// successfulRebuilds are the nixos-rebuild runs that exited 0.
func (s *sandbox) successfulRebuilds() []double.Record {
	var out []double.Record
	for _, r := range s.records("nixos-rebuild") {
		if r.Exit == 0 {
			out = append(out, r)
		}
	}
	return out
}

func (s *sandbox) config() *hostconfig.Config {
	s.t.Helper()
	cfg, err := hostconfig.Load(s.cfgPath)
	require.NoError(s.t, err)
	return cfg
}

func (s *sandbox) registry() []*registry.Container {
	s.t.Helper()
	cs, err := registry.Open(s.config().StateDir).LoadAll()
	require.NoError(s.t, err)
	return cs
}

func (s *sandbox) entry(name string) *registry.Container {
	s.t.Helper()
	c, err := registry.Open(s.config().StateDir).Get(name)
	if err != nil {
		return nil
	}
	return c
}

// hostStatus is `devhost status --json`.
func (s *sandbox) hostStatus() lifecycle.HostStatus {
	s.t.Helper()
	r := s.ok("root", "status", "--json")
	var st lifecycle.HostStatus
	require.NoError(s.t, json.Unmarshal([]byte(r.stdout), &st))
	return st
}

// checkConsistent asserts that registry, generated set, profiles, build
// records and the lifecycle's bookkeeping agree, and nothing is pending.
func (s *sandbox) checkConsistent() {
	t := s.t
	t.Helper()
	cfg := s.config()
	cs := s.registry()
	names := map[string]bool{}
	for _, c := range cs {
		names[c.Name] = true
		target, err := os.Readlink(generator.ProfilePath(cfg, c.Name))
		require.NoErrorf(t, err, "container %s has no profile", c.Name)
		sys, err := filepath.EvalSymlinks(generator.ProfilePath(cfg, c.Name))
		require.NoErrorf(t, err, "profile of %s is dangling", c.Name)
		var inputs struct {
			Name string `json:"name"`
		}
		b, err := os.ReadFile(filepath.Join(sys, "inputs.json"))
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, &inputs))
		require.Equalf(t, c.Name, inputs.Name, "profile of %s holds another container's system", c.Name)
		var rec lifecycle.BuildRecord
		b, err = os.ReadFile(filepath.Join(cfg.StateDir, "lifecycle", "builds", c.Name+".json"))
		require.NoErrorf(t, err, "container %s has no build record", c.Name)
		require.NoError(t, json.Unmarshal(b, &rec))
		require.Equalf(t, target, rec.Profile, "build record of %s disagrees with its profile", c.Name)
	}
	profiles, _ := os.ReadDir(cfg.ProfileDir)
	for _, p := range profiles {
		require.Truef(t, names[p.Name()], "profile of unregistered container %s left behind", p.Name())
	}
	builds, _ := os.ReadDir(filepath.Join(cfg.StateDir, "lifecycle", "builds"))
	for _, b := range builds {
		n := strings.TrimSuffix(b.Name(), ".json")
		require.Truef(t, names[n], "build record of unregistered container %s left behind", n)
	}
	for _, dir := range []string{"intents", "ops"} {
		ops, _ := filepath.Glob(filepath.Join(cfg.StateDir, "lifecycle", dir, "*.json"))
		require.Emptyf(t, ops, "intents left behind in %s", dir)
	}

	st := s.hostStatus()
	require.False(t, st.Pending, "registry changes not applied")
	require.True(t, st.SetMatchesApplied, "generated set on disk is not the applied one")
	require.False(t, st.RebuildInterrupted)
	require.Empty(t, st.Interrupted)

	tmpl, err := templates.Load("")
	require.NoError(t, err)
	want, err := generator.Generate(cfg, cs, tmpl)
	require.NoError(t, err)
	live, err := lifecycle.ReadSet(cfg.GeneratedDir)
	require.NoError(t, err)
	require.NotNil(t, live, "no generated set")
	require.Equal(t, want.HostDigest(), live.HostDigest(), "host side of the generated set disagrees with the registry")
}

// fullRender is the registry rendered whole, as `devhost apply --full`
// writes it for containers shared with no one (the keys of the users a
// container is shared with are lifecycle's to read).
func (s *sandbox) fullRender() *generator.Set {
	s.t.Helper()
	tmpl, err := templates.Load("")
	require.NoError(s.t, err)
	set, err := generator.Generate(s.config(), s.registry(), tmpl)
	require.NoError(s.t, err)
	return set
}

// requireSameSet fails unless sets want and got hold the same files with
// the same bytes, naming the first file that differs.
func requireSameSet(t *testing.T, want, got *generator.Set, msg string) {
	t.Helper()
	for _, p := range want.Paths() {
		b, ok := got.Files[p]
		require.Truef(t, ok, "%s: %s is missing", msg, p)
		require.Equalf(t, string(want.Files[p]), string(b), "%s: %s differs", msg, p)
	}
	for _, p := range got.Paths() {
		_, ok := want.Files[p]
		require.Falsef(t, !ok, "%s: %s should not be there", msg, p)
	}
}

// setNames are the containers declared in a rebuild record's set.
func setNames(r double.Record) map[string]bool {
	out := map[string]bool{}
	files, _ := r.Extra["files"].([]any)
	for _, f := range files {
		s, _ := f.(string)
		if n, ok := strings.CutPrefix(s, "containers/"); ok {
			out[strings.TrimSuffix(n, ".nix")] = true
		}
	}
	return out
}
