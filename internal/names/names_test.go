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

func TestEnvironment(t *testing.T) {
	for _, ok := range []string{"dev", "review-2", "prod.eu", "a_b", "X1", strings.Repeat("e", 64)} {
		assert.NoError(t, Environment(ok), ok)
	}
	for _, bad := range []string{"", ".hidden", "-x", "my env", "dev+x", "ümlaut", "a/b", strings.Repeat("e", 65)} {
		assert.ErrorIs(t, Environment(bad), ErrInvalid, bad)
	}
}
