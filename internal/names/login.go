package names

import "fmt"

// MaxLogin is the longest login name NixOS accepts (and useradd's default).
const MaxLogin = 32

// Login checks the name of a person using the devhost: the caller (sudo's
// SUDO_USER), a container's owner, a reservation's owner. Such accounts are
// made by the host's administrator, not by devhost, so every name NixOS'
// users module accepts is allowed: [a-z_][a-z0-9_.-]*[$]?, at most 32
// characters, e.g. "jane.doe". Login names are compared and recorded, never
// written into a container's configuration or used as a path; service users,
// which are, stay with the stricter User.
func Login(s string) error {
	bad := func(why string) error {
		return &Error{Kind: "user name", Value: s, Why: why,
			Hint: "a login name has lowercase letters, digits, '_', '.' and '-', starts with a letter or '_', may end in '$', and has at most 32 characters"}
	}
	if s == "" || len(s) > MaxLogin {
		return bad(fmt.Sprintf("it must have 1 to %d characters", MaxLogin))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c == '_' ||
			i > 0 && (c >= '0' && c <= '9' || c == '-' || c == '.') ||
			i > 0 && i == len(s)-1 && c == '$'
		if !ok {
			return bad(fmt.Sprintf("it contains %q at position %d", rune(c), i+1))
		}
	}
	return nil
}
