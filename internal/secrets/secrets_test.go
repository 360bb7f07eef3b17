package secrets

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

const cleartext = `[batou]
members = alice@example.com

[component:postgres]
admin_password = s3cret with spaces

[host:db]
data-role = primary

[shop]
api_key = k-123
  continued
`

func encryptAge(t *testing.T, plain []byte, r age.Recipient) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, r)
	require.NoError(t, err)
	_, err = w.Write(plain)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

// sshKey writes an ed25519 ssh private key to home/.ssh/id_ed25519 and
// returns its age recipient.
func sshKey(t *testing.T, home string) age.Recipient {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	block, err := ssh.MarshalPrivateKey(priv, "")
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".ssh"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519"), pem.EncodeToMemory(block), 0o600))
	sp, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	r, err := agessh.NewEd25519Recipient(sp)
	require.NoError(t, err)
	return r
}

func checkValues(t *testing.T, s *Secrets) {
	t.Helper()
	assert.Equal(t, map[string]map[string]string{
		"postgres": {"admin_password": "s3cret with spaces"},
		"shop":     {"api_key": "k-123\ncontinued"},
	}, s.Components)
	assert.Equal(t, map[string]map[string]string{"db": {"role": "primary"}}, s.Hosts)
}

func TestAgeWithSSHKey(t *testing.T) {
	home, envDir := t.TempDir(), t.TempDir()
	r := sshKey(t, home)
	require.NoError(t, os.WriteFile(filepath.Join(envDir, "secrets.cfg.age"), encryptAge(t, []byte(cleartext), r), 0o644))
	s, err := Load(context.Background(), envDir, Options{Home: home})
	require.NoError(t, err)
	assert.Equal(t, "age", s.Kind)
	checkValues(t, s)
}

// encryptedKeySecrets makes a home whose ~/.ssh/id_ed25519 is protected by
// the passphrase "pw", and an environment directory whose secrets.cfg.age
// is encrypted to that key.
func encryptedKeySecrets(t *testing.T) (home, envDir string) {
	t.Helper()
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Skip("ssh-keygen not found: needed for a passphrase-protected key with few KDF rounds")
	}
	home, envDir = t.TempDir(), t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".ssh"), 0o700))
	key := filepath.Join(home, ".ssh", "id_ed25519")
	// -a 1: one bcrypt round, fast under the race detector.
	out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-a", "1", "-N", "pw", "-f", key).CombinedOutput()
	require.NoError(t, err, string(out))
	pubLine, err := os.ReadFile(key + ".pub")
	require.NoError(t, err)
	r, err := agessh.ParseRecipient(strings.TrimSpace(string(pubLine)))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(envDir, "secrets.cfg.age"), encryptAge(t, []byte(cleartext), r), 0o644))
	return home, envDir
}

func TestAgeWithEncryptedSSHKey(t *testing.T) {
	home, envDir := encryptedKeySecrets(t)

	_, err := Load(context.Background(), envDir, Options{Home: home})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "BATOU_AGE_IDENTITY_PASSPHRASE")

	s, err := Load(context.Background(), envDir, Options{Home: home,
		Passphrase: func(string) ([]byte, error) { return []byte("pw"), nil }})
	require.NoError(t, err)
	checkValues(t, s)
}

