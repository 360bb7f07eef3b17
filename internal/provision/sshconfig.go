package provision

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // ssh's HashKnownHosts format is HMAC-SHA1
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/flyingcircusio/devhost/internal/atomicfile"
	"github.com/flyingcircusio/devhost/internal/inputfile"
)

// SSHHost is one provisioned host as ssh_config_<env> names it.
type SSHHost struct {
	Real    string // the container's real name, e.g. "3f2a9c01b7e"
	EnvName string // its name in the environment, e.g. "web" (may equal Real)
	Devhost string // the devhost it runs on, the ProxyJump
	// HostKey is the container's host key as an authorized_keys line
	// ("ssh-ed25519 AAAA…"), empty when not known.
	HostKey string
}

// SSHConfigPaths returns where ssh_config_<env> and its known-hosts file
// live in the deployment root.
func SSHConfigPaths(root, env string) (config, knownHosts string) {
	return filepath.Join(root, "ssh_config_"+env), filepath.Join(root, "ssh_known_hosts_"+env)
}

// SSHConfig is the content of ssh_config_<env>.
type SSHConfig struct {
	Hosts        []SSHHost
	IdentityFile string // the environment's private key; "" for the user's own keys
	KnownHosts   string // the environment's known-hosts file
	// Includes are files included for every host after the specific blocks,
	// in order (batou: ~/.ssh/config, then <root>/ssh_config), as written
	// in the Include line.
	Includes []string
}

// Render writes the file in the layout batou's container provisioner
// writes, so `ssh -F ssh_config_dev web` and RSYNC_RSH keep working: one
// block per host, then the generic `Host *` Include blocks, last because ssh
// uses the first value it finds for each option.
//
// Two things differ from batou, both for pinned host keys: with a known
// host key StrictHostKeyChecking is "yes" (batou: "no") and "accept-new"
// otherwise, and HostKeyAlias names the real container name, so the key is
// found in the per-environment known-hosts file whatever Port an included
// configuration sets.
func (c SSHConfig) Render() []byte {
	var blocks []string
	for _, h := range c.Hosts {
		names := h.Real
		if h.EnvName != "" && h.EnvName != h.Real {
			names += " " + h.EnvName
		}
		strict := "accept-new"
		if h.HostKey != "" {
			strict = "yes"
		}
		// Without an identity file (`devhost connect`) ssh offers the
		// user's own keys, the ones they log into the devhost with.
		identity := ""
		if c.IdentityFile != "" {
			identity = "\n    IdentityFile " + configArg(c.IdentityFile, true) + "\n    IdentitiesOnly yes"
		}
		blocks = append(blocks, fmt.Sprintf(`
Host %s
    HostName %s
    ProxyJump %s
    User developer%s
    StrictHostKeyChecking %s
    UserKnownHostsFile %s
    HostKeyAlias %s
`, names, h.Real, h.Devhost, identity, strict, configArg(c.KnownHosts, true), h.Real))
	}
	for _, inc := range c.Includes {
		blocks = append(blocks, "Host *\n  Include "+configArg(inc, false))
	}
	return []byte(strings.Join(blocks, "\n") + "\n")
}

// configArg writes a path as one ssh_config argument. ssh splits arguments
// on whitespace (a deployment root like "/Users/Jane Doe/shop" would make
// ssh reject the whole file: "extra arguments at end of line") unless they
// are in double quotes, and it expands %-tokens in IdentityFile and
// UserKnownHostsFile (tokens set), where a literal % is written %%. Inside
// double quotes, \ and " are escaped with a backslash (OpenSSH 8.7+).
func configArg(p string, tokens bool) string {
	if tokens {
		p = strings.ReplaceAll(p, "%", "%%")
	}
	if strings.ContainsAny(p, " \t\"'\\") {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(p) + `"`
	}
	return p
}

