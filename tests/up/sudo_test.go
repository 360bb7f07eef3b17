package up

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The devhost's people, in the sshd's private /etc/passwd, /etc/group and
// /etc/shadow. The devhost module's defaults: members of "users" may use
// devhost, members of "wheel" administer it.
const (
	member      = "jane.doe" // in users; a '.' in the name, as NixOS allows
	otherMember = "alice"    // in users too
	outsider    = "sam"      // in no devhost group
	admin       = "ada"      // in wheel
)

// people are the test's login accounts: name, uid, primary gid.
var people = []struct {
	name     string
	uid, gid int
}{
	{member, 4201, 100},
	{otherMember, 4202, 100},
	{outsider, 4203, 4203},
	{admin, 4204, 4204},
}

// needSudoRules returns what evaluating the module's sudo rules needs, or
// skips: nix-instantiate, nixpkgs' lib (NIXPKGS_LIB) and a NixOS tree with
// nixos/modules/security/sudo.nix (DEVHOST_E2E_NIXOS), and Debian's sudo
// and visudo.
func needSudoRules(t *testing.T) (nix, lib, nixos string) {
	t.Helper()
	for _, tool := range []string{"/usr/bin/sudo", "/usr/sbin/visudo"} {
		if _, err := os.Stat(tool); err != nil {
			t.Skipf("%s not found: install sudo (apt-get install -y sudo); the end-to-end test runs devhost through real sudo with the module's rules", tool)
		}
	}
	nix, err := exec.LookPath("nix-instantiate")
	if err != nil {
		t.Skip("nix-instantiate not found: install nix-bin; the end-to-end test evaluates the module's sudo rules")
	}
	lib, nixos = os.Getenv("NIXPKGS_LIB"), os.Getenv("DEVHOST_E2E_NIXOS")
	if lib == "" || nixos == "" {
		t.Skip("NIXPKGS_LIB and DEVHOST_E2E_NIXOS (a NixOS tree with nixos/modules/security/sudo.nix, e.g. nixpkgs 20.09) must be set: the end-to-end test runs devhost through real sudo with the sudoers text NixOS makes of the module's rules (.ci/run sets both)")
	}
	if _, err := os.Stat(filepath.Join(nixos, "nixos", "modules", "security", "sudo.nix")); err != nil {
		t.Fatalf("DEVHOST_E2E_NIXOS=%s has no nixos/modules/security/sudo.nix: %v", nixos, err)
	}
	return nix, lib, nixos
}

// moduleSudoers evaluates the devhost module with NixOS' sudo module
// (testdata/sudoers.nix) for a devhost package installed at pkg and
// returns the sudoers text, checked by visudo.
func moduleSudoers(t *testing.T, pkg, dir string) string {
	t.Helper()
	nix, lib, nixos := needSudoRules(t)
	expr, err := filepath.Abs("testdata/sudoers.nix")
	require.NoError(t, err)
	cmd := exec.Command(nix, "--eval", "--strict", "--json", expr,
		"--argstr", "libPath", lib, "--argstr", "nixpkgs", nixos, "--argstr", "package", pkg)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "evaluating the module's sudo rules: %s", stderr.String())
	var out struct {
		Sudoers          string   `json:"sudoers"`
		FailedAssertions []string `json:"failedAssertions"`
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &out))
	require.Empty(t, out.FailedAssertions)
	path := filepath.Join(dir, "sudoers")
	write(t, path, out.Sudoers, 0o440)
	runCmd(t, "/usr/sbin/visudo", "-c", "-f", path)
	return out.Sudoers
}

// accounts writes passwd, group and shadow into etc (the layer the sshd's
// namespace lays over /etc): the machine's own accounts, root's shell
// without rc files, the containers' user developer (uid 0), and people.
// Every password is "*" (no password login, not locked): sshd authenticates
// by key, sudo's rules need no password, and no hash leaves the machine's
// shadow.
func accounts(t *testing.T, etc, home string) {
	t.Helper()
	passwd, err := os.ReadFile("/etc/passwd")
	require.NoError(t, err)
	group, err := os.ReadFile("/etc/group")
	require.NoError(t, err)
	var pw, sh []string
	for _, l := range strings.Split(strings.TrimSpace(string(passwd)), "\n") {
		f := strings.Split(l, ":")
		if len(f) != 7 || f[0] == "developer" {
			continue
		}
		if f[0] == "root" {
			f[6] = "/bin/sh"
		}
		pw = append(pw, strings.Join(f, ":"))
		sh = append(sh, f[0]+":*:19000:0:99999:7:::")
	}
	pw = append(pw, "developer:x:0:0:developer:/root:/bin/sh")
	sh = append(sh, "developer:*:19000:0:99999:7:::")
	members := map[string][]string{"users": {member, otherMember}, "wheel": {admin}}
	gids := map[string]int{"users": 100, "wheel": 4210, outsider: 4203, admin: 4204}
	var gr []string
	for _, l := range strings.Split(strings.TrimSpace(string(group)), "\n") {
		f := strings.Split(l, ":")
		if len(f) != 4 {
			continue
		}
		if _, ours := gids[f[0]]; ours {
			continue
		}
		gr = append(gr, l)
	}
	for name, gid := range gids {
		gr = append(gr, fmt.Sprintf("%s:x:%d:%s", name, gid, strings.Join(members[name], ",")))
	}
	require.NoError(t, os.MkdirAll(home, 0o755))
	for _, p := range people {
		h := filepath.Join(home, p.name)
		require.NoError(t, os.MkdirAll(h, 0o700))
		require.NoError(t, os.Chown(h, p.uid, p.gid))
		pw = append(pw, fmt.Sprintf("%s:x:%d:%d:%s:%s:/bin/sh", p.name, p.uid, p.gid, p.name, h))
		sh = append(sh, p.name+":*:19000:0:99999:7:::")
	}
	write(t, filepath.Join(etc, "passwd"), strings.Join(pw, "\n")+"\n", 0o644)
	write(t, filepath.Join(etc, "group"), strings.Join(gr, "\n")+"\n", 0o644)
	write(t, filepath.Join(etc, "shadow"), strings.Join(sh, "\n")+"\n", 0o640)
}
