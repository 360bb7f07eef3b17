// Package authkeys reads the public keys a user logs into the devhost with
// (~/.ssh/authorized_keys), as root, for the containers shared with them.
//
// Root reads a file in a directory the user controls, so the user must not
// be able to make it read anything else: the path is resolved inside the
// user's home only (os.Root: a symbolic link out of the home, to
// /etc/shadow or another user's file, is refused, as is an absolute one),
// the file must be a regular file (opened without blocking: a FIFO never
// hangs devhost) owned by the user or root and writable by nobody else
// (what sshd's StrictModes demands, and what defeats a hard link to a file
// of someone else), and at most MaxFile bytes are read.
//
// Only plain keys are taken. A line with options (command=, from=,
// restrict, cert-authority, …) is skipped with a warning: the options
// restrict the key on the devhost and cannot be carried into the
// container faithfully, and dropping them would give a restricted key more
// than its owner allowed. A key keeps its type and base64 body; its
// comment becomes "shared:<user>", so the container's authorized keys say
// whose they are and no text of the user's choice beyond the key reaches
// the container's configuration.
package authkeys

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/crypto/ssh"
)

// Path is the file read, relative to the user's home.
const Path = ".ssh/authorized_keys"

// MaxFile bounds the file: far more than any real authorized_keys (an RSA
// key line is ~750 bytes).
const MaxFile = 64 << 10

// MaxKeys bounds the keys taken from one user.
const MaxKeys = 64

// Comment is the comment a user's keys get in the container.
func Comment(user string) string { return "shared:" + user }

// Account is where a user's keys are: their home directory and user id.
type Account struct {
	User string
	Home string
	UID  uint32
}

// Keys is what Read found.
type Keys struct {
	// Keys are authorized_keys lines "<type> <base64> shared:<user>", in
	// file order, without duplicates.
	Keys []string
	// Warnings say which lines were skipped and why (line numbers, never
	// the line's content).
	Warnings []string
}

// Read returns a's keys. A missing file gives no keys and a warning; a
// file that is refused (link out of the home, not a regular file, wrong
// owner or mode, too big) gives an error naming it and what to do.
func Read(a Account) (Keys, error) {
	file := strings.TrimSuffix(a.Home, "/") + "/" + Path
	root, err := os.OpenRoot(a.Home)
	if err != nil {
		return Keys{}, fmt.Errorf("home of %q: %w", a.User, err)
	}
	defer func() { _ = root.Close() }()
	f, err := root.OpenFile(Path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return Keys{Warnings: []string{fmt.Sprintf("%s does not exist: %q has no keys to log in with", file, a.User)}}, nil
	}
	if err != nil {
		return Keys{}, fmt.Errorf("%s: %w; it must be a file inside the home of %q, not a link out of it", file, err, a.User)
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return Keys{}, fmt.Errorf("%s: %w", file, err)
	}
	if !fi.Mode().IsRegular() {
		return Keys{}, fmt.Errorf("%s is not a regular file (%s); %q must make it one", file, fi.Mode().Type(), a.User)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid != a.UID && st.Uid != 0 || fi.Mode().Perm()&0o022 != 0 {
		return Keys{}, fmt.Errorf("%s must belong to %q (or root) and be writable by nobody else, as sshd demands; run `chmod go-w %s`", file, a.User, file)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFile+1))
	if err != nil {
		return Keys{}, fmt.Errorf("%s: %w", file, err)
	}
	if len(b) > MaxFile {
		return Keys{}, fmt.Errorf("%s is larger than %d bytes; keep only the keys %q logs in with", file, MaxFile, a.User)
	}
	return parse(file, a.User, b), nil
}

// parse takes the plain keys of an authorized_keys file.
func parse(file, user string, b []byte) Keys {
	var out Keys
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), MaxFile+1)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		warn := func(why string) { out.Warnings = append(out.Warnings, fmt.Sprintf("%s:%d: %s, skipped", file, n, why)) }
		// One line in, so nothing is left over (rest is empty).
		key, _, options, _, err := ssh.ParseAuthorizedKey(line)
		switch {
		case err != nil:
			warn("not a public key")
			continue
		case len(options) > 0:
			warn("the key has options (command=, from=, restrict, …), which the container cannot honour")
			continue
		}
		k := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))) + " " + Comment(user)
		if slices.Contains(out.Keys, k) {
			continue
		}
		if len(out.Keys) == MaxKeys {
			warn(fmt.Sprintf("more than %d keys", MaxKeys))
			break
		}
		out.Keys = append(out.Keys, k)
	}
	return out
}
