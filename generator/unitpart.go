package generator

import (
	"bytes"
	"strings"
)

// UnitPart returns the settings of a generated host file
// (containers/NAME.nix) that the container's unit runs with: its container
// declaration but autoStart (what the module writes into the conf file
// NixOS' container@ template reads: addresses, profile) and its resource
// limits (the unit's drop-in). Its virtual host and hosts entries are not
// part of it: nginx and /etc/hosts follow a switch, a running instance of
// the template does not, so two host files of one container whose UnitParts
// differ mean a running container must be restarted to run as declared.
//
// It reads the lines of devhost's own container.nix.tmpl, whose top-level
// attributes sit at an indent of two spaces. A file it cannot read that
// way (an admin's override of the template) is returned whole: any change
// then counts, which restarts too often rather than too rarely.
func UnitPart(hostFile []byte) string {
	var out strings.Builder
	found, keep := false, false
	for line := range bytes.Lines(hostFile) {
		s := string(line)
		switch {
		case strings.HasPrefix(s, "   "): // inside a top-level attribute
			if keep && !strings.HasPrefix(strings.TrimSpace(s), "autoStart =") {
				out.WriteString(s)
			}
		case strings.HasPrefix(s, "  }"): // the end of one
			if keep {
				out.WriteString(s)
			}
		case strings.HasPrefix(s, "  ") && len(s) > 2 && !strings.ContainsRune("#\r\n", rune(s[2])): // one begins
			keep = strings.HasPrefix(s, "  containers.") || strings.HasPrefix(s, "  services.")
			found = found || strings.HasPrefix(s, "  containers.")
			if keep {
				out.WriteString(s)
			}
		}
		// Anything else (the file's own braces, comments, blank lines)
		// sets nothing.
	}
	if !found {
		return string(hostFile)
	}
	return out.String()
}
