package names

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

func TestReserved(t *testing.T) {
	for _, tt := range []struct {
		name   string
		others []string
		want   bool
	}{
		{"nixos", nil, true},
		{"wpad", nil, true},
		{"localhost", nil, true},
		{"shop", nil, false},
		{"dev01", []string{"dev01.example.com"}, true},
		{"dev01", []string{"DEV01"}, true},
		{"example", []string{"dev01.example.com"}, false},
	} {
		assert.Equal(t, tt.want, Reserved(tt.name, tt.others...), "%s %v", tt.name, tt.others)
	}
}

// TestNginxBucketSize follows ngx_hash_init: a bucket holds a name of n
// bytes when 8 + align8(n+2) + 8 <= size.
func TestNginxBucketSize(t *testing.T) {
	for n, want := range map[int]int{1: 32, 14: 32, 15: 64, 46: 64, 47: 128, 110: 128, 111: 256, 253: 512} {
		assert.Equal(t, want, NginxBucketSize(n), "n=%d", n)
	}
	long := LongestServerName("dev.example.com")
	assert.Equal(t, 63+1+11+1+15, long)
	assert.Equal(t, 128, NginxBucketSize(long))
	assert.NoError(t, ServerName(strings.Repeat("a", 110), 128))
	err := ServerName(strings.Repeat("a", 111), 128)
	assert.ErrorIs(t, err, ErrInvalid)
	assert.Contains(t, err.Error(), "256")
}

func TestFlatFQDN(t *testing.T) {
	long := strings.Repeat("a", 51) // 51 + 2 + 11 = 64
	tests := []struct {
		alias, name string
		want        string // substring of the error, "" for valid
	}{
		{"www", "shop", ""},
		{strings.Repeat("a", 50), "abcdefghijk", ""},
		{long, "abcdefghijk", "longer than 63"},
		{"a--b", "shop", `contains "--"`},
		{"www", "my--shop", `contains "--"`},
	}
	for _, tt := range tests {
		err := FlatFQDN(tt.alias, tt.name, "dev.example.com")
		if tt.want == "" {
			assert.NoError(t, err, tt.alias)
			continue
		}
		require.Error(t, err, tt.alias)
		assert.Contains(t, err.Error(), tt.want)
	}
}
