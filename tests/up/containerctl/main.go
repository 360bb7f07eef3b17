// Command containerctl stands in for systemctl in the end-to-end test of
// `devhost up`. It runs the lifecycle's systemctl test double unchanged and,
// when a container unit starts, makes the container reachable by ssh the way
// a booted NixOS container is, so RUN, COPY and ECHO have somewhere real to
// go:
//
//   - the container's root directory (<sandbox>/containers/<name>, the
//     directory devhost reads the host key from and removes on destroy)
//     gets a minimal layout: /usr (the machine's, read-only), /etc/local/nixos,
//     /srv/<service user>, the container sshd's host key;
//   - <sandbox>/chroot/<address> becomes that root, with /usr, /dev/null and
//     /usr/local/bin (sudo and fc-manage doubles) bind-mounted read-only.
//     The test's sshd chroots sessions arriving on <address> there (Match
//     LocalAddress + ChrootDirectory): that is "the container";
//   - the registry entry's ssh keys and shared keys become the authorized keys for
//     <address>, and "<address> <name>" goes into the sshd's /etc/hosts, as
//     the devhost's static hosts entries do.
//
// It runs inside the sshd's private mount namespace (devhost is started by
// an ssh session), so its mounts are invisible outside and vanish with the
// sshd. Bind mounts never sit inside <sandbox>/containers: devhost's
// destroy removes that tree, and only sees plain directories there.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/flyingcircusio/devhost/generator"
	"github.com/flyingcircusio/devhost/internal/hostconfig"
	"github.com/flyingcircusio/devhost/internal/registry"
)

func main() {
	base, double := os.Getenv("E2E_SANDBOX"), os.Getenv("E2E_SYSTEMCTL")
	if base == "" || double == "" {
		fail("E2E_SANDBOX and E2E_SYSTEMCTL must be set")
	}
	cmd := exec.Command(double, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			os.Exit(ee.ExitCode())
		}
		fail("%v", err)
	}
	var verb, unit string
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "-") {
			continue
		}
		if verb == "" {
			verb = a
		} else {
			unit = a
		}
	}
	name, ok := strings.CutPrefix(unit, "container@")
	name = strings.TrimSuffix(name, ".service")
	if !ok {
		return
	}
	if verb == "stop" {
		if err := halt(base, name); err != nil {
			fail("container %s: %v", name, err)
		}
		return
	}
	if verb != "start" && verb != "restart" && verb != "reload" {
		return
	}
	if err := boot(base, name); err != nil {
		fail("container %s: %v", name, err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "containerctl: "+format+"\n", args...)
	os.Exit(2)
}

func boot(base, name string) error {
	c, err := registry.Open(filepath.Join(base, "state")).Get(name)
	if err != nil {
		return err
	}
	addr := c.Address.String()
	root := filepath.Join(base, "containers", name)
	dirs := []string{"usr", "dev", "etc/ssh", "etc/local/nixos", "tmp", "root"}
	if c.ServiceUser != "" {
		dirs = append(dirs, "srv/"+c.ServiceUser)
	}
	// The compatibility CLI passes no service user; the old devhost's
	// containers had the environment's service user anyway.
	for _, u := range strings.Fields(os.Getenv("E2E_SERVICE_USERS")) {
		dirs = append(dirs, "srv/"+u)
	}
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	for _, l := range []string{"bin", "lib", "lib64", "sbin"} {
		target := "usr/" + l
		if _, err := os.Lstat(filepath.Join(root, l)); err != nil {
			if err := os.Symlink(target, filepath.Join(root, l)); err != nil {
				return err
			}
		}
	}
	if err := os.WriteFile(filepath.Join(root, "dev", "null"), nil, 0o666); err != nil {
		return err
	}
	if err := copyFile("/etc/ld.so.cache", filepath.Join(root, "etc", "ld.so.cache")); err != nil {
		return err
	}
	if err := copyFile(filepath.Join(base, "keys", "host_ed25519.pub"), filepath.Join(root, "etc", "ssh", "ssh_host_ed25519_key.pub")); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(base, "ckeys"), 0o755); err != nil {
		return err
	}
	keys := append(c.SSHKeys, c.SharedKeys...)
	// The generated container configuration adds batou 2.3/2.4's key when
	// the host enables it; so does the stand-in.
	if cfg, err := hostconfig.Load(os.Getenv("DEVHOST_CONFIG")); err == nil && cfg.Compat.BootstrapKey {
		keys = append(keys, generator.BootstrapKey)
	}
	if err := os.WriteFile(filepath.Join(base, "ckeys", addr), []byte(strings.Join(keys, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	if err := hostsEntry(filepath.Join(base, "hosts"), addr, name); err != nil {
		return err
	}

	chroot := filepath.Join(base, "chroot", addr)
	if err := os.MkdirAll(chroot, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(base, "chroot-of"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(base, "chroot-of", name), []byte(addr+"\n"), 0o644); err != nil {
		return err
	}
	if mounted(chroot) {
		// A container that got this address before, or a restart: the
		// old tree goes, with everything mounted in it.
		if err := syscall.Unmount(chroot, syscall.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount %s: %w", chroot, err)
		}
	}
	mounts := []struct {
		src, dst string
		ro       bool
	}{
		{root, chroot, false},
		{"/usr", filepath.Join(chroot, "usr"), true},
		{"/dev/null", filepath.Join(chroot, "dev", "null"), false},
		{filepath.Join(base, "cbin"), filepath.Join(chroot, "usr", "local", "bin"), true},
	}
	for _, m := range mounts {
		if err := syscall.Mount(m.src, m.dst, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s on %s: %w", m.src, m.dst, err)
		}
		if m.ro {
			if err := syscall.Mount("", m.dst, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
				return fmt.Errorf("read-only %s: %w", m.dst, err)
			}
		}
	}
	return nil
}

// halt unmounts the container's chroot view, so that devhost can remove
// its root directory (a mount point anywhere cannot be unlinked).
func halt(base, name string) error {
	addr, err := os.ReadFile(filepath.Join(base, "chroot-of", name))
	if err != nil {
		return nil // never booted
	}
	chroot := filepath.Join(base, "chroot", strings.TrimSpace(string(addr)))
	if mounted(chroot) {
		if err := syscall.Unmount(chroot, syscall.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount %s: %w", chroot, err)
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

// hostsEntry replaces any line for addr or name with "addr name".
//
// Containers boot concurrently (`devhost up` ensures an environment's
// hosts in parallel) and a destroy-and-recreate may hand two of them each
// other's old addresses, so the read-modify-write holds an exclusive lock
// on the file: without it one boot's rewrite dropped the other's fresh
// line and its name stopped resolving for the sshd ("stdio forwarding
// failed"). The real devhost has no such race: its hosts entries are
// static, generated from the registry by the host rebuild.
func hostsEntry(path, addr, name string) error {
	// In place: the file is bind-mounted on /etc/hosts, a rename would
	// not be seen.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	var out []string
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && (fields[0] == addr || fields[1] == name) {
			continue
		}
		out = append(out, sc.Text())
	}
	out = append(out, addr+" "+name)
	content := []byte(strings.Join(out, "\n") + "\n")
	// Overwrite, then cut: a reader never sees an empty file.
	if _, err := f.WriteAt(content, 0); err != nil {
		return err
	}
	if err := f.Truncate(int64(len(content))); err != nil {
		return err
	}
	return f.Close() // releases the lock
}

func mounted(path string) bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}
