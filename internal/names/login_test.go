package names

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestLogin(t *testing.T) {
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"jane.doe", true}, // valid on NixOS, refused by User
		{"j.d-x_1", true},
		{"_svc", true},
		{"smb$", true}, // a machine account
		{strings.Repeat("a", MaxLogin), true},
		{"", false},
		{strings.Repeat("a", MaxLogin+1), false},
		{".jane", false},
		{"-jane", false},
		{"1jane", false},
		{"Jane", false},
		{"ja$ne", false},
		{"$", false},
		{"jane doe", false},
		{"jane/../root", false},
		{"jane\n", false},
		{"jäne", false},
	} {
		err := Login(tt.name)
		if tt.ok {
			assert.NoError(t, err, "%q", tt.name)
		} else {
			assert.Error(t, err, "%q", tt.name)
		}
	}
	assert.Error(t, User("jane.doe"), "service users stay strict")
}
