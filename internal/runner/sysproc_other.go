//go:build !linux

package runner

import "os/exec"

// setProcessGroup is a no-op where process groups and parent-death signals
// are not available; exec.CommandContext still kills the program itself.
func setProcessGroup(cmd *exec.Cmd) {}
