package names

import "regexp"

// environmentName is the registry's rule for a batou environment name (a
// directory under environments/): it reaches Nix (escaped), HTML and file
// names on the devhost.
var environmentName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Environment checks the name of a batou environment that devhost records
// with each container: letters, digits, '.', '_' and '-', starting with a
// letter or digit, at most 64 characters.
func Environment(s string) error {
	if environmentName.MatchString(s) {
		return nil
	}
	return &Error{Kind: "environment name", Value: s,
		Why:  "devhost records only names of letters, digits, '.', '_' and '-' (at most 64, starting with a letter or digit)",
		Hint: "rename the directory environments/" + s + ", e.g. to review-2"}
}