// DefaultIncludes returns batou's generic includes that exist: the user's
// ~/.ssh/config (home may be empty: none) and the deployment's own
// <root>/ssh_config.
func DefaultIncludes(home, root string) []string {
	var inc []string
	if home != "" {
		if _, err := os.Stat(filepath.Join(home, ".ssh", "config")); err == nil {
			inc = append(inc, "~/.ssh/config")
		}
	}
	if p := filepath.Join(root, "ssh_config"); fileExists(p) {
		inc = append(inc, p)
	}
	return inc
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// WriteSSHConfig writes ssh_config_<env> atomically.
func WriteSSHConfig(path string, c SSHConfig) error {
	return atomicfile.WriteFile(path, c.Render(), 0o644)
}

// ReadSSHHosts returns the hosts of an existing ssh_config_<env> written by
// devhost (for `up --host` runs that update one block and keep the others),
// reading the Host/HostName/ProxyJump lines of each block. Like the
// known-hosts file it is read only as a regular file of at most
// MaxKnownHosts bytes: a named pipe in its place must not hang up, sync or
// connect.
func ReadSSHHosts(path string) ([]SSHHost, error) {
	data, err := inputfile.Read(path, MaxKnownHosts)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ssh config %s: %w", path, err)
	}
	var hosts []SSHHost
	var cur *SSHHost
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		switch strings.ToLower(f[0]) {
		case "host":
			cur = nil
			if f[1] == "*" {
				continue
			}
			hosts = append(hosts, SSHHost{Real: f[1], EnvName: f[1]})
			if len(f) > 2 {
				hosts[len(hosts)-1].EnvName = f[2]
			}
			cur = &hosts[len(hosts)-1]
		case "proxyjump":
			if cur != nil {
				cur.Devhost = f[1]
			}
		}
	}
	return hosts, sc.Err()
}

// MaxKnownHosts bounds the known-hosts file devhost reads: one line per
// container, and what ssh itself adds.
const MaxKnownHosts = 1 << 20

// KnownHosts is a per-environment known-hosts file: one line per
// container, "<real name> <key type> <base64>".
type KnownHosts map[string]string // real name → "ssh-ed25519 AAAA…"

// ReadKnownHosts reads a known-hosts file devhost wrote; a missing file is
// empty.
func ReadKnownHosts(path string) (KnownHosts, error) {
	kh := KnownHosts{}
	data, err := inputfile.Read(path, MaxKnownHosts)
	if errors.Is(err, fs.ErrNotExist) {
		return kh, nil
	}
	if err != nil {
		return nil, fmt.Errorf("known hosts %s: %w", path, err)
	}
	rest := data
	for len(rest) > 0 {
		_, hosts, key, _, r, err := ssh.ParseKnownHosts(rest)
		if err != nil {
			break // io.EOF at the end; anything else: keep what was read
		}
		rest = r
		line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
		for _, h := range hosts {
			kh[h] = line
		}
	}
	return kh, nil
}

// Remove forgets every key of the container name, also lines ssh wrote
// itself with hashed host names (HashKnownHosts yes, "|1|salt|hash"), as
// `ssh-keygen -R` does for batou: in compatibility mode ssh records the
// first key it sees (accept-new), and a rebuilt container's new key must
// not meet the old one.
func (kh KnownHosts) Remove(name string) {
	delete(kh, name)
	for h := range kh {
		if hashedHostIs(h, name) {
			delete(kh, h)
		}
	}
}

// hashedHostIs reports whether entry is ssh's hashed form of name:
// "|1|" base64(salt) "|" base64(HMAC-SHA1(salt, name)).
func hashedHostIs(entry, name string) bool {
	rest, ok := strings.CutPrefix(entry, "|1|")
	if !ok {
		return false
	}
	salt64, hash64, ok := strings.Cut(rest, "|")
	if !ok {
		return false
	}
	salt, err1 := base64.StdEncoding.DecodeString(salt64)
	hash, err2 := base64.StdEncoding.DecodeString(hash64)
	if err1 != nil || err2 != nil {
		return false
	}
	mac := hmac.New(sha1.New, salt)
	mac.Write([]byte(name))
	return hmac.Equal(mac.Sum(nil), hash)
}

// ParseHostKey checks an authorized_keys-style host key line as it comes
// back from the devhost and returns it normalised ("type base64").
func ParseHostKey(line string) (string, error) {
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return "", fmt.Errorf("host key %q: %w", line, err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))), nil
}

// Write writes the file atomically, sorted by name.
func (kh KnownHosts) Write(path string) error {
	names := make([]string, 0, len(kh))
	for n := range kh {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s %s\n", n, kh[n])
	}
	return atomicfile.WriteFile(path, []byte(b.String()), 0o644)
}
