package runner

import (
	"os"

	"golang.org/x/sys/unix"
)

// waitNoReap blocks until process pid has exited, leaving it a zombie so
// that its pid, and so its process group id, stay reserved until
// reap releases it. It reports false if it could not wait, in which case
// the caller must reap.
//
// It waits on a pidfd through the runtime's poller, so a running script
// holds no OS thread: with a blocking waitid each running script held
// one, and a process whose thousand agents ran a script at once grew to
// hundreds of threads (each with its runtime stacks) that it then kept.
// Where pidfds are missing (Linux before 5.3) it falls back to waitid.
func waitNoReap(pid int) bool {
	if ok, done := waitPidfd(pid); done {
		return ok
	}
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

// waitPidfd waits for process pid to exit by polling a pidfd of it
// (readable once the process has exited). done is false when no pidfd
// could be used; ok then says nothing.
func waitPidfd(pid int) (ok, done bool) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return false, false
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return false, false
	}
	err = rc.Read(func(fd uintptr) bool {
		for {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, err := unix.Poll(fds, 0)
			switch {
			case err == unix.EINTR:
				continue
			case err != nil:
				ok = false
				return true
			}
			if n > 0 && fds[0].Revents&(unix.POLLIN|unix.POLLHUP|unix.POLLERR) != 0 {
				ok = true
				return true
			}
			return false // not yet: wait for the poller to see it readable
		}
	})
	if err != nil {
		return false, false
	}
	return ok, true
}
