package lifecycle

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestValidateChannelPrefixBoundary: ensure applies the host
// configuration's own channel rule (hostconfig.CheckChannel), so an
// allowed prefix cannot be left by a longer host name or by climbing out of
// a file:// path.
func TestValidateChannelPrefixBoundary(t *testing.T) {
	h, _ := testHost(t)
	h.Cfg.Channels.AllowedPrefixes = []string{"https://hydra.flyingcircus.io", "file:///nix/var/nix/profiles/per-user/root/channels/"}
	for channel, ok := range map[string]bool{
		"https://hydra.flyingcircus.io/build/1/download/1/nixexprs.tar.xz":               true,
		"file:///nix/var/nix/profiles/per-user/root/channels/nixos":                      true,
		"https://hydra.flyingcircus.io.evil.example/nixexprs.tar.xz":                     false,
		"file:///nix/var/nix/profiles/per-user/root/channels/../../alice/channels/nixos": false,
	} {
		err := h.Validate(context.Background(), &EnsureRequest{Name: "shop", Channel: channel, Caller: alice}, "provision.nix")
		if ok {
			assert.NoError(t, err, channel)
		} else {
			assert.ErrorContains(t, err, "Channel not allowed on this devhost", channel)
		}
	}
}
