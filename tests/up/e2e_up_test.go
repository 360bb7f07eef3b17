// Package up runs `devhost up` end to end over real ssh, without network.
//
// The devhost is a real OpenSSH sshd on 127.0.0.1 (a free port, a
// throwaway host key, its own authorized keys and each person's
// ~/.ssh/authorized_keys in their home) running the real devhost
// binary (as shipped, without the devhosttest tag) through real sudo
// (Debian's /usr/bin/sudo, setuid root) with the lifecycle's test doubles
// for nix-build, nix-env and nixos-rebuild, and containerctl
// (./containerctl) for systemctl.
//
// The laptop logs in as a real unprivileged user, jane.doe, a member of
// the devhost group "users". The sshd's /etc is the machine's with a
// read-only overlay: the sudoers file is exactly what NixOS' own sudo
// module (DEVHOST_E2E_NIXOS, nixos/modules/security/sudo.nix) makes of the
// devhost module's security.sudo.extraRules (testdata/sudoers.nix, checked
// with visudo -c), /etc/devhost/devhost.hcl is the host configuration, and
// passwd, group and shadow hold the test's people (sudo_test.go). So
// devhost learns its caller from the SUDO_USER real sudo sets and that
// user's real groups, and a command the module does not allow is refused
// by sudo itself. The namespaces are mount and network only: the user
// namespace is the machine's, so sudo stays setuid root.
//
// The stand-in for a container: the sshd runs in a private mount namespace
// (unshare -m) whose /etc/hosts is the test's own file.
// The sshd also has its own network namespace (unshare -n) in which the
// whole pool 10.100.0.0/24 is local (ip route add local … dev lo), so
// containers' addresses are real, reachable addresses; the laptop side
// (devhost up, ssh) runs in that network namespace too (nsenter --net).
// When devhost starts container@NAME, containerctl gives the
// container a root directory, maps its name to its address in the test's
// /etc/hosts and authorises its registry ssh keys. A session arriving on
// that address as "developer" (uid 0 in the test's passwd) is chrooted into
// the container's root (sshd's Match LocalAddress + ChrootDirectory). So
// ssh_config_dev's ProxyJump to the devhost, then ssh to <name>, reaches a
// directory tree that COPY, RUN and ECHO really write into, and pinned host
// keys are really checked (StrictHostKeyChecking yes).
//
// It needs root (sshd, mount namespaces); it is skipped, with the reason,
// when sshd, rsync, unshare, sudo, Nix, NIXPKGS_LIB, DEVHOST_E2E_NIXOS or
// root are missing. CI installs openssh-server and sudo and runs it as root.
package up

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flyingcircusio/devhost/internal/registry"
	"github.com/flyingcircusio/devhost/tests/testbin"
)

// binDir holds devhost, the doubles and containerctl, built once.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "devhost-up-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer os.RemoveAll(dir)
	targets := append([]testbin.Target{
		testbin.Release(dir),
		{Out: filepath.Join(dir, "containerctl"), Pkg: "github.com/flyingcircusio/devhost/tests/up/containerctl"},
	}, testbin.Doubles(filepath.Join(dir, "doubles"))...)
	if err := testbin.Build(targets); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	binDir = dir
	return m.Run()
}

// e2e is one devhost behind a real sshd, and one deployment (a copy of
// examples/shop) on the "laptop".
type e2e struct {
	t      *testing.T
	base   string // the devhost's sandbox (root-owned path, for ChrootDirectory)
	port   int
	netns  string // the sshd's network namespace, where the laptop side runs too
	deploy string // deployment root
	user   string // whom the laptop logs in as on the devhost
	home   string
	tmp    string // TMPDIR of devhost up: where its wrapper lives
	env    []string
	secret string // from secrets.cfg.age
	plain  string // the ECHO'd override from environment.cfg
}

const (
	firstAddr = 2  // 10.100.0.2 …
	lastAddr  = 16 // … 10.100.0.16: sshd listens on at most 16 sockets (MAX_LISTEN_SOCKS), one is the devhost's
	sshPort   = 2222
	poolNet   = "10.100.0.0/24"
)

func need(t *testing.T) (sshd string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the end-to-end test of devhost up needs root: it runs sshd in a private mount namespace (CI runs it as root)")
	}
	sshd = "/usr/sbin/sshd"
	if _, err := os.Stat(sshd); err != nil {
		p, err := exec.LookPath("sshd")
		if err != nil {
			t.Skip("sshd not found: install openssh-server (apt-get install -y openssh-server openssh-client rsync) to run the end-to-end test of devhost up")
		}
		sshd = p
	}
	for _, tool := range []string{"ssh", "ssh-keygen", "rsync", "unshare", "nsenter", "ip", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install openssh-client, rsync, util-linux and iproute2 to run the end-to-end test of devhost up", tool)
		}
	}
	if out, err := exec.Command("unshare", "-m", "-n", "true").CombinedOutput(); err != nil {
		t.Skipf("cannot create mount and network namespaces here (unshare -m -n: %v: %s); the end-to-end test of devhost up needs them (root with CAP_SYS_ADMIN)", err, strings.TrimSpace(string(out)))
	}
	return sshd
}

// rootOwnedTemp makes a directory whose every path component is owned by
// root and writable only by root, as sshd's ChrootDirectory demands (so not
// under /tmp).
func rootOwnedTemp(t *testing.T) string {
	t.Helper()
	for _, parent := range []string{"/run", "/var/lib"} {
		fi, err := os.Stat(parent)
		if err != nil {
			continue
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || st.Uid != 0 || fi.Mode().Perm()&0o022 != 0 {
			continue
		}
		dir, err := os.MkdirTemp(parent, "devhost-up-e2e-")
		require.NoError(t, err)
		require.NoError(t, os.Chmod(dir, 0o755))
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
		return dir
	}
	t.Skip("no root-owned directory (/run, /var/lib) for the containers' chroots")
	return ""
}

func write(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), mode))
	require.NoError(t, os.Chmod(path, mode))
}

