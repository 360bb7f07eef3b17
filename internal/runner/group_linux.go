package runner

import (
	"bytes"
	"errors"
	"os"
	"strconv"
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

// killPid sends SIGKILL to pid; a process that is gone is no error.
func killPid(pid int) error {
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// groupMembers lists the live processes (not zombies: a zombie is dead and
// only waits for its parent, perhaps an init that never reaps) that are in
// group pgid (when pgid > 1) or have mark in their environment (when not
// empty), never this process.
func groupMembers(pgid int, mark string) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	var marked []byte
	if mark != "" {
		marked = []byte("\x00" + mark + "\x00")
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // it exited meanwhile (or is no process of ours to see)
		}
		state, pg, ok := parseStat(b)
		if !ok || state == 'Z' || state == 'X' {
			continue
		}
		if pgid > 1 && pg == pgid {
			out = append(out, pid)
			continue
		}
		if marked == nil {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue // exited meanwhile, or another user's, which devhost did not start
		}
		if bytes.Contains(append([]byte{0}, env...), marked) {
			out = append(out, pid)
		}
	}
	return out, nil
}

// parseStat returns the state and process group of a /proc/<pid>/stat
// line: "pid (comm) state ppid pgrp ...", where comm may contain spaces
// and parentheses, so the fields are counted from the last ')'.
func parseStat(b []byte) (state byte, pgrp int, ok bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 3 || len(f[0]) != 1 {
		return 0, 0, false
	}
	pg, err := strconv.Atoi(string(f[2]))
	if err != nil {
		return 0, 0, false
	}
	return f[0][0], pg, true
}
