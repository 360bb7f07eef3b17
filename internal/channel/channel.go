// Package channel parses the channel URLs containers are built from and
// decides whether a host lets a container use one.
//
// A channel ends up on the command line of nix-build run as root, as
// "-I nixpkgs=<location>" and "-I <location>", and restricted evaluation
// lets Nix read every path on that search path. Nix splits an -I entry at
// its first '=', and URL delimiters ('?', '#', '%', userinfo, ports) make a
// URL mean a different place than its text suggests; either would let a
// caller add a path of their choice (/etc, say) to what Nix reads as root.
// So the grammar is a whitelist with one reading: an https:// host and a
// path of RFC 3986 unreserved characters, or an absolute file:// path of
// the same characters, neither with dot segments. Nix's arguments are built
// from the parsed value (see Resolved.NixArgs), never from the raw string,
// and only a channel a host's Policy has checked yields them.
package channel

import (
	"errors"
	"fmt"
	"strings"

	"github.com/flyingcircusio/devhost/internal/names"
)

// MaxLen is the longest channel URL accepted.
const MaxLen = 2048

// Kind is a channel's scheme.
type Kind uint8

// The two kinds of channel.
const (
	HTTPS Kind = iota + 1 // a tarball Nix downloads
	File                  // a directory on the host
)

// Hint is the advice every grammar error carries.
const Hint = "use an https:// URL whose path has only letters, digits and \"-._~\" " +
	"(e.g. https://hydra.flyingcircus.io/build/116563/download/1/nixexprs.tar.xz), " +
	"or an absolute file:// path of the same characters (e.g. file:///nix/var/nix/profiles/per-user/root/channels/nixos)"

// Channel is a parsed channel URL. The zero value is no channel; Parse is
// the only way to make another.
type Channel struct {
	kind Kind
	host string // HTTPS only: a lower-case DNS name
	path string // "" or "/seg/…/seg"; for File never "" or "/"
}

// Parse reads s by the channel grammar:
//
//	channel = "https://" host [ path ] | "file://" path
//	path    = 1*( "/" segment )
//	segment = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" ), not "." or ".."
//	host    = a DNS name of lower-case labels (no userinfo, no port)
//
// The error is a *names.Error saying what is wrong and what to use.
func Parse(s string) (Channel, error) {
	bad := func(why string) (Channel, error) {
		return Channel{}, &names.Error{Kind: "channel URL", Value: s, Why: why, Hint: Hint}
	}
	if len(s) > MaxLen {
		return bad(fmt.Sprintf("it is longer than %d characters", MaxLen))
	}
	var c Channel
	rest := ""
	switch {
	case strings.HasPrefix(s, "https://"):
		c.kind = HTTPS
		hostport := s[len("https://"):]
		host, path, _ := strings.Cut(hostport, "/")
		if path != "" || strings.HasSuffix(hostport, "/") {
			rest = "/" + path
		}
		if err := checkHost(host); err != "" {
			return bad(err)
		}
		c.host = host
	case strings.HasPrefix(s, "file://"):
		c.kind = File
		rest = s[len("file://"):]
		if !strings.HasPrefix(rest, "/") {
			return bad("a file:// URL names no host: write file:/// followed by an absolute path")
		}
	default:
		return bad("only https:// and file:// channels are allowed (scheme in lower case)")
	}
	if why := checkPath(rest, c.kind == File); why != "" {
		return bad(why)
	}
	c.path = rest
	return c, nil
}

// checkHost explains what is wrong with an https:// URL's host, or is "".
func checkHost(host string) string {
	switch {
	case host == "":
		return "it has no host"
	case strings.ContainsRune(host, '@'):
		return "it contains user information ('@'); channels are fetched without credentials"
	case strings.ContainsRune(host, ':'):
		return "it names a port; channels are fetched from the standard https port"
	}
	if i := strings.IndexFunc(host, func(r rune) bool { return !isUnreserved(r) }); i >= 0 {
		return fmt.Sprintf("its host contains %q", []rune(host[i:])[0])
	}
	if err := names.Domain(host); err != nil {
		var ne *names.Error
		if errors.As(err, &ne) {
			return fmt.Sprintf("its host %q is no DNS name: %s", host, ne.Why)
		}
		return err.Error()
	}
	return ""
}

// checkPath explains what is wrong with a path ("" or "/seg/…"), or is "".
func checkPath(p string, needed bool) string {
	if p == "" {
		if needed {
			return "a file:// URL needs an absolute path"
		}
		return ""
	}
	if p == "/" {
		if needed {
			return "file:/// is the whole file system; name the channel's directory"
		}
		return "it ends with '/'; leave the slash out"
	}
	for i, seg := range strings.Split(p[1:], "/") {
		switch seg {
		case "":
			if i == strings.Count(p, "/")-1 {
				return "it ends with '/'; leave the slash out"
			}
			return "it has an empty path segment (\"//\")"
		case ".", "..":
			return fmt.Sprintf("it has a %q path segment; write the path without it", seg)
		}
		if j := strings.IndexFunc(seg, func(r rune) bool { return !isUnreserved(r) }); j >= 0 {
			r := []rune(seg[j:])[0]
			return fmt.Sprintf("its path contains %q, which a channel URL may not contain (only letters, digits and \"-._~\")", r)
		}
	}
	return ""
}

// isUnreserved reports whether r is an RFC 3986 unreserved character.
func isUnreserved(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~", r)
}

// String is the scheme's name.
func (k Kind) String() string {
	switch k {
	case HTTPS:
		return "https"
	case File:
		return "file"
	}
	return "no"
}

// IsZero reports whether c is no channel.
func (c Channel) IsZero() bool { return c.kind == 0 }

// Kind is c's scheme.
func (c Channel) Kind() Kind { return c.kind }

// Path is a file:// channel's directory as written (not resolved), or
// an https:// URL's path.
func (c Channel) Path() string { return c.path }

// String is the URL; Parse(c.String()) == c.
func (c Channel) String() string {
	switch c.kind {
	case HTTPS:
		return "https://" + c.host + c.path
	case File:
		return "file://" + c.path
	}
	return ""
}
