package names

import "fmt"

// Host checks a host's name in a batou environment ([host:NAME] or a
// [hosts] entry) of a provisioned host. devhost up writes it beside the
// container's real name on the Host line of ssh_config_<env>, so that
// `ssh -F ssh_config_<env> NAME` works, and there ssh reads every
// character as part of a pattern list: '*' and '?' are wildcards ("*"
// alone made a block for every host), '!' negates, blanks and ',' separate
// patterns, quotes and '\' quote, '#' starts a comment, '=' separates, and
// '%' is a token elsewhere. batou allows any name; devhost allows the ones
// that are one literal pattern: letters, digits, '.', '_' and '-', not
// starting with '-' (ssh would take the name for an option), at most 253
// characters.
func Host(s string) error {
	bad := func(why string) error {
		return &Error{Kind: "host name", Value: s, Why: why,
			Hint: "use letters, digits, '.', '_' and '-' (e.g. web or db.internal)"}
	}
	switch {
	case s == "":
		return bad("it is empty")
	case len(s) > MaxDomain:
		return bad(fmt.Sprintf("it has %d characters, at most %d are allowed", len(s), MaxDomain))
	case s[0] == '-':
		return bad("it starts with a hyphen, which ssh reads as an option")
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return bad(fmt.Sprintf("it contains %q, which ssh_config does not read literally in a Host line", r))
		}
	}
	return nil
}