func runCmd(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %v: %s", name, args, out)
	return string(out)
}

// containerSudo is sudo inside the stand-in containers, where the session
// is uid 0 "developer" already (a NixOS container's developer may run
// everything with sudo): it drops sudo's options and runs the command. The
// devhost's own sudo is the real one.
const containerSudo = `#!/bin/sh
while :; do
  case "$1" in
    -n|-i|-E|-H) shift ;;
    -u) shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
exec "$@"
`

// e2eOpts vary the devhost.
type e2eOpts struct {
	// bootstrapKey authorises batou 2.3–2.5's well-known key in every
	// container (compat.bootstrap_key), which batou's built-in provisioner needs.
	bootstrapKey bool
}

func newE2E(t *testing.T, o e2eOpts) *e2e {
	sshd := need(t)
	if _, err := os.Stat("/run/sshd"); err != nil {
		// sshd's privilege separation directory (the package's service
		// creates it on boot).
		require.NoError(t, os.MkdirAll("/run/sshd", 0o755))
	}
	e := &e2e{t: t, base: rootOwnedTemp(t), port: sshPort, user: member, home: t.TempDir(), tmp: t.TempDir(),
		secret: "age-secret-" + fmt.Sprint(time.Now().UnixNano()), plain: "also-not-real"}
	b := e.path

	// Keys: the sshd's host key (also every container's), the laptop
	// user's key for the devhost.
	require.NoError(t, os.MkdirAll(b("keys"), 0o755))
	runCmd(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "e2e-host", "-f", b("keys", "host_ed25519"))
	runCmd(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "e2e-user", "-f", b("keys", "user"))
	runCmd(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "e2e-stranger", "-f", b("keys", "stranger"))
	userPub, err := os.ReadFile(b("keys", "user.pub"))
	require.NoError(t, err)
	write(t, b("keys", "devhost_authorized_keys"), string(userPub), 0o644)
	hostPub, err := os.ReadFile(b("keys", "host_ed25519.pub"))
	require.NoError(t, err)
	hostKey := strings.Join(strings.Fields(string(hostPub))[:2], " ")
	write(t, b("keys", "devhost_known_hosts"), fmt.Sprintf("[127.0.0.1]:%d %s\n", e.port, hostKey), 0o644)

	// The devhost package as the module's sudo rules name it: devhost and
	// its compatibility name (a second link to the same file, as the
	// package installs it) in <pkg>/bin. A nixos-container double lists the
	// containers. The containers' /usr/local/bin: sudo and an fc-manage
	// double that records its runs in the container.
	require.NoError(t, os.MkdirAll(b("pkg", "bin"), 0o755))
	data, err := os.ReadFile(filepath.Join(binDir, "devhost"))
	require.NoError(t, err)
	write(t, b("pkg", "bin", "devhost"), string(data), 0o755)
	require.NoError(t, os.Link(b("pkg", "bin", "devhost"), b("pkg", "bin", "fc-build-dev-container")))
	write(t, b("bin", "nixos-container"), "#!/bin/sh\n[ \"$1\" = list ] || exit 2\ncd "+b("containers")+" 2>/dev/null || exit 0\nfor f in *; do [ -d \"$f\" ] && echo \"$f\"; done\nexit 0\n", 0o755)
	write(t, b("cbin", "sudo"), containerSudo, 0o755)
	write(t, b("cbin", "fc-manage"), "#!/bin/sh\necho \"fc-manage $*\" >> /fc-manage.log\nif [ -e /etc/local/nixos/fail-rebuild ]; then echo 'error: attribute missing' >&2; exit 1; fi\necho 'building the system configuration...'\n", 0o755)

	// The host's programs devhost runs as root: the doubles, told where
	// to record by a wrapper each (sudo hands devhost, and so its
	// commands, none of the session's environment).
	doubleEnv := strings.Join([]string{
		"DEVHOST_DOUBLE_RECORD=" + b("record.jsonl"),
		"DEVHOST_DOUBLE_STATE=" + b("double"),
		"DEVHOST_DOUBLE_GENERATED=" + b("generated"),
		"E2E_SANDBOX=" + e.base,
		"E2E_SYSTEMCTL=" + filepath.Join(binDir, "doubles", "systemctl"),
		"E2E_SERVICE_USERS=s-shop",
		"DEVHOST_CONFIG=" + b("etc", "devhost", "devhost.hcl"), // for containerctl
		"DEVHOST_DOUBLE_NIX_INSTANTIATE=" + realNixInstantiate(),
	}, " ")
	for name, prog := range map[string]string{
		"nixos-rebuild":   filepath.Join(binDir, "doubles", "nixos-rebuild"),
		"nix-build":       filepath.Join(binDir, "doubles", "nix-build"),
		"nix-env":         filepath.Join(binDir, "doubles", "nix-env"),
		"nix-instantiate": filepath.Join(binDir, "doubles", "nix-instantiate"),
		"systemctl":       filepath.Join(binDir, "containerctl"),
	} {
		write(t, b("sbin", name), "#!/bin/sh\nexport "+doubleEnv+"\nexec "+prog+" \"$@\"\n", 0o755)
	}

	// The sshd's /etc is the machine's with a layer over it (etc/):
	// /etc/devhost/devhost.hcl, the module's sudoers, and the accounts.
	moduleSudoers(t, b("pkg"), b("etc"))
	accounts(t, b("etc"), b("home"))
	write(t, b("etc", "devhost", "devhost.hcl"), fmt.Sprintf(`public_address = "dev.example.com"
state_dir     = %q
generated_dir = %q
profile_dir   = %q
containers_dir = %q
addresses {
  network      = "10.100.0.0/24"
  host_address = "10.100.0.1"
}
access {
  groups      = ["users"]
  admin_group = "wheel"
}
compat {
  bootstrap_key = %t
}
commands {
  rebuild   = [%q, "switch"]
  nix_build = [%q]
  nix_env   = [%q]
  nix_instantiate = [%q]
  systemctl = [%q]
  timeout   = "2m"
}
`, b("state"), b("generated"), b("profiles"), b("containers"), o.bootstrapKey,
		b("sbin", "nixos-rebuild"), b("sbin", "nix-build"), b("sbin", "nix-env"), b("sbin", "nix-instantiate"), b("sbin", "systemctl")), 0o644)
	// /etc/hosts: bind-mounted over the layer, since containerctl adds
	// the containers' lines in place.
	// The machine's name resolves, as sudo wants it to.
	hostname, err := os.Hostname()
	require.NoError(t, err)
	write(t, b("hosts"), "127.0.0.1 localhost "+hostname+"\n", 0o644)

	var cfg strings.Builder
	fmt.Fprintf(&cfg, "ListenAddress 127.0.0.1:%d\n", e.port)
	for i := firstAddr; i <= lastAddr; i++ {
		fmt.Fprintf(&cfg, "ListenAddress 10.100.0.%d:%d\n", i, e.port)
	}
	// A session's PATH finds devhost as /run/current-system/sw/bin does on
	// NixOS, and /usr/bin/sudo (Debian's, setuid root).
	env := []string{"PATH=" + b("pkg", "bin") + ":" + b("bin") + ":/usr/bin:/bin"}
	fmt.Fprintf(&cfg, `HostKey %s
PidFile none
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
LogLevel VERBOSE
AuthorizedKeysFile %s .ssh/authorized_keys
SetEnv %s
`, b("keys", "host_ed25519"), b("keys", "devhost_authorized_keys"), strings.Join(env, " "))
	for i := firstAddr; i <= lastAddr; i++ {
		addr := fmt.Sprintf("10.100.0.%d", i)
		fmt.Fprintf(&cfg, `Match LocalAddress %s
    ChrootDirectory %s
    AuthorizedKeysFile %s
    SetEnv PATH=/usr/local/bin:/usr/bin:/bin
`, addr, b("chroot", addr), b("ckeys", addr))
	}
	write(t, b("sshd_config"), cfg.String(), 0o644)
	runCmd(t, sshd, "-t", "-f", b("sshd_config"))

	// The namespace's /etc: a read-only overlay of etc/ on the machine's
	// /etc (so /etc/devhost, which the machine lacks, can exist there), and
	// the hosts file bind-mounted on top. Only mount and network
	// namespaces: the user namespace is the machine's, so /usr/bin/sudo
	// stays setuid root for the sessions.
	cmd := exec.Command("unshare", "-m", "-n", "--propagation", "private", "--", "sh", "-c",
		`ip link set lo up && ip route add local "$6" dev lo && mount -t overlay overlay -o "lowerdir=$2:/etc" /etc && mount --bind "$1" /etc/hosts && exec "$3" -D -f "$4" -E "$5"`,
		"sh", b("hosts"), b("etc"), sshd, b("sshd_config"), b("sshd.log"), poolNet)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	e.netns = fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)
	up := func() bool {
		return strings.Contains(readOr(b("sshd.log")), fmt.Sprintf("Server listening on 127.0.0.1 port %d.", e.port))
	}
	deadline := time.Now().Add(10 * time.Second)
	for !up() {
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not start:\n%s", readOr(b("sshd.log")))
		}
		time.Sleep(50 * time.Millisecond)
	}

	e.deployment()
	return e
}