// TestPassphraseFromOnePassword: batou's BATOU_AGE_IDENTITY_PASSPHRASE is
// a 1Password reference read with `op read`; taking "op://…" as the
// passphrase itself could never unlock the key.
func TestPassphraseFromOnePassword(t *testing.T) {
	home, envDir := encryptedKeySecrets(t)

	// An op double: records its argv, answers for one reference only.
	dir := t.TempDir()
	op, log := filepath.Join(dir, "op"), filepath.Join(dir, "argv")
	require.NoError(t, os.WriteFile(op, []byte(`#!/bin/sh
printf '%s\n' "$@" >> '`+log+`'
[ "$1 $2" = "read op://dev/age key/password" ] || { echo "[ERROR] not found" >&2; exit 1; }
echo pw
`), 0o755))

	ref := "op://dev/age key/password"
	s, err := Load(context.Background(), envDir, Options{Home: home, Passphrase: PassphraseFromEnv(context.Background(), ref, op)})
	require.NoError(t, err)
	checkValues(t, s)
	argv, err := os.ReadFile(log)
	require.NoError(t, err)
	assert.Equal(t, "read\n"+ref+"\n", string(argv), "op read ran once, the reference one argument")

	_, err = Load(context.Background(), envDir, Options{Home: home, Passphrase: PassphraseFromEnv(context.Background(), "op://dev/other/password", op)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "[ERROR] not found")

	// Anything else is the passphrase itself; "" skips protected keys.
	s, err = Load(context.Background(), envDir, Options{Home: home, Passphrase: PassphraseFromEnv(context.Background(), "pw", op)})
	require.NoError(t, err)
	checkValues(t, s)
	assert.Nil(t, PassphraseFromEnv(context.Background(), "", op))
}

func TestAgeWithIdentityFile(t *testing.T) {
	envDir := t.TempDir()
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	idFile := filepath.Join(t.TempDir(), "key.txt")
	require.NoError(t, os.WriteFile(idFile, []byte("# created: now\n"+id.String()+"\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(envDir, "secrets.cfg.age"), encryptAge(t, []byte(cleartext), id.Recipient()), 0o644))
	s, err := Load(context.Background(), envDir, Options{Identities: ParseIdentityList(" " + idFile + " ,"), Home: t.TempDir()})
	require.NoError(t, err)
	checkValues(t, s)

	// A key that is not a recipient gets a message that says what to do,
	// and no value.
	other, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(idFile, []byte(other.String()+"\n"), 0o600))
	_, err = Load(context.Background(), envDir, Options{Identities: []string{idFile}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "none of your identities can decrypt it")
	assert.NotContains(t, err.Error(), "s3cret")
}

func TestAgeDiffable(t *testing.T) {
	envDir := t.TempDir()
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	enc := func(v string) string {
		return base64.StdEncoding.EncodeToString(encryptAge(t, []byte(v), id.Recipient()))
	}
	file := "[batou]\nmembers = alice\nsecret_provider = age-diffable\n\n" +
		"[component:postgres]\nadmin_password = " + enc("s3cret with spaces") + "\n\n" +
		"[host:db]\ndata-role = " + enc("primary") + "\n\n" +
		"[shop]\napi_key = " + enc("k-123\ncontinued") + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(envDir, "secrets.cfg.age-diffable"), []byte(file), 0o644))
	idFile := filepath.Join(t.TempDir(), "key.txt")
	require.NoError(t, os.WriteFile(idFile, []byte(id.String()+"\n"), 0o600))
	s, err := Load(context.Background(), envDir, Options{Identities: []string{idFile}})
	require.NoError(t, err)
	assert.Equal(t, "age-diffable", s.Kind)
	checkValues(t, s)

	// A value with a line longer than bufio.Scanner's default 64 KiB (a
	// JSON credential, a base64 blob) arrives whole, not cut off.
	long := strings.Repeat("x", 100_000)
	file += "\n[component:blob]\njson = " + enc("first\n"+long) + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(envDir, "secrets.cfg.age-diffable"), []byte(file), 0o644))
	s, err = Load(context.Background(), envDir, Options{Identities: []string{idFile}})
	require.NoError(t, err)
	assert.Equal(t, "first\n"+long, s.Components["blob"]["json"])
}

