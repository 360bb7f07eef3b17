package channel

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/flyingcircusio/devhost/internal/names"
)

// DefaultStoreDir is the Nix store.
const DefaultStoreDir = "/nix/store"

// Prefix is one of a host's allowed channel prefixes: "https://" (every
// https:// channel), an https:// URL (channels on that host, below that
// path), or a file:// directory (channels in or below it). A prefix
// matches whole path segments: https://h/build allows https://h/build/1
// but not https://h/buildx.
type Prefix struct {
	kind Kind
	any  bool   // "https://"
	host string // HTTPS
	path string // "" or "/seg/…"
	raw  string
}

// ParsePrefix reads an allowed prefix: a channel URL (see Parse),
// optionally ending in '/', or "https://" alone.
func ParsePrefix(s string) (Prefix, error) {
	if s == "https://" {
		return Prefix{kind: HTTPS, any: true, raw: s}, nil
	}
	t := strings.TrimSuffix(s, "/")
	if s == "file://" || t == "file://" {
		return Prefix{}, &names.Error{Kind: "channel prefix", Value: s, Why: "it would allow every directory of the host",
			Hint: "name the directory that holds the channels, e.g. file:///nix/var/nix/profiles/per-user/root/channels/"}
	}
	c, err := Parse(t)
	if err != nil {
		var ne *names.Error
		if errors.As(err, &ne) {
			return Prefix{}, &names.Error{Kind: "channel prefix", Value: s, Why: ne.Why,
				Hint: "use \"https://\", an https:// URL or a file:// directory of the channel URL grammar, optionally ending in '/'"}
		}
		return Prefix{}, err
	}
	return Prefix{kind: c.kind, host: c.host, path: c.path, raw: s}, nil
}

// String is the prefix as written.
func (p Prefix) String() string { return p.raw }

// covers reports whether c's URL lies under p.
func (p Prefix) covers(c Channel) bool {
	return p.kind == c.kind && (p.any || p.host == c.host && under(c.path, p.path))
}

// under reports whether path is dir or lies below it (whole segments).
func under(path, dir string) bool {
	return dir == "" || path == dir || strings.HasPrefix(path, dir+"/")
}

// Policy is a host's rule for the channels containers may use.
type Policy struct {
	// Prefixes the channels must lie under. None: any https:// channel,
	// and no file:// channel.
	Prefixes []Prefix
	// Owners are user IDs trusted like root to own a file:// channel's
	// directory and its parents. nil on a devhost; a test running
	// unprivileged trusts its own user this way.
	Owners []uint32
	// StoreDir is the Nix store (DefaultStoreDir when empty).
	StoreDir string
}

// Resolved is a channel a Policy allowed, with the location Nix is given:
// an https:// channel's URL, or a file:// channel's canonical directory.
type Resolved struct {
	ch  Channel
	loc string
}

// Channel is the channel as the caller wrote it (its URL is what the
// registry records).
func (r Resolved) Channel() Channel { return r.ch }

// Location is what Nix reads: the URL, or the directory with symlinks
// resolved (so a symlink changed after the check cannot redirect Nix).
func (r Resolved) Location() string { return r.loc }

// NixArgs are the search-path entries (and, for https://, the one URI
// restricted evaluation may fetch) that make the channel <nixpkgs> for
// nix-build or nix-instantiate. "-I <location>" also finds
// <location>/nixpkgs in channels that bundle nixpkgs (the platform's).
// Neither entry can hold a second '=': the location has none.
func (r Resolved) NixArgs() []string {
	args := []string{"-I", "nixpkgs=" + r.loc, "-I", r.loc}
	if r.ch.kind == HTTPS {
		args = append(args, "--option", "allowed-uris", r.loc)
	}
	return args
}