func (e *e2e) path(p ...string) string { return filepath.Join(append([]string{e.base}, p...)...) }

// deployment copies examples/shop, gives its dev environment an age
// secret that provision.sh ECHOes too, and a local ssh_config that says
// how to reach the devhost (batou includes it, and so does devhost).
func (e *e2e) deployment() {
	t := e.t
	e.deploy = filepath.Join(t.TempDir(), "shop")
	copyTree(t, "../../examples/shop", e.deploy)

	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	idFile := filepath.Join(e.home, "age-identity.txt")
	write(t, idFile, id.String()+"\n", 0o600)
	var enc bytes.Buffer
	w, err := age.Encrypt(&enc, id.Recipient())
	require.NoError(t, err)
	_, err = fmt.Fprintf(w, "[batou]\nmembers = e2e\n\n[component:redis]\npassword = %s\n", e.secret)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	write(t, filepath.Join(e.deploy, "environments", "dev", "secrets.cfg.age"), enc.String(), 0o644)
	f, err := os.OpenFile(filepath.Join(e.deploy, "environments", "dev", "provision.sh"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("ECHO \"$COMPONENT_REDIS_PASSWORD\" /etc/local/nixos/redis.passwd\nRUN echo provisioned \"$PROVISION_CONTAINER\"\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())

	e.writeLocalSSHConfig(e.port, e.path("keys", "user"))
	e.env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + e.home, "TMPDIR=" + e.tmp, "LANG=C.UTF-8",
		"BATOU_AGE_IDENTITIES=" + idFile,
	}
}

func (e *e2e) writeLocalSSHConfig(port int, key string) {
	write(e.t, filepath.Join(e.deploy, "ssh_config"), fmt.Sprintf(`Host dev.example.com
    HostName 127.0.0.1
    User %s
    IdentityFile %s
    UserKnownHostsFile %s
    StrictHostKeyChecking yes
Host *
    Port %d
    IdentitiesOnly yes
    BatchMode yes
    ConnectTimeout 5
    LogLevel ERROR
`, e.user, key, e.path("keys", "devhost_known_hosts"), port), 0o644)
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	}))
}

// sampler reads every process' command line until stopped and keeps those
// containing one of the needles: the "process table" a secret must not
// appear in.
type sampler struct {
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	hits    []string
	samples int
}

func startSampler(needles ...string) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.stop:
				return
			default:
			}
			ms, _ := filepath.Glob("/proc/[0-9]*/cmdline")
			for _, m := range ms {
				b, err := os.ReadFile(m)
				if err != nil {
					continue
				}
				for _, n := range needles {
					if bytes.Contains(b, []byte(n)) {
						s.mu.Lock()
						s.hits = append(s.hits, m+": "+strings.ReplaceAll(string(b), "\x00", " "))
						s.mu.Unlock()
					}
				}
			}
			s.mu.Lock()
			s.samples++
			s.mu.Unlock()
			time.Sleep(time.Millisecond)
		}
	}()
	return s
}