func TestGPG(t *testing.T) {
	gpg, err := exec.LookPath("gpg")
	if err != nil {
		t.Skip("gpg not found: install GnuPG to test secrets.cfg.gpg")
	}
	gnupgHome, err := os.MkdirTemp("", "gpg") // short path: gpg-agent's socket name is limited
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = exec.Command("gpgconf", "--homedir", gnupgHome, "--kill", "all").Run()
		_ = os.RemoveAll(gnupgHome)
	})
	require.NoError(t, os.Chmod(gnupgHome, 0o700))
	env := append(os.Environ(), "GNUPGHOME="+gnupgHome)
	run := func(stdin string, args ...string) {
		cmd := exec.Command(gpg, append([]string{"--batch", "--yes"}, args...)...)
		cmd.Env = env
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
	}
	run("%no-protection\nKey-Type: eddsa\nKey-Curve: ed25519\nKey-Usage: sign\nSubkey-Type: ecdh\nSubkey-Curve: cv25519\nSubkey-Usage: encrypt\nName-Email: alice@example.com\nExpire-Date: 0\n%commit\n",
		"--gen-key")
	envDir := t.TempDir()
	run(cleartext, "--trust-model", "always", "--encrypt", "-r", "alice@example.com", "-o", filepath.Join(envDir, "secrets.cfg.gpg"))

	s, err := Load(context.Background(), envDir, Options{Env: env})
	require.NoError(t, err)
	assert.Equal(t, "gpg", s.Kind)
	checkValues(t, s)

	// Without the key: gpg's message, no value.
	_, err = Load(context.Background(), envDir, Options{Env: append(os.Environ(), "GNUPGHOME="+t.TempDir())})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "gpg --decrypt failed")
}

func TestExactlyOneFile(t *testing.T) {
	envDir := t.TempDir()
	s, err := Load(context.Background(), envDir, Options{})
	require.NoError(t, err)
	assert.Empty(t, s.File)
	assert.Empty(t, s.Components)

	require.NoError(t, os.WriteFile(filepath.Join(envDir, "secrets.cfg.age"), nil, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(envDir, "secrets.cfg.gpg"), nil, 0o644))
	_, err = Load(context.Background(), envDir, Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "secrets.cfg.age, secrets.cfg.gpg")

	require.NoError(t, os.Remove(filepath.Join(envDir, "secrets.cfg.age")))
	require.NoError(t, os.Rename(filepath.Join(envDir, "secrets.cfg.gpg"), filepath.Join(envDir, "secrets.cfg.bak")))
	_, err = Load(context.Background(), envDir, Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown kind ".bak"`)
}

func TestBadCleartextHidesValues(t *testing.T) {
	envDir := t.TempDir()
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	idFile := filepath.Join(t.TempDir(), "key.txt")
	require.NoError(t, os.WriteFile(idFile, []byte(id.String()+"\n"), 0o600))
	bad := "password-without-section = hunter2\n"
	require.NoError(t, os.WriteFile(filepath.Join(envDir, "secrets.cfg.age"), encryptAge(t, []byte(bad), id.Recipient()), 0o644))
	_, err = Load(context.Background(), envDir, Options{Identities: []string{idFile}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "line 1")
	assert.NotContains(t, err.Error(), "hunter2")
}

func TestScrub(t *testing.T) {
	env := []string{
		"PATH=/usr/bin", "HOME=/home/a", "SSH_AUTH_SOCK=/run/agent", "LANG=C.UTF-8",
		"BATOU_AGE_IDENTITY_PASSPHRASE=hunter2", "BATOU_AGE_IDENTITIES=/home/a/.ssh/id_ed25519",
		"OP_SESSION_my=tok", "OP_SERVICE_ACCOUNT_TOKEN=ops_x", "OP_CONNECT_TOKEN=c",
		"COMPONENT_REDIS_PASSWORD=kept-for-provision.sh", "BATOU_AGE_IDENTITY_PASSPHRASEX=other", "NOEQUALS",
	}
	assert.Equal(t, []string{
		"PATH=/usr/bin", "HOME=/home/a", "SSH_AUTH_SOCK=/run/agent", "LANG=C.UTF-8",
		"COMPONENT_REDIS_PASSWORD=kept-for-provision.sh", "BATOU_AGE_IDENTITY_PASSPHRASEX=other", "NOEQUALS",
	}, Scrub(env))
	assert.NotNil(t, Scrub(nil), "nil would make exec inherit the whole environment")
}
