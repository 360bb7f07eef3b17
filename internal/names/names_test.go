package names

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestContainer(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"web", true},
		{"a", true},
		{"3f2a9c01b7e", true},
		{"shop-dev", true},
		{"abcdefghijk", true},
		{"abcdefghijkl", false}, // 12 characters: ve-<name> exceeds IFNAMSIZ
		{"", false},
		{"12345678901", false}, // all digits
		{"-web", false},
		{"web-", false},
		{"Web", false},
		{"my_web", false},
		{"web.x", false},
		{"wéb", false},
		{"a;b", false},
	}
	for _, tt := range tests {
		err := Container(tt.in)
		if tt.ok {
			assert.NoError(t, err, tt.in)
		} else {
			assert.ErrorIs(t, err, ErrInvalid, tt.in)
			var ne *Error
			assert.True(t, errors.As(err, &ne))
			assert.NotEmpty(t, ne.Hint)
		}
	}
}

func TestAlias(t *testing.T) {
	assert.NoError(t, Alias("admin"))
	assert.NoError(t, Alias(strings.Repeat("a", 63)))
	assert.Error(t, Alias(strings.Repeat("a", 64)))
	assert.Error(t, Alias("not_a_dns_label"))
	assert.Error(t, Alias("a.b"))
	assert.Error(t, Alias("${x}"))
}

func TestDomain(t *testing.T) {
	assert.NoError(t, Domain("dev.example.com"))
	assert.NoError(t, Domain("dev.test"))
	assert.NoError(t, Domain("host1.10.example"))
	assert.Error(t, Domain("dev..example.com"))
	assert.Error(t, Domain("dev.example.com."))
	assert.Error(t, Domain("dev example"))
	assert.Error(t, Domain(""))
}

func TestUser(t *testing.T) {
	assert.NoError(t, User("s-shop"))
	assert.NoError(t, User("_svc"))
	assert.Error(t, User("1abc"))
	assert.Error(t, User("s shop"))
	assert.Error(t, User("root\"; x"))
}

func TestChannel(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"https://hydra.flyingcircus.io/build/116563/download/1/nixexprs.tar.xz", true},
		{"file:///nix/var/nix/profiles/per-user/root/channels/nixos", true},
		{"https://example.com/nixexprs.tar.xz?x=1&y=2", true},
		{`https://example.com/"; rm -rf / #`, false},
		{"https://example.com/${builtins.abort}", false},
		{"https://example.com/a b", false},
		{"http://example.com/x", false},
		{"ftp://example.com/x", false},
		{"file://relative/x", false},
		{"https:///x", false},
		{"https://user:pw@example.com/x", false},
		{"https://example.com/`id`", false},
		{"https://example.com/'x'", false},
		{"https://example.com/\\x", false},
		{"https://example.com/x\n", false},
	}
	for _, tt := range tests {
		err := Channel(tt.in)
		if tt.ok {
			assert.NoError(t, err, tt.in)
		} else {
			assert.Error(t, err, tt.in)
		}
	}
}

func FuzzChannelIsShellAndNixSafe(f *testing.F) {
	f.Add("https://example.com/x")
	f.Add(`https://example.com/"; rm -rf / #`)
	f.Fuzz(func(t *testing.T, s string) {
		if Channel(s) != nil {
			return
		}
		if strings.ContainsAny(s, "\"'`$\\ \t\n\r{}<>|*") {
			t.Fatalf("accepted unsafe channel %q", s)
		}
	})
}

func TestEnvironment(t *testing.T) {
	for _, ok := range []string{"dev", "review-2", "prod.eu", "a_b", "X1", strings.Repeat("e", 64)} {
		assert.NoError(t, Environment(ok), ok)
	}
	for _, bad := range []string{"", ".hidden", "-x", "my env", "dev+x", "ümlaut", "a/b", strings.Repeat("e", 65)} {
		assert.ErrorIs(t, Environment(bad), ErrInvalid, bad)
	}
}