func (s *sampler) finish() (hits []string, samples int) {
	close(s.stop)
	<-s.done
	return s.hits, s.samples
}

type result struct {
	stdout, stderr string
	code           int
}

// up runs the real devhost binary on the laptop side.
func (e *e2e) up(args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + e.netns, "--", filepath.Join(binDir, "devhost"), "up"}, args...)...)
	cmd.Dir = e.deploy
	cmd.Env = e.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		require.ErrorAs(e.t, err, &ee, "devhost up")
		code = ee.ExitCode()
	}
	return result{stdout.String(), stderr.String(), code}
}

func (e *e2e) hostmap() map[string]string {
	data, err := os.ReadFile(filepath.Join(e.deploy, "environments", "dev", "hostmap.json"))
	require.NoError(e.t, err)
	m := map[string]string{}
	require.NoError(e.t, json.Unmarshal(data, &m))
	return m
}

// containerFile reads a file in a container, through its chroot view's
// underlying directory.
func (e *e2e) containerFile(name, path string) string {
	data, err := os.ReadFile(filepath.Join(e.path("containers", name), path))
	require.NoError(e.t, err, "container %s: %s", name, path)
	return string(data)
}

func (e *e2e) sshConfigDev() string {
	data, err := os.ReadFile(filepath.Join(e.deploy, "ssh_config_dev"))
	require.NoError(e.t, err)
	return string(data)
}

// snapshot lists every file under dirs with its content, to prove that a
// refused run changed nothing.
func snapshot(t *testing.T, dirs ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, d := range dirs {
		_ = filepath.WalkDir(d, func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if de.Type().IsRegular() {
				data, _ := os.ReadFile(p)
				out[p] = string(data)
			} else {
				out[p] = de.Type().String()
			}
			return nil
		})
	}
	return out
}

var hexName = regexp.MustCompile(`^[0-9a-f]{11}$`)

