package names

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestHost(t *testing.T) {
	for _, ok := range []string{"web", "db.internal", "Web_1", "a-b", strings.Repeat("a", MaxDomain), "9"} {
		assert.NoError(t, Host(ok), ok)
	}
	for _, bad := range []string{"", "*", "a*b", "web?", "!web", "a b", "a\tb", "a,b", `a"b`, "a'b", `a\b`, "a#b", "a=b", "a%h",
		"-oProxyCommand", "a\nHost *", "\u00e9t\u00e9", strings.Repeat("a", MaxDomain+1)} {
		err := Host(bad)
		assert.True(t, errors.Is(err, ErrInvalid), "%q: %v", bad, err)
	}
}
