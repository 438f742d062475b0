// Package procfs reads what Linux tells of processes under /proc: their
// IDs, state, parent and start time.
package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Stat is the part of /proc/PID/stat after the command name, from field
// 3 (the state) on: the name, in parentheses, may hold spaces, so fields
// are counted after its closing parenthesis.
func Stat(pid int) ([]string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return nil, errors.New("unreadable /proc stat")
	}
	return strings.Fields(string(data[i+1:])), nil
}

// StartTime is when a process started, in clock ticks since boot (field
// 22); 0 when it is not running or not known.
func StartTime(pid int) uint64 {
	f, err := Stat(pid)
	if err != nil || len(f) < 20 {
		return 0
	}
	n, _ := strconv.ParseUint(f[19], 10, 64)
	return n
}

// Parent is a process's parent's ID; 0 when it is not running.
func Parent(pid int) int {
	f, err := Stat(pid)
	if err != nil || len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// Gone says whether a process has ended: not there, or a zombie not yet
// reaped.
func Gone(pid int) bool {
	f, err := Stat(pid)
	return err != nil || len(f) == 0 || f[0] == "Z"
}

// PIDs lists the running processes.
func PIDs() []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	pids := make([]int, 0, len(dirs))
	for _, d := range dirs {
		if pid, err := strconv.Atoi(filepath.Base(d)); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// WithArgs lists the processes (this one aside) whose command line holds
// the given arguments one after the other.
func WithArgs(args ...string) []int {
	want := []byte("\x00" + strings.Join(args, "\x00") + "\x00")
	var pids []int
	for _, pid := range PIDs() {
		data, err := cmdline(pid)
		if err == nil && pid != os.Getpid() && bytes.Contains(append([]byte{0}, data...), want) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Args is a process's command line, program first; nil once it has ended.
func Args(pid int) []string {
	data, err := cmdline(pid)
	if err != nil || len(data) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")
}

func cmdline(pid int) ([]byte, error) {
	return os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
}

// WaitGone waits until each of pids has ended, or until deadline.
func WaitGone(pids []int, deadline time.Time) {
	for _, pid := range pids {
		for !Gone(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
}
