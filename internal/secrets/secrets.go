// Package secrets reads a batou environment's encrypted secrets the way
// batou 2.5 and later do: exactly one of environments/<env>/secrets.cfg.age
// (age), secrets.cfg.age-diffable (every value age-encrypted on its own)
// or secrets.cfg.gpg (GnuPG, decrypted by the gpg program).
//
// The cleartext is an environment.cfg-style file. Its [component:NAME]
// values are component overrides (provision.sh sees them as
// COMPONENT_<NAME>_<ATTR>), [host:NAME] values are host data, and [batou]
// is the file's own metadata. Cleartext is only ever held in memory: no
// error message of this package contains a value.
package secrets

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"filippo.io/age/armor"
	"golang.org/x/crypto/ssh"

	"github.com/flyingcircusio/devhost/internal/inputfile"
	"github.com/flyingcircusio/devhost/internal/rawconfig"
)

// MaxFile bounds the secrets file devhost reads, and its cleartext: they
// hold environment values, not data. MaxIdentity bounds an identity (key)
// file.
const (
	MaxFile     = 8 << 20
	MaxIdentity = 1 << 20
)

// Secrets are the decrypted values of an environment.
type Secrets struct {
	// File is the secrets file read ("" when the environment has none).
	File string
	// Kind is "age", "age-diffable", "gpg" or "" (none).
	Kind string
	// Components maps component → attribute → value.
	Components map[string]map[string]string
	// Hosts maps host → data attribute (without "data-") → value.
	Hosts map[string]map[string]string
}

// Options say where identities and programs are.
type Options struct {
	// Identities are age identity files (age or ssh private keys), as
	// BATOU_AGE_IDENTITIES gives them (comma-separated there). Empty means
	// batou's defaults under Home: ~/.ssh/id_rsa, id_ecdsa, id_ecdsa_sk,
	// id_ed25519, id_ed25519_sk, id_dsa, those that exist.
	Identities []string
	Home       string
	// Passphrase unlocks passphrase-protected ssh keys (from
	// BATOU_AGE_IDENTITY_PASSPHRASE, see PassphraseFromEnv); nil skips such
	// keys.
	Passphrase func(identity string) ([]byte, error)
	// GPG is the gpg program; default "gpg", else "gpg2", as batou tries.
	GPG string
	// Env is gpg's environment (GNUPGHOME…); nil inherits the process'.
	Env []string
}

// secretVars are the variables that hold a secret or say where one is:
// batou's own (BATOU_AGE_IDENTITY_PASSPHRASE, the passphrase or its
// 1Password reference; BATOU_AGE_IDENTITIES, which keys decrypt the
// environment's secrets) and the 1Password CLI's credentials, which `op
// read` of such a reference uses. batou reads no gpg passphrase variable:
// gpg asks its agent.
var secretVars = []string{"BATOU_AGE_IDENTITY_PASSPHRASE", "BATOU_AGE_IDENTITIES", "OP_SERVICE_ACCOUNT_TOKEN", "OP_CONNECT_TOKEN"}

// secretPrefixes are prefixes of such variables (op's OP_SESSION_<account>).
var secretPrefixes = []string{"OP_SESSION_"}

// Scrub returns env ("KEY=value" entries) without the variables that hold
// a secret of devhost's or batou's secret handling (see secretVars), for
// the programs devhost up starts: provision.sh, ssh and rsync need none of
// them, and a script or an ssh SendEnv could pass them on. Everything else
// stays (SSH_AUTH_SOCK: ssh needs the agent). The result is never nil, so
// it can be an exec.Cmd's Env without falling back to the process'.
func Scrub(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !isSecretVar(k) {
			out = append(out, kv)
		}
	}
	return out
}

