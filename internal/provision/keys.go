package provision

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/flyingcircusio/devhost/internal/atomicfile"
	"github.com/flyingcircusio/devhost/internal/inputfile"
)

// maxKey bounds the private key file devhost reads (an ed25519 key in
// OpenSSH format has about 400 bytes; an RSA one a few KiB).
const maxKey = 64 << 10

// KeyPair is an environment's ssh key: the private half lives in the
// deployment root (mode 0600) and is named by IdentityFile in
// ssh_config_<env>; the public half is authorised for the user developer in
// every container of the environment.
type KeyPair struct {
	PrivatePath string // <root>/ssh_key_<env>
	PublicPath  string // <root>/ssh_key_<env>.pub
	// Public is the authorized_keys line, "ssh-ed25519 AAAA… devhost:<env>".
	Public string
	// Created is true when this call generated the key.
	Created bool
}

// KeyPaths returns where the key pair of env lives in the deployment root.
func KeyPaths(root, env string) (private, public string) {
	private = filepath.Join(root, "ssh_key_"+env)
	return private, private + ".pub"
}

// EnsureKey returns the environment's key pair, generating an ed25519 pair
// when there is none yet or when rotate is set (`devhost up --rebuild`).
// Instead of batou's one well-known key, every environment gets its own, so
// a container is reachable only by whoever holds its deployment's key.
//
// An existing private key that is not an unencrypted OpenSSH/PEM key, or
// that others can read, is an error: ssh would refuse it later with a less
// helpful message.
func EnsureKey(root, env string, rotate bool) (KeyPair, error) {
	priv, pub := KeyPaths(root, env)
	kp := KeyPair{PrivatePath: priv, PublicPath: pub}
	if !rotate {
		data, err := inputfile.Read(priv, maxKey)
		switch {
		case err == nil:
			fi, err := os.Stat(priv)
			if err != nil {
				return kp, fmt.Errorf("ssh key %s: %w", priv, err)
			}
			if fi.Mode().Perm()&0o077 != 0 {
				return kp, fmt.Errorf("ssh key %s: mode %04o lets others read it; run `chmod 600 %s` (or `devhost up --rebuild` for a new key)",
					priv, fi.Mode().Perm(), priv)
			}
			signer, err := ssh.ParsePrivateKey(data)
			if err != nil {
				return kp, fmt.Errorf("ssh key %s: %w; remove it or run `devhost up --rebuild` to create a new one", priv, err)
			}
			kp.Public = authorizedLine(signer.PublicKey(), env)
			// The .pub file is a convenience; recreate it if it was lost.
			if cur, err := os.ReadFile(pub); err != nil || strings.TrimSpace(string(cur)) != kp.Public {
				if err := atomicfile.WriteFile(pub, []byte(kp.Public+"\n"), 0o644); err != nil {
					return kp, err
				}
			}
			return kp, nil
		case errors.Is(err, fs.ErrNotExist):
		default:
			return kp, fmt.Errorf("ssh key %s: %w", priv, err)
		}
	}
	pubKey, privKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return kp, fmt.Errorf("generate ssh key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(privKey, "devhost:"+env)
	if err != nil {
		return kp, fmt.Errorf("encode ssh key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pubKey)
	if err != nil {
		return kp, fmt.Errorf("encode ssh key: %w", err)
	}
	kp.Public = authorizedLine(sshPub, env)
	kp.Created = true
	// Public half first: a run interrupted between the two writes leaves
	// the old private key, which EnsureKey then reuses consistently.
	if err := atomicfile.WriteFile(pub, []byte(kp.Public+"\n"), 0o644); err != nil {
		return kp, err
	}
	if err := atomicfile.WriteFile(priv, pem.EncodeToMemory(block), 0o600); err != nil {
		return kp, err
	}
	return kp, nil
}

func authorizedLine(k ssh.PublicKey, env string) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + " devhost:" + env
}
