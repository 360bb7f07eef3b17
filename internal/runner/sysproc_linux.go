package runner

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts the command in its own process group, so a timeout
// kills the program and everything it started, and asks the kernel to kill
// it when devhost dies: a devhost killed with SIGKILL must not leave a
// nix-env or nixos-rebuild running behind the back of the next devhost,
// which takes over the lock and repairs the state.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		// Negative pid: the whole process group.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		return cmd.Process.Kill()
	}
}