func TestUpShopEndToEnd(t *testing.T) {
	e := newE2E(t, e2eOpts{})

	// 1. devhost up dev, watched by the process-table sampler.
	s := startSampler(e.secret, e.plain)
	r := e.up("dev")
	hits, samples := s.finish()
	transcript := "$ devhost up dev\n" + r.stderr + r.stdout
	t.Logf("transcript:\n%s", transcript)
	if p := os.Getenv("DEVHOST_E2E_TRANSCRIPT"); p != "" {
		_ = os.WriteFile(p, []byte(transcript), 0o644)
	}
	require.Equal(t, 0, r.code, "devhost up dev failed:\n%s\nsshd log: %s", transcript, e.path("sshd.log"))
	assert.Empty(t, hits, "a secret appeared in a process' command line")
	assert.Greater(t, samples, 10, "the sampler ran during the run")

	// Names: reserved on the devhost, remembered as batou does.
	hm := e.hostmap()
	web, db := hm["web"], hm["db"]
	assert.Regexp(t, hexName, web)
	assert.Regexp(t, hexName, db)
	assert.NotEqual(t, web, db)
	raw, err := os.ReadFile(filepath.Join(e.deploy, "environments", "dev", "hostmap.json"))
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf(`{"web": %q, "db": %q, "legacy": "legacy"}`, web, db), string(raw))

	// Registry entries and reservations on the devhost.
	reg := registry.Open(e.path("state"))
	all, err := reg.LoadAll()
	require.NoError(t, err)
	var regNames []string
	for _, c := range all {
		regNames = append(regNames, c.Name)
	}
	want := []string{web, db}
	sort.Strings(want)
	assert.Equal(t, want, regNames)
	userKey, err := os.ReadFile(filepath.Join(e.deploy, "ssh_key_dev.pub"))
	require.NoError(t, err)
	wc, err := reg.Get(web)
	require.NoError(t, err)
	assert.Equal(t, "dev", wc.Environment)
	assert.Equal(t, []string{"shop", "admin", "api"}, wc.Aliases)
	assert.Equal(t, "s-shop", wc.ServiceUser)
	assert.Equal(t, []string{strings.TrimSpace(string(userKey))}, wc.SSHKeys)
	for _, n := range []string{web, db} {
		// Reserved by `devhost reserve`, then the registry entry replaced
		// the reservation (ensure consumes it).
		c, err := reg.Get(n)
		require.NoError(t, err)
		assert.Equal(t, member, c.Owner, "the caller sudo names")
		assert.NoFileExists(t, e.path("state", "reservations", n+".json"))
	}

	// Key: private half 0600 in the deployment root.
	fi, err := os.Stat(filepath.Join(e.deploy, "ssh_key_dev"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	// ssh_config_dev in batou's layout, host keys pinned.
	block := func(real, name string) string {
		return fmt.Sprintf(`
Host %s %s
    HostName %s
    ProxyJump dev.example.com
    User developer
    IdentityFile %s
    IdentitiesOnly yes
    StrictHostKeyChecking yes
    UserKnownHostsFile %s
    HostKeyAlias %s
`, real, name, real, filepath.Join(e.deploy, "ssh_key_dev"), filepath.Join(e.deploy, "ssh_known_hosts_dev"), real)
	}
	assert.Equal(t, block(web, "web")+"\n"+block(db, "db")+"\nHost *\n  Include "+filepath.Join(e.deploy, "ssh_config")+"\n", e.sshConfigDev())
	hostPub, err := os.ReadFile(e.path("keys", "host_ed25519.pub"))
	require.NoError(t, err)
	hk := strings.Join(strings.Fields(string(hostPub))[:2], " ")
	kh, err := os.ReadFile(filepath.Join(e.deploy, "ssh_known_hosts_dev"))
	require.NoError(t, err)
	wantKH := []string{web + " " + hk, db + " " + hk}
	sort.Strings(wantKH)
	assert.Equal(t, strings.Join(wantKH, "\n")+"\n", string(kh))

	// What provision.sh did in each container: COPY, RUN, ECHO, and the
	// provision.nix batou copies; then the container's own rebuild.
	schema, err := os.ReadFile(filepath.Join(e.deploy, "environments", "dev", "seed", "schema.sql"))
	require.NoError(t, err)
	nix, err := os.ReadFile(filepath.Join(e.deploy, "environments", "dev", "provision.nix"))
	require.NoError(t, err)
	for _, n := range []string{web, db} {
		assert.Equal(t, string(schema), e.containerFile(n, "srv/s-shop/schema.sql"))
		assert.Equal(t, string(nix), e.containerFile(n, "etc/local/nixos/provision-container.nix"))
		assert.DirExists(t, filepath.Join(e.path("containers", n), "srv/s-shop/uploads"))
		assert.Equal(t, e.plain+"\n", e.containerFile(n, "etc/local/nixos/postgres.passwd"))
		assert.Equal(t, e.secret+"\n", e.containerFile(n, "etc/local/nixos/redis.passwd"))
		assert.Equal(t, "fc-manage -c\n", e.containerFile(n, "fc-manage.log"))
		assert.Contains(t, r.stderr, "provisioned "+n+"\n", "RUN's output")
	}
	// Progress: each host's phases, as the devhost reported them over ssh
	// (--progress=json) and up shows them off a terminal, one plain line
	// per phase with the host's name; provision.sh's lines carry it too.
	for _, h := range []string{"web", "db"} {
		for _, phase := range []string{": request validated (", ": building the container's system", ": system built: ",
			": waiting for the host rebuild (", ": host rebuild done", ": starting the container (", ": provisioning: provision.sh (", ": done ("} {
			assert.Contains(t, r.stderr, "\n"+h+phase, "progress of "+h)
		}
		assert.Regexp(t, `(?m)^  `+h+`\| `, r.stderr, "provision.sh's output of "+h)
		assert.Less(t, strings.Index(r.stderr, h+": request validated"), strings.Index(r.stderr, h+": done ("))
	}

	// The summary.
	assert.Contains(t, r.stdout, "https://shop."+web+".dev.example.com/")
	assert.Contains(t, r.stdout, "https://"+db+".dev.example.com/")

	// The secrets are in no log: devhost's output, the sshd's log, the
	// doubles' record; the wrapper is gone.
	for name, content := range map[string]string{"stdout": r.stdout, "stderr": r.stderr,
		"sshd log": readOr(e.path("sshd.log")), "doubles' record": readOr(e.path("record.jsonl"))} {
		assert.NotContains(t, content, e.secret, name)
		assert.NotContains(t, content, e.plain, name)
	}
	left, err := os.ReadDir(e.tmp)
	require.NoError(t, err)
	assert.Empty(t, left, "the provision wrapper was removed")

	// The pinned ssh_config works as users use it.
	out, err := e.ssh("web", "cat /srv/s-shop/schema.sql")
	require.NoError(t, err, out)
	assert.Equal(t, string(schema), out)

	// 2. --rebuild: containers destroyed and made again, key rotated, names kept.
	oldKey := string(userKey)
	write(t, filepath.Join(e.path("containers", web), "srv/s-shop/stale"), "x", 0o644)
	r = e.up("dev", "--rebuild")
	require.Equal(t, 0, r.code, "devhost up dev --rebuild:\n%s%s", r.stderr, r.stdout)
	assert.Equal(t, hm, e.hostmap(), "names kept")
	newKey, err := os.ReadFile(filepath.Join(e.deploy, "ssh_key_dev.pub"))
	require.NoError(t, err)
	assert.NotEqual(t, oldKey, string(newKey), "key rotated")
	assert.NoFileExists(t, filepath.Join(e.path("containers", web), "srv/s-shop/stale"), "container destroyed first")
	assert.Equal(t, e.secret+"\n", e.containerFile(web, "etc/local/nixos/redis.passwd"))
	wc, err = reg.Get(web)
	require.NoError(t, err)
	assert.Equal(t, []string{strings.TrimSpace(string(newKey))}, wc.SSHKeys)
	out, err = e.ssh("db", "cat /etc/local/nixos/provision-container.nix")
	require.NoError(t, err, out)
	assert.Equal(t, string(nix), out)

	// 3. A failing rebuild inside a container: loud warning, or fatal with --strict.
	write(t, filepath.Join(e.path("containers", web), "etc/local/nixos/fail-rebuild"), "", 0o644)
	r = e.up("dev", "--host", "web")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "the rebuild inside the container failed with exit status 1")
	assert.Contains(t, r.stderr, "error: attribute missing")
	r = e.up("dev", "--host", "web", "--strict")
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "(--strict)")
	require.NoError(t, os.Remove(filepath.Join(e.path("containers", web), "etc/local/nixos/fail-rebuild")))

	// 4. The broken environment is refused before anything is touched.
	before := snapshot(t, e.deploy, e.path("state"), e.path("containers"))
	recBefore := readOr(e.path("record.jsonl"))
	r = e.up("broken")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "5 error(s); nothing was changed")
	assert.Contains(t, r.stderr, "environments/broken/environment.cfg:7:")
	assert.Contains(t, r.stderr, "environments/broken/provision.nix:4:39")
	assert.Equal(t, before, snapshot(t, e.deploy, e.path("state"), e.path("containers")))
	assert.Equal(t, recBefore, readOr(e.path("record.jsonl")), "no devhost command ran")

	// 5. Bad input, one clear message each; the next run recovers.
	t.Run("devhost unreachable", func(t *testing.T) {
		defer e.writeLocalSSHConfig(e.port, e.path("keys", "user"))
		e.writeLocalSSHConfig(sshPort+1, e.path("keys", "user"))
		require.NoError(t, os.Remove(filepath.Join(e.deploy, "environments", "dev", "hostmap.json")))
		defer func() {
			// batou's file as it was: the names stay the same.
			write(t, filepath.Join(e.deploy, "environments", "dev", "hostmap.json"), string(raw), 0o644)
		}()
		r := e.up("dev")
		assert.Equal(t, 2, r.code)
		assert.Contains(t, r.stderr, "dev.example.com: cannot reserve a name: the devhost cannot be reached")
		assert.Equal(t, 1, strings.Count(r.stderr, "\ndevhost: ")+strings.Count(r.stderr[:min(len(r.stderr), 9)], "devhost: "), "one message: %s", r.stderr)
	})
	t.Run("ssh key refused", func(t *testing.T) {
		defer e.writeLocalSSHConfig(e.port, e.path("keys", "user"))
		e.writeLocalSSHConfig(e.port, e.path("keys", "stranger"))
		r := e.up("dev")
		assert.Equal(t, 2, r.code)
		assert.Contains(t, r.stderr, "the devhost refused the ssh key")
	})
	t.Run("name reserved by someone else", func(t *testing.T) {
		hmPath := filepath.Join(e.deploy, "environments", "dev", "hostmap.json")
		defer write(t, hmPath, string(raw), 0o644)
		// alice, another member, deploys with jane.doe's reservation.
		defer func() { e.user = member; e.writeLocalSSHConfig(e.port, e.path("keys", "user")) }()
		e.user = otherMember
		e.writeLocalSSHConfig(e.port, e.path("keys", "user"))
		write(t, e.path("state", "reservations", "b0b0b0b0b0b.json"), `{"name":"b0b0b0b0b0b","owner":"`+member+`","created":"2026-11-25T00:00:00Z"}`+"\n", 0o644)
		write(t, hmPath, `{"web": "b0b0b0b0b0b", "db": "`+db+`", "legacy": "legacy"}`, 0o644)
		r := e.up("dev", "--host", "web")
		assert.Equal(t, 1, r.code, r.stderr)
		assert.Contains(t, r.stderr, `cannot ensure container b0b0b0b0b0b: the devhost refused`)
		assert.Contains(t, r.stderr, `user "alice" may not use the reserved name`)
		_, err := reg.Get("b0b0b0b0b0b")
		assert.ErrorIs(t, err, registry.ErrNotFound)
	})
	t.Run("provision.sh fails", func(t *testing.T) {
		sh := filepath.Join(e.deploy, "environments", "dev", "provision.sh")
		orig, err := os.ReadFile(sh)
		require.NoError(t, err)
		defer write(t, sh, string(orig), 0o644)
		write(t, sh, "# seed\nRUN true\nRUN test -e /no/such/file\nRUN echo never\n", 0o644)
		r := e.up("dev", "--host", "db")
		assert.Equal(t, 2, r.code)
		assert.Contains(t, r.stderr, `environments/dev/provision.sh:3: "RUN test -e /no/such/file" failed with exit status 1`)
		assert.NotContains(t, r.stderr, "never")
		left, _ := os.ReadDir(e.tmp)
		assert.Empty(t, left, "wrapper removed")
	})
	t.Run("sudo rules", func(t *testing.T) { e.sudoRules(t, web) })
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP} {
		t.Run("interrupted by "+sig.String(), func(t *testing.T) { e.interrupted(t, sig) })
	}
	r = e.up("dev")
	require.Equal(t, 0, r.code, "the next run recovers:\n%s", r.stderr)
}

