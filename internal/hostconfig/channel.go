package hostconfig

import (
	"fmt"
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
	for _, p := range c.Channels.AllowedPrefixes {
		if strings.HasPrefix(channel, p) {
			return nil
		}
	}
	return &names.Error{Kind: "channel URL", Value: channel,
		Why:  "this devhost does not allow it",
		Hint: fmt.Sprintf("use a channel starting with one of: %s", strings.Join(c.Channels.AllowedPrefixes, ", "))}
}
