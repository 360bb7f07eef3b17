package hostconfig

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/flyingcircusio/devhost/internal/names"
)

// CheckChannel reports whether a container may use channel: it must pass
// names.Channel and, when channels.allowed_prefixes is set, start with one
// of them. The error is a *names.Error (errors.Is(err, names.ErrInvalid)).
func (c *Config) CheckChannel(channel string) error {
	if err := names.Channel(channel); err != nil {
		return err
	}
	if len(c.Channels.AllowedPrefixes) == 0 {
		return nil
	}
	bad := func(why string) error {
		return &names.Error{Kind: "channel URL", Value: channel, Why: why,
			Hint: fmt.Sprintf("use a channel starting with one of: %s", strings.Join(c.Channels.AllowedPrefixes, ", "))}
	}
	// "." and ".." segments (also percent-encoded) would climb out of an
	// allowed prefix: file:///nix/var/nix/profiles/../../../home/x.
	if u, err := url.Parse(channel); err != nil || hasDotSegment(u.Path) {
		return bad("it has a \".\" or \"..\" path segment")
	}
	for _, p := range c.Channels.AllowedPrefixes {
		if prefixMatches(channel, p) {
			return nil
		}
	}
	return bad("this devhost does not allow it")
}

// prefixMatches reports whether channel starts with the allowed prefix p.
// A prefix that ends inside the host ("https://hydra.flyingcircus.io")
// must end there: it does not allow https://hydra.flyingcircus.io.evil.example/.
func prefixMatches(channel, p string) bool {
	if !strings.HasPrefix(channel, p) {
		return false
	}
	u, err := url.Parse(p)
	if err != nil || u.Path != "" || u.Opaque != "" || len(channel) == len(p) {
		return err == nil
	}
	return strings.IndexByte("/?#", channel[len(p)]) >= 0
}

func hasDotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}
