// Package provision is the laptop side of `devhost up`: the environment's
// ssh key pair, ssh_config_<env> and known-hosts file, the commands sent to
// the devhost over ssh, and the wrapper that runs the environment's
// provision.sh with batou's COPY, RUN and ECHO.
//
// Nothing here prints: progress is reported through the Progress callback a
// caller passes, results are returned.
package provision

import "strings"

// Quote returns s as one word for a POSIX shell (sh, bash, dash): the shell
// that runs the command ssh hands to the remote side, and the generated
// wrapper script. Words made only of characters no shell treats specially
// are returned unchanged so commands stay readable; everything else is put
// in single quotes, inside which no character is special except the quote
// itself, which becomes '\” (close, escaped quote, reopen).
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	if plainWord(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// plainWord reports whether s needs no quoting in any POSIX shell. '=' is
// only safe after the first character (a leading word with '=' would be an
// assignment), '~' never (tilde expansion), and '-' is fine because quoting
// would not stop a program from reading it as an option anyway.
func plainWord(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-_./:,@%+", c) >= 0:
		case c == '=' && i > 0:
		default:
			return false
		}
	}
	return true
}

// Join quotes every word of argv and joins them with spaces: the one string
// ssh sends to the remote shell, which splits it back into exactly argv.
func Join(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}
