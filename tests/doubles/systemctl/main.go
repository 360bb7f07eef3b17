// Command systemctl is a test double for the unit operations devhost's
// lifecycle uses on container@NAME units. It keeps the units' active state
// in $DEVHOST_DOUBLE_STATE/units/<unit> (a file exists while active):
//
//	systemctl start|stop|reload|restart UNIT
//	systemctl try-restart UNIT... (restarts the active ones, as systemd)
//	systemctl is-active [--quiet] UNIT
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/flyingcircusio/devhost/tests/doubles/double"
)

func main() {
	r := double.Start("systemctl")
	args := r.Rec.Argv
	quiet := false
	var rest []string
	for _, a := range args {
		if a == "--quiet" || a == "-q" {
			quiet = true
			continue
		}
		rest = append(rest, a)
	}
	if len(rest) < 2 || len(rest) > 2 && rest[0] != "try-restart" {
		r.Exit(2, "double systemctl: unexpected invocation %q", args)
	}
	for _, u := range rest[1:] {
		if strings.ContainsAny(u, "/") || !strings.HasSuffix(u, ".service") {
			r.Exit(2, "double systemctl: unexpected unit %q", u)
		}
	}
	if rest[0] == "try-restart" {
		r.FailIfAsked()
		var restarted []string
		for _, u := range rest[1:] {
			if active(u) {
				restarted = append(restarted, u)
			}
		}
		r.Set("restarted", restarted)
		r.Exit(0, "")
	}
	verb, unit := rest[0], rest[1]
	state := unitState(unit)
	wasActive := active(unit)
	r.Set("was_active", wasActive)
	if verb != "is-active" {
		r.FailIfAsked()
	}
	switch verb {
	case "start", "restart":
		if err := os.MkdirAll(filepath.Dir(state), 0o755); err != nil {
			r.Exit(2, "double systemctl: %v", err)
		}
		if err := os.WriteFile(state, nil, 0o644); err != nil {
			r.Exit(2, "double systemctl: %v", err)
		}
	case "stop":
		_ = os.Remove(state)
	case "reload":
		if !wasActive {
			r.Exit(1, "Job for %s failed: unit is not active.", unit)
		}
	case "is-active":
		if !wasActive {
			if !quiet {
				fmt.Println("inactive")
			}
			r.Exit(3, "")
		}
		if !quiet {
			fmt.Println("active")
		}
	default:
		r.Exit(2, "double systemctl: unexpected verb %q", verb)
	}
	r.Exit(0, "")
}

// unitState is the file that exists while unit is active.
func unitState(unit string) string { return filepath.Join(double.StateDir(), "units", unit) }

func active(unit string) bool {
	_, err := os.Stat(unitState(unit))
	return err == nil
}