// interrupted stops `devhost up` with sig (Ctrl-C, kill, the terminal
// closing) while provision.sh runs: the wrapper is gone, hostmap.json
// unchanged, one clear message.
func (e *e2e) interrupted(t *testing.T, sig os.Signal) {
	sh := filepath.Join(e.deploy, "environments", "dev", "provision.sh")
	orig, err := os.ReadFile(sh)
	require.NoError(t, err)
	defer write(t, sh, string(orig), 0o644)
	write(t, sh, "RUN sleep 20\n", 0o644)
	hmBefore := readOr(filepath.Join(e.deploy, "environments", "dev", "hostmap.json"))
	cmd := exec.Command("nsenter", "--net="+e.netns, "--", filepath.Join(binDir, "devhost"), "up", "dev", "--host", "web")
	cmd.Dir, cmd.Env = e.deploy, e.env
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	// The signal once the wrapper runs (nsenter execs devhost: same pid).
	require.Eventually(t, func() bool {
		left, _ := os.ReadDir(e.tmp)
		return len(left) == 1 && strings.Contains(stderr.String(), "running provision.sh")
	}, 60*time.Second, 20*time.Millisecond)
	require.NoError(t, cmd.Process.Signal(sig))
	err = cmd.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 2, ee.ExitCode(), "%s", ee)
	assert.Contains(t, stderr.String(), "interrupted; the next `devhost up dev` continues from here")
	left, _ := os.ReadDir(e.tmp)
	assert.Empty(t, left, "wrapper removed")
	assert.Equal(t, hmBefore, readOr(filepath.Join(e.deploy, "environments", "dev", "hostmap.json")))
}