func isSecretVar(k string) bool {
	for _, p := range secretPrefixes {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return slices.Contains(secretVars, k)
}

// PassphraseFromEnv turns BATOU_AGE_IDENTITY_PASSPHRASE into Options'
// Passphrase. For batou the value is a 1Password reference ("op://vault/
// item/field") read with `op read` (op is the 1Password CLI, opProg its
// path or name); devhost also takes any other value as the passphrase
// itself. "" gives nil: passphrase-protected keys are skipped. op runs at
// most once, only when a protected key is actually tried, with the
// reference as its only argument (no shell).
func PassphraseFromEnv(ctx context.Context, value, opProg string) func(identity string) ([]byte, error) {
	if value == "" {
		return nil
	}
	if !strings.HasPrefix(value, "op://") {
		return func(string) ([]byte, error) { return []byte(value), nil }
	}
	var (
		once sync.Once
		pass []byte
		err  error
	)
	return func(string) ([]byte, error) {
		once.Do(func() {
			cmd := exec.CommandContext(ctx, opProg, "read", value)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if rerr := cmd.Run(); rerr != nil {
				err = fmt.Errorf("BATOU_AGE_IDENTITY_PASSPHRASE: `%s read %s` failed (%w): %s", opProg, value, rerr, strings.TrimSpace(stderr.String()))
				return
			}
			pass = bytes.TrimSpace(stdout.Bytes())
		})
		return pass, err
	}
}

// ParseIdentityList splits BATOU_AGE_IDENTITIES as batou does.
func ParseIdentityList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Load reads the secrets of the environment in envDir. An environment
// without secrets file has no secrets (not an error).
func Load(ctx context.Context, envDir string, o Options) (*Secrets, error) {
	matches, err := filepath.Glob(filepath.Join(envDir, "secrets.cfg.*"))
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	s := &Secrets{Components: map[string]map[string]string{}, Hosts: map[string]map[string]string{}}
	switch len(matches) {
	case 0:
		return s, nil
	case 1:
	default:
		return nil, fmt.Errorf("secrets: %s has %d secrets files (%s); batou reads exactly one: remove all but one",
			envDir, len(matches), strings.Join(baseNames(matches), ", "))
	}
	s.File = matches[0]
	// Read once, whatever the kind: a named pipe or device in its place
	// would hang devhost up (or gpg).
	data, err := inputfile.Read(s.File, MaxFile)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	var clear []byte
	switch ext := strings.TrimPrefix(filepath.Base(s.File), "secrets.cfg."); ext {
	case "age":
		s.Kind = ext
		ids, err := o.identities()
		if err != nil {
			return nil, err
		}
		if clear, err = decryptAge(data, ids); err != nil {
			return nil, fmt.Errorf("secrets %s: %w", s.File, err)
		}
	case "age-diffable":
		s.Kind = ext
		ids, err := o.identities()
		if err != nil {
			return nil, err
		}
		if clear, err = decryptDiffable(s.File, data, ids); err != nil {
			return nil, err
		}
	case "gpg":
		s.Kind = ext
		if clear, err = o.decryptGPG(ctx, s.File, data); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("secrets: %s: unknown kind %q; batou reads secrets.cfg.age, secrets.cfg.age-diffable or secrets.cfg.gpg", s.File, "."+ext)
	}
	if err := s.parse(clear); err != nil {
		return nil, err
	}
	return s, nil
}

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	sort.Strings(out)
	return out
}

// parse reads the cleartext as batou's ConfigFileSecretProvider.read does.
// A parse error names the line, never its text (which may hold a value).
func (s *Secrets) parse(clear []byte) error {
	f, err := rawconfig.Parse("secrets.cfg", clear)
	if err != nil {
		var re *rawconfig.Error
		if errors.As(err, &re) {
			return fmt.Errorf("secrets %s: the decrypted file is not a valid configuration file at line %d (%s); fix it with `batou secrets edit`",
				s.File, re.Range.Start.Line, re.PythonClass)
		}
		return fmt.Errorf("secrets %s: the decrypted file is not a valid configuration file; fix it with `batou secrets edit`", s.File)
	}
	for sec := range f.Sections() {
		switch {
		case sec.Name() == "batou":
		case strings.HasPrefix(sec.Name(), "host:"):
			host := strings.TrimPrefix(sec.Name(), "host:")
			m := s.Hosts[host]
			if m == nil {
				m = map[string]string{}
				s.Hosts[host] = m
			}
			for opt := range sec.Options() {
				m[strings.Replace(opt.Name(), "data-", "", 1)] = opt.Value()
			}
		default:
			comp := strings.ReplaceAll(sec.Name(), "component:", "")
			m := s.Components[comp]
			if m == nil {
				m = map[string]string{}
				s.Components[comp] = m
			}
			for opt := range sec.Options() {
				m[opt.Name()] = opt.Value()
			}
		}
	}
	return nil
}

// identities loads the age identities batou would try.
func (o Options) identities() ([]age.Identity, error) {
	paths := o.Identities
	explicit := len(paths) > 0
	if !explicit && o.Home != "" {
		for _, n := range []string{"id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk", "id_dsa"} {
			paths = append(paths, filepath.Join(o.Home, ".ssh", n))
		}
	}
	var ids []age.Identity
	var tried []string
	for _, p := range paths {
		if strings.HasPrefix(p, "~/") && o.Home != "" {
			p = filepath.Join(o.Home, p[2:])
		}
		data, err := inputfile.Read(p, MaxIdentity)
		if err != nil {
			if explicit || !errors.Is(err, os.ErrNotExist) {
				tried = append(tried, fmt.Sprintf("%s (%v)", p, err))
			}
			continue
		}
		id, err := o.parseIdentity(p, data)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s (%v)", p, err))
			continue
		}
		ids = append(ids, id...)
		tried = append(tried, p)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("secrets: no age identity found (tried: %s); set BATOU_AGE_IDENTITIES to your age identity or ssh private key file",
			strings.Join(orNone(tried), ", "))
	}
	return ids, nil
}