// Check decides whether a container may use c. An https:// channel must
// lie under an allowed prefix (any, when there are none). A file://
// channel must lie under an allowed file:// prefix as written; its
// canonical directory (symlinks resolved) must lie under one too, or in
// the Nix store, whose paths are immutable and world-readable anyway; and
// that directory and every parent must be owned by root and writable by
// nobody else, so no one but root decides what Nix reads there as root.
// The error is a *names.Error.
func (p Policy) Check(c Channel) (Resolved, error) {
	bad := func(why, hint string) (Resolved, error) {
		return Resolved{}, &names.Error{Kind: "channel URL", Value: c.String(), Why: why, Hint: hint}
	}
	if c.IsZero() {
		return bad("there is no channel", Hint)
	}
	allowed := p.allowed(c.kind)
	if !slices.ContainsFunc(p.Prefixes, func(pr Prefix) bool { return pr.covers(c) }) {
		switch {
		case c.kind == HTTPS && len(p.Prefixes) == 0:
			return Resolved{ch: c, loc: c.String()}, nil
		case len(allowed) == 0:
			use := "an https:// channel"
			if len(p.Prefixes) > 0 {
				use = "a channel under " + strings.Join(p.allowed(0), ", ")
			}
			return bad(fmt.Sprintf("this devhost allows no %s:// channels", c.kind),
				"use "+use+", or ask the devhost's admin to allow this channel's place in allowedChannelPrefixes (host configuration channels.allowed_prefixes)")
		}
		return bad("it lies under none of this devhost's allowed prefixes",
			"use a channel under "+strings.Join(allowed, ", ")+" (host configuration channels.allowed_prefixes)")
	}
	if c.kind == HTTPS {
		return Resolved{ch: c, loc: c.String()}, nil
	}
	hint := "a file:// channel must be a directory under " + strings.Join(allowed, ", ") +
		" that, like every directory above it, is owned by root and writable by nobody else; ask the devhost's admin"
	canon, err := filepath.EvalSymlinks(c.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return bad(fmt.Sprintf("%s does not exist", c.path), hint)
		}
		return bad(fmt.Sprintf("cannot resolve %s: %v", c.path, err), hint)
	}
	if why := checkPath(canon, true); why != "" {
		return bad(fmt.Sprintf("%s resolves to %s, and %s", c.path, canon, strings.TrimPrefix(why, "it ")), hint)
	}
	if !p.inStore(canon) && !p.underFilePrefix(canon) {
		return bad(fmt.Sprintf("%s resolves to %s, which lies under none of the allowed prefixes (a symlink leads out of them)", c.path, canon), hint)
	}
	fi, err := os.Stat(canon)
	if err != nil {
		return bad(err.Error(), hint)
	}
	if !fi.IsDir() {
		return bad(fmt.Sprintf("%s is not a directory", canon), hint)
	}
	if err := p.trusted(canon); err != nil {
		return bad(err.Error(), hint)
	}
	return Resolved{ch: c, loc: canon}, nil
}

// allowed lists the prefixes of kind k (all of them for 0).
func (p Policy) allowed(k Kind) []string {
	var out []string
	for _, pr := range p.Prefixes {
		if k == 0 || pr.kind == k {
			out = append(out, pr.raw)
		}
	}
	return out
}

func (p Policy) storeDir() string {
	if p.StoreDir != "" {
		return p.StoreDir
	}
	return DefaultStoreDir
}

// inStore reports whether dir is inside a store path.
func (p Policy) inStore(dir string) bool {
	return strings.HasPrefix(dir, p.storeDir()+"/")
}

// underFilePrefix reports whether the canonical dir lies under the
// canonical directory of an allowed file:// prefix.
func (p Policy) underFilePrefix(dir string) bool {
	for _, pr := range p.Prefixes {
		if pr.kind != File {
			continue
		}
		if cp, err := filepath.EvalSymlinks(pr.path); err == nil && under(dir, cp) {
			return true
		}
	}
	return false
}

// trusted checks that dir and every parent are owned by root (or one of
// p.Owners) and writable by neither group nor others. The store directory
// is exempt from the group rule only: Nix keeps it root:nixbld 1775.
func (p Policy) trusted(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Lstat(d)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("cannot read the owner of %s", d)
		}
		if st.Uid != 0 && !slices.Contains(p.Owners, st.Uid) {
			return fmt.Errorf("%s is owned by uid %d, not by root", d, st.Uid)
		}
		w := fi.Mode().Perm() & 0o022
		if d == p.storeDir() && fi.Mode()&fs.ModeSticky != 0 {
			w &^= 0o020
		}
		if w != 0 {
			return fmt.Errorf("%s is writable by its group or by others (%s)", d, fi.Mode())
		}
		if d == "/" || d == "." {
			return nil
		}
	}
}
