//go:build !linux

package runner

import (
	"errors"
	"syscall"
)

// killGroup sends SIGKILL to process group pgid; a group without
// processes is no error.
func killGroup(pgid int) error {
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// killPid kills what groupMembers returned: here a group.
func killPid(pgid int) error { return killGroup(pgid) }

// groupMembers reports group pgid (as its own "member") while it has a
// process, zombies included: without /proc they cannot be told apart, nor
// can environments be read, so mark is not looked for.
func groupMembers(pgid int, _ string) ([]int, error) {
	if pgid <= 1 {
		return nil, nil
	}
	err := syscall.Kill(-pgid, 0)
	if errors.Is(err, syscall.ESRCH) {
		return nil, nil
	}
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return nil, err
	}
	return []int{pgid}, nil
}
