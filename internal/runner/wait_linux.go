package runner

import "golang.org/x/sys/unix"

// waitNoReap blocks until process pid has exited, leaving it a zombie so
// that its pid, and so its process group id, stay reserved until
// reap releases it. It reports false if waitid failed, in which case
// the caller must reap.
func waitNoReap(pid int) bool {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		switch err {
		case nil:
			return true
		case unix.EINTR:
			continue
		default:
			return false
		}
	}
}