// sudoRules: with exactly the module's sudoers, a member may run what
// devhost up and batou run and nothing an administrator alone may do; a
// non-member may run nothing; an administrator may run everything. A
// refusal is sudo's own and changes nothing.
func (e *e2e) sudoRules(t *testing.T, web string) {
	const refused = "sudo: a password is required"
	allowed := []struct {
		user string
		argv []string
	}{
		{member, []string{"devhost", "status", web}},
		{member, []string{"devhost", "reserve"}},
		{member, []string{"devhost", "keep", web}},
		{member, []string{"devhost", "protect", web, "--user", "customer"}},
		{admin, []string{"devhost", "cleanup", "--dry-run"}},
		{admin, []string{"devhost", "list"}},
		{admin, []string{"devhost", "keep", web, "--off"}},
		{admin, []string{"devhost", "protect", web, "--off"}},
	}
	for _, c := range allowed {
		r := e.onDevhost(c.user, append([]string{"sudo", "-n", "--"}, c.argv...)...)
		assert.Equal(t, 0, r.code, "%s: sudo %v:\n%s", c.user, c.argv, r.stderr)
	}
	denied := []struct {
		user string
		argv []string
	}{
		{outsider, []string{"devhost", "reserve", "--json"}},
		{outsider, []string{"devhost", "ensure", "x", "--channel", "https://example.com/c"}},
		{outsider, []string{"devhost", "status", web}},
		{outsider, []string{"devhost", "protect", web}},
		{outsider, []string{"fc-build-dev-container", "destroy", web}},
		{member, []string{"devhost", "cleanup"}},
		{member, []string{"devhost", "cleanup", "--dry-run"}},
		{member, []string{"devhost", "apply"}},
		{member, []string{"devhost", "render"}},
		{member, []string{"devhost", "import-legacy", "/var/lib/containers"}},
		{member, []string{"devhost", "list"}},
		// reserve's laptop-side flags would run the caller's program as root.
		{member, []string{"devhost", "reserve", "--devhost", "dev.example.com", "--ssh", "/bin/sh"}},
		{member, []string{"fc-build-dev-container", "--config", "/tmp/x.hcl", "ensure", "x", "y"}},
		{member, []string{"fc-build-dev-container"}},
	}
	before := snapshot(t, e.path("state"), e.path("containers"))
	for _, c := range denied {
		r := e.onDevhost(c.user, append([]string{"sudo", "-n", "--"}, c.argv...)...)
		assert.Equal(t, 1, r.code, "%s: sudo %v", c.user, c.argv)
		assert.Contains(t, r.stderr, refused, "%s: sudo %v", c.user, c.argv)
	}
	assert.Equal(t, before, snapshot(t, e.path("state"), e.path("containers")), "a refused command changed nothing")
}

// onDevhost runs argv (words without shell syntax) on the devhost over ssh
// as user, with the laptop's key.
func (e *e2e) onDevhost(user string, argv ...string) result {
	e.t.Helper()
	cmd := exec.Command("nsenter", "--net="+e.netns, "--", "ssh", "-F", filepath.Join(e.deploy, "ssh_config"), "-l", user, "dev.example.com", strings.Join(argv, " "))
	cmd.Env = e.env
	return runResult(e.t, cmd)
}

// runResult runs cmd and returns its output and exit status; failing to
// start it fails the test.
func runResult(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return r
}

func (e *e2e) ssh(host, command string) (string, error) {
	cmd := exec.Command("nsenter", "--net="+e.netns, "--", "ssh", "-F", filepath.Join(e.deploy, "ssh_config_dev"), host, command)
	cmd.Env = e.env
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out) + string(ee.Stderr), err
	}
	return string(out), err
}

func readOr(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}

// batouPython returns the python of a virtualenv with batou installed, named
// by an environment variable (.ci/run creates both), or skips.
func batouPython(t *testing.T, env, what string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		t.Skipf("%s not set: point it at the python of a virtualenv with %s (.ci/run does)", env, what)
	}
	return p
}

// batouDeployment copies testdata/batou with the given provisioner method.
func (e *e2e) batouDeployment(method string) string {
	t := e.t
	root := filepath.Join(t.TempDir(), "batou")
	copyTree(t, "testdata/batou", root)
	cfg := filepath.Join(root, "environments", "dev", "environment.cfg")
	data, err := os.ReadFile(cfg)
	require.NoError(t, err)
	write(t, cfg, strings.Replace(string(data), "method = fc-nixos-dev-container", "method = "+method, 1), 0o644)
	e.deploy = root
	e.writeLocalSSHConfig(e.port, e.path("keys", "user"))
	// ssh reads ~/.ssh/config from the passwd entry's home, not $HOME;
	// batou runs a bare `ssh dev.example.com …`, which for a real user finds
	// the devhost in ~/.ssh/config. This ssh stands in for that file.
	realSSH, err := exec.LookPath("ssh")
	require.NoError(t, err)
	write(t, filepath.Join(e.home, "bin", "ssh"), `#!/bin/sh
for a in "$@"; do [ "$a" = -F ] && exec `+realSSH+` "$@"; done
exec `+realSSH+` -F `+filepath.Join(root, "ssh_config")+` "$@"
`, 0o755)
	return root
}

// batou runs batou's provisioning step (testdata/batou_provision.py).
func (e *e2e) batou(python string, args ...string) (result, map[string]string) {
	e.t.Helper()
	driver, err := filepath.Abs("testdata/batou_provision.py")
	require.NoError(e.t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + e.netns, "--", python, driver, e.deploy, "dev"}, args...)...)
	cmd.Dir = e.deploy
	cmd.Env = append([]string{
		"PATH=" + filepath.Join(e.home, "bin") + ":" + binDir + ":" + os.Getenv("PATH"),
		"HOME=" + e.home, "TMPDIR=" + e.tmp, "LANG=C.UTF-8",
	}, "DEVHOST="+filepath.Join(binDir, "devhost"))
	r := runResult(e.t, cmd)
	names := map[string]string{}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	_ = json.Unmarshal([]byte(lines[len(lines)-1]), &names)
	return r, names
}

