// Package names validates the names devhost hands to NixOS, nginx, DNS and
// the shell: container names, aliases, domains and users.
//
// Every check here is a whitelist. A container name or alias that passes can
// be used as a NixOS container name (interface ve-<name>, at most 15
// characters), as a DNS label of <alias>.<name>.<public address>, and as a
// single shell word, without any further quoting. Channel URLs have their
// own grammar, in package channel.
// Escaping is still applied downstream; this is the first of two locks.
package names

import (
	"errors"
	"fmt"
	"strings"
)

// MaxContainerName is the longest container name: NixOS names the host side
// of a private network veth "ve-<name>", and Linux interface names have at
// most 15 characters.
const MaxContainerName = 11

// MaxLabel is the longest DNS label (RFC 1035).
const MaxLabel = 63

// MaxDomain is the longest domain name in presentation form (RFC 1035).
const MaxDomain = 253

// Error explains why a name is invalid and what to do about it.
type Error struct {
	Kind  string // "container name", "alias", …
	Value string
	Why   string
	Hint  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("invalid %s %q: %s", e.Kind, e.Value, e.Why)
}

// ErrInvalid is matched by every *Error with errors.Is.
var ErrInvalid = errors.New("invalid name")

// Is makes errors.Is(err, ErrInvalid) true for every *Error.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// label checks the DNS label rules shared by container names and aliases.
func label(kind, s string, maxLen int, hint string) error {
	bad := func(why string) error { return &Error{Kind: kind, Value: s, Why: why, Hint: hint} }
	switch {
	case s == "":
		return bad("it is empty")
	case len(s) > maxLen:
		return bad(fmt.Sprintf("it has %d characters, at most %d are allowed", len(s), maxLen))
	case s[0] == '-' || s[len(s)-1] == '-':
		return bad("it starts or ends with a hyphen")
	}
	digits := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
		case c >= 'a' && c <= 'z', c == '-':
			digits = false
		case c >= 'A' && c <= 'Z':
			return bad("it contains upper-case letters")
		case c == '_':
			return bad("it contains an underscore")
		default:
			return bad(fmt.Sprintf("it contains %q", rune(c)))
		}
	}
	if digits {
		return bad("it consists of digits only")
	}
	return nil
}

// Container checks a NixOS container name: a DNS label of lowercase letters,
// digits and inner hyphens, at most 11 characters, not all digits.
func Container(s string) error {
	return label("container name", s, MaxContainerName,
		"use 1 to 11 lowercase letters, digits and inner hyphens, e.g. \"shop-dev\"")
}

// Alias checks an alias, which becomes the first label of <alias>.<name>.<public>.
func Alias(s string) error {
	return label("alias", s, MaxLabel,
		"use a DNS label: lowercase letters, digits and inner hyphens, e.g. \"admin\"")
}

// Domain checks a public address such as dev.example.com: dot-separated DNS
// labels (digits-only labels are allowed here), at most 253 characters.
func Domain(s string) error {
	hint := "use a DNS name such as \"dev.example.com\""
	if s == "" || len(s) > MaxDomain {
		return &Error{Kind: "domain", Value: s, Why: "it must have 1 to 253 characters", Hint: hint}
	}
	for _, l := range strings.Split(s, ".") {
		if err := label("domain", l, MaxLabel, hint); err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Why == "it consists of digits only" {
				continue
			}
			e.Value = s
			e.Why = fmt.Sprintf("label %q: %s", l, e.Why)
			return e
		}
	}
	return nil
}

// FQDN checks that <alias>.<name>.<public> is a valid domain name.
func FQDN(alias, name, public string) error {
	fq := alias + "." + name + "." + public
	if len(fq) > MaxDomain {
		return &Error{Kind: "alias", Value: alias, Why: fmt.Sprintf("%q is longer than %d characters", fq, MaxDomain),
			Hint: "use a shorter alias"}
	}
	return nil
}

// FlatSeparator joins an alias and its container's name in a flat alias
// name: <alias>--<name>.<public>.
const FlatSeparator = "--"

// FlatFQDN checks that the flat alias name <alias>--<name>.<public> is a
// valid domain name that cannot be read as another container's name or
// alias: neither alias nor name may contain "--" (so the label splits at
// its only "--"), and the label has at most MaxLabel characters.
func FlatFQDN(alias, name, public string) error {
	label := alias + FlatSeparator + name
	bad := func(kind, value, why, hint string) error {
		return &Error{Kind: kind, Value: value, Why: why, Hint: hint}
	}
	switch {
	case strings.Contains(alias, FlatSeparator):
		return bad("alias", alias, `it contains "--", which separates alias and container name in flat alias names`, "use single hyphens")
	case strings.Contains(name, FlatSeparator):
		return bad("container name", name, `it contains "--", which separates alias and container name in flat alias names`, "use single hyphens")
	case len(label) > MaxLabel:
		return bad("alias", alias, fmt.Sprintf("the flat alias name's label %q is longer than %d characters", label, MaxLabel), "use a shorter alias")
	case len(label)+1+len(public) > MaxDomain:
		return bad("alias", alias, fmt.Sprintf("%q is longer than %d characters", label+"."+public, MaxDomain), "use a shorter alias")
	}
	return nil
}

// User checks a Unix user name such as a service user ("s-shop"): it is
// written into the container's configuration and used as a path component.
func User(s string) error {
	bad := func(why string) error {
		return &Error{Kind: "user name", Value: s, Why: why,
			Hint: "use lowercase letters, digits, '-' and '_', starting with a letter or '_', at most 32 characters"}
	}
	if s == "" || len(s) > 32 {
		return bad("it must have 1 to 32 characters")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c == '_' || i > 0 && (c >= '0' && c <= '9' || c == '-')
		if !ok {
			return bad(fmt.Sprintf("it contains %q at position %d", rune(c), i+1))
		}
	}
	return nil
}
