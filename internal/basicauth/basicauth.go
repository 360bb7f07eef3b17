// Package basicauth makes the password file of a container's HTTP basic
// auth (devhost protect): a random password, its SHA-512 crypt hash
// ("$6$…", which nginx checks with the C library's crypt) and the
// one-line htpasswd file "user:hash" that nginx's auth_basic_user_file
// reads on every request, so a new password works without a reload.
package basicauth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/GehirnInc/crypt/sha512_crypt"

	"github.com/flyingcircusio/devhost/internal/atomicfile"
	"github.com/flyingcircusio/devhost/internal/names"
)

const (
	// PasswordLen is the length of a generated password: 20 characters
	// of 62 carry 119 bits, beyond guessing even at nginx's pace.
	PasswordLen = 20
	// FileMode is the password file's mode: root writes, nginx's group
	// (the directory's) reads, nobody else.
	FileMode os.FileMode = 0o640
	// DirMode is the most the directory of password files may allow.
	DirMode os.FileMode = 0o750

	alphabet     = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	saltAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	saltLen      = 16 // SHA-crypt's maximum
)

// NewPassword returns PasswordLen characters of [0-9A-Za-z] from
// crypto/rand, each uniformly distributed.
func NewPassword() (string, error) {
	return randomString(alphabet, PasswordLen)
}

// randomString draws n characters of alphabet (at most 256) uniformly:
// bytes beyond the largest multiple of len(alphabet) are rejected, not
// folded onto the first characters.
func randomString(alphabet string, n int) (string, error) {
	limit := 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("random password: %w", err)
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out), nil
}

// Hash returns the SHA-512 crypt hash of password with a random 16
// character salt and the default 5000 rounds: "$6$<salt>$<hash>". nginx
// computes it on each request, so more rounds would cost every page view
// while a generated password needs none.
func Hash(password string) (string, error) {
	salt, err := randomString(saltAlphabet, saltLen)
	if err != nil {
		return "", err
	}
	h, err := sha512_crypt.New().Generate([]byte(password), []byte(sha512_crypt.MagicPrefix+salt))
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return h, nil
}

// WriteFile replaces path with the line "user:hash", mode FileMode and the
// group of path's directory, which the NixOS module creates as
// root:<nginx group> (0750); a missing directory is created with DirMode
// and a more open one is closed. The file appears under its name only
// complete and readable by that group.
func WriteFile(path, user, hash string) error {
	if err := names.User(user); err != nil {
		return err // a ':' or newline would change the file's meaning
	}
	if !strings.HasPrefix(hash, sha512_crypt.MagicPrefix) || strings.ContainsAny(hash, ":\n") {
		return errors.New("basicauth: not a SHA-512 crypt hash")
	}
	return Restore(path, []byte(user+":"+hash+"\n"))
}

// Restore puts back content a WriteFile wrote before, as WriteFile
// writes it: mode FileMode, the directory's group.
func Restore(path string, content []byte) error {
	dir := filepath.Dir(path)
	if err := atomicfile.PrivateDir(dir, DirMode); err != nil {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("password file %s: %w", path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("password file %s: no group of %s", path, dir)
	}
	return atomicfile.WriteFileGroup(path, content, FileMode, int(st.Gid))
}