// TestBatou25BuiltinProvisioner runs batou 2.5's own fc-nixos-dev-container
// provisioner, unchanged, against the devhost answering as
// fc-build-dev-container (and nixos-container list for names).
func TestBatou25BuiltinProvisioner(t *testing.T) {
	python := batouPython(t, "DEVHOST_E2E_BATOU25", "batou 2.5.x (the last release with the fc-nixos-dev-container provisioner)")
	e := newE2E(t, e2eOpts{bootstrapKey: true})
	root := e.batouDeployment("fc-nixos-dev-container")

	r, names := e.batou(python)
	// batou 2.5 may suggest a name of digits only (1 in ~170), which is no
	// valid container name: devhost refuses it with a clear message, and
	// the next run gets another name.
	for i := 0; i < 3 && r.code != 0 && strings.Contains(r.stderr, "it consists of digits only"); i++ {
		t.Logf("batou 2.5 suggested a name of digits only, refused as expected:\n%s", r.stderr)
		require.NoError(t, os.Remove(filepath.Join(root, "environments", "dev", "hostmap.json")))
		r, names = e.batou(python)
	}
	t.Logf("batou 2.5:\n%s%s", r.stderr, r.stdout)
	require.Equal(t, 0, r.code, "%s%s", r.stderr, r.stdout)
	app := names["app"]
	require.Regexp(t, hexName, app)
	hm, err := os.ReadFile(filepath.Join(root, "environments", "dev", "hostmap.json"))
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf(`{"app": %q}`, app), string(hm))

	c, err := registry.Open(e.path("state")).Get(app)
	require.NoError(t, err)
	assert.Equal(t, []string{"www", "admin"}, c.Aliases)
	assert.Equal(t, "https://hydra.flyingcircus.io/build/116563/download/1/nixexprs.tar.xz", c.Channel)
	assert.Equal(t, "seed data\n", e.containerFile(app, "srv/s-shop/seed.txt"))
	assert.DirExists(t, filepath.Join(e.path("containers", app), "srv/s-shop/uploads"))
	assert.Equal(t, "batou-provisioned-value\n", e.containerFile(app, "srv/s-shop/greeting"))
	nix, err := os.ReadFile(filepath.Join(root, "environments", "dev", "provision.nix"))
	require.NoError(t, err)
	assert.Equal(t, string(nix), e.containerFile(app, "etc/local/nixos/provision-container.nix"))
	assert.Equal(t, "fc-manage -c\n", e.containerFile(app, "fc-manage.log"))
	assert.Contains(t, r.stdout, "https://www."+app+".dev.example.com/")

	// --provision-rebuild: batou destroys through the compatibility CLI.
	write(t, filepath.Join(e.path("containers", app), "srv/s-shop/stale"), "x", 0o644)
	r, names = e.batou(python, "--rebuild")
	require.Equal(t, 0, r.code, "%s%s", r.stderr, r.stdout)
	assert.Equal(t, app, names["app"])
	assert.NoFileExists(t, filepath.Join(e.path("containers", app), "srv/s-shop/stale"))
	assert.Equal(t, "seed data\n", e.containerFile(app, "srv/s-shop/seed.txt"))

	// devhost up against the same devhost turned into an old one (only
	// fc-build-dev-container is left): devhost notices and speaks the
	// compatibility CLI, with batou's key.
	require.NoError(t, os.Remove(e.path("pkg", "bin", "devhost")))
	require.NoError(t, os.Remove(filepath.Join(e.path("containers", app), "srv/s-shop/greeting")))
	ur := e.up("dev", "--identity", "insecure-private.key")
	t.Logf("devhost up (old devhost):\n%s%s", ur.stderr, ur.stdout)
	require.Equal(t, 0, ur.code, "%s%s", ur.stderr, ur.stdout)
	assert.Contains(t, ur.stderr, "warning: dev.example.com has no devhost command; speaking batou 2.3/2.4's fc-build-dev-container instead")
	assert.Equal(t, "batou-provisioned-value\n", e.containerFile(app, "srv/s-shop/greeting"))
	assert.Contains(t, ur.stdout, "https://www."+app+".dev.example.com/")
	cfg, err := os.ReadFile(filepath.Join(root, "ssh_config_dev"))
	require.NoError(t, err)
	assert.Contains(t, string(cfg), "IdentityFile "+filepath.Join(root, "insecure-private.key")+"\n")
	assert.NoFileExists(t, filepath.Join(root, "ssh_key_dev"), "no key of devhost's own with --identity")
}

// TestBatou27DevhostPlugin runs batou 2.7 with method = devhost: batou's
// environment loading asks the plugin for names (devhost reserve
// --devhost), and provisioning runs devhost up.
func TestBatou27DevhostPlugin(t *testing.T) {
	python := batouPython(t, "DEVHOST_E2E_BATOU27", "batou 2.7.x and integrations/batou installed")
	e := newE2E(t, e2eOpts{})
	root := e.batouDeployment("devhost")

	r, names := e.batou(python)
	t.Logf("batou 2.7 + devhost plugin:\n%s%s", r.stderr, r.stdout)
	require.Equal(t, 0, r.code, "%s%s", r.stderr, r.stdout)
	app := names["app"]
	require.Regexp(t, hexName, app)
	hm, err := os.ReadFile(filepath.Join(root, "environments", "dev", "hostmap.json"))
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf(`{"app": %q}`, app), string(hm))

	c, err := registry.Open(e.path("state")).Get(app)
	require.NoError(t, err)
	pub, err := os.ReadFile(filepath.Join(root, "ssh_key_dev.pub"))
	require.NoError(t, err)
	assert.Equal(t, []string{strings.TrimSpace(string(pub))}, c.SSHKeys, "the environment's own key, not batou's well-known one")
	assert.Equal(t, "s-shop", c.ServiceUser)
	assert.Equal(t, "batou-provisioned-value\n", e.containerFile(app, "srv/s-shop/greeting"))
	assert.Equal(t, "seed data\n", e.containerFile(app, "srv/s-shop/seed.txt"))
	cfg, err := os.ReadFile(filepath.Join(root, "ssh_config_dev"))
	require.NoError(t, err)
	assert.Contains(t, string(cfg), "Host "+app+" app\n")
	assert.Contains(t, string(cfg), "StrictHostKeyChecking yes\n")
	assert.Contains(t, r.stdout, "https://admin."+app+".dev.example.com/")
	out, err := e.ssh("app", "cat /srv/s-shop/seed.txt")
	require.NoError(t, err, out)
	assert.Equal(t, "seed data\n", out)
}

// lockedBuffer is a bytes.Buffer safe to read while a process writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// realNixInstantiate is the real nix-instantiate the nix-instantiate double
// hands local channels to ("" when there is none: the double then refuses).
func realNixInstantiate() string {
	p, _ := exec.LookPath("nix-instantiate")
	return p
}