func orNone(s []string) []string {
	if len(s) == 0 {
		return []string{"~/.ssh/id_rsa, ~/.ssh/id_ed25519 and the other ssh default keys: none exists"}
	}
	return s
}

func (o Options) parseIdentity(path string, data []byte) ([]age.Identity, error) {
	if bytes.Contains(data, []byte("AGE-SECRET-KEY-")) {
		return age.ParseIdentities(bytes.NewReader(data))
	}
	id, err := agessh.ParseIdentity(data)
	if err == nil {
		return []age.Identity{id}, nil
	}
	var missing *ssh.PassphraseMissingError
	if !errors.As(err, &missing) {
		return nil, err
	}
	if o.Passphrase == nil || missing.PublicKey == nil {
		return nil, errors.New("the key has a passphrase; set BATOU_AGE_IDENTITY_PASSPHRASE")
	}
	eid, err := agessh.NewEncryptedSSHIdentity(missing.PublicKey, data, func() ([]byte, error) { return o.Passphrase(path) })
	if err != nil {
		return nil, err
	}
	return []age.Identity{eid}, nil
}

func decryptAge(data []byte, ids []age.Identity) ([]byte, error) {
	var r io.Reader = bytes.NewReader(data)
	if bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte(armor.Header)) {
		r = armor.NewReader(bytes.NewReader(bytes.TrimLeft(data, " \t\r\n")))
	}
	dr, err := age.Decrypt(r, ids...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return nil, errors.New("none of your identities can decrypt it; ask a member of the environment to add your key (batou secrets add)")
		}
		return nil, err
	}
	return readCleartext(dr)
}

// readCleartext reads at most MaxFile bytes of decrypted secrets.
func readCleartext(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxFile {
		return nil, fmt.Errorf("the decrypted file is larger than %s, the most devhost reads", inputfile.Size(MaxFile))
	}
	return b, nil
}

// decryptDiffable decrypts secrets.cfg.age-diffable: an INI file whose
// values (outside [batou]) are each base64 of an age file, and returns the
// cleartext file with the same sections and options.
func decryptDiffable(path string, src []byte, ids []age.Identity) ([]byte, error) {
	f, err := rawconfig.Parse(filepath.Base(path), src)
	if err != nil {
		return nil, fmt.Errorf("secrets %s: %w", path, err)
	}
	var b bytes.Buffer
	for sec := range f.Sections() {
		fmt.Fprintf(&b, "[%s]\n", sec.Name())
		for opt := range sec.Options() {
			val := opt.Value()
			if sec.Name() != "batou" {
				raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(val), ""))
				if err != nil {
					return nil, fmt.Errorf("secrets %s:%d: [%s] %s is not base64 of an age file: %w", path, opt.NameRange().Start.Line, sec.Name(), opt.Name(), err)
				}
				clear, err := decryptAge(raw, ids)
				if err != nil {
					return nil, fmt.Errorf("secrets %s:%d: [%s] %s: %w", path, opt.NameRange().Start.Line, sec.Name(), opt.Name(), err)
				}
				val = string(clear)
			}
			writeOption(&b, opt.Name(), val)
		}
	}
	return b.Bytes(), nil
}

// writeOption writes name = value, continuing a multi-line value on
// indented lines as batou's ConfigUpdater does.
func writeOption(b *bytes.Buffer, name, val string) {
	sc := bufio.NewScanner(strings.NewReader(val))
	// No line may exceed the scanner's buffer, or the value would be cut
	// off there without an error.
	sc.Buffer(make([]byte, 0, 4096), len(val)+1)
	first := true
	fmt.Fprintf(b, "%s =", name)
	for sc.Scan() {
		if first {
			fmt.Fprintf(b, " %s\n", sc.Text())
			first = false
			continue
		}
		fmt.Fprintf(b, "    %s\n", sc.Text())
	}
	if first {
		b.WriteString("\n")
	}
}

// decryptGPG runs `gpg --decrypt` as batou does (which names the file);
// the file's contents, already read, go to gpg's standard input.
func (o Options) decryptGPG(ctx context.Context, path string, data []byte) ([]byte, error) {
	progs := []string{"gpg", "gpg2"}
	if o.GPG != "" {
		progs = []string{o.GPG}
	}
	var prog string
	for _, p := range progs {
		if lp, err := exec.LookPath(p); err == nil {
			prog = lp
			break
		}
	}
	if prog == "" {
		return nil, fmt.Errorf("secrets %s: no gpg program found (tried %s); install GnuPG", path, strings.Join(progs, ", "))
	}
	cmd := exec.CommandContext(ctx, prog, "--decrypt")
	cmd.Env = o.Env
	cmd.Stdin = bytes.NewReader(data)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("secrets %s: gpg --decrypt failed (%w): %s", path, err, strings.TrimSpace(stderr.String()))
	}
	clear, err := readCleartext(&stdout)
	if err != nil {
		return nil, fmt.Errorf("secrets %s: %w", path, err)
	}
	return clear, nil
}
