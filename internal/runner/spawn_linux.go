package runner

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// On Linux a fork copies the forking thread's file descriptor table and the
// exec then closes every close-on-exec descriptor of the copy, one by one:
// a cost that grows with the descriptors the agent's process holds (about
// twelve per agent: ledger, outboxes, connection). A process that embeds
// a thousand agents holds twelve thousand, and each script then cost
// about 4 ms of CPU before it ran a line (0.7 ms from a process with a
// handful), most of the fleet's fan-out CPU.
//
// So scripts are forked from one thread of the process that has a file
// descriptor table of its own (unshare(CLONE_FILES) on a thread locked to
// its goroutine for good), emptied of everything but standard input,
// output and error, the Go runtime's poller (its epoll and eventfd
// descriptors, which the runtime may use from any of its threads) and the
// socket the requests come in on. A run's pipe ends reach that table over
// the socket (SCM_RIGHTS) and are closed there once the child has its
// copies. A locked thread is never used to start another thread (the
// runtime starts threads from a clean one instead, as its documentation
// of LockOSThread allows modifying a thread's state), so no other thread
// of the process ever shares the private table. If the thread cannot be
// set up, or a request cannot reach it, the script is forked from the
// calling thread as before.

// spawner forks children from a thread with a private, nearly empty file
// descriptor table.
type spawner struct {
	sock int // our end of the socket pair; the other end is in the private table
	tid  int // the thread's id (tests look at its table)

	mu   sync.Mutex // one request at a time: the socket's messages pair with reqs
	reqs chan *spawnReq
	// broken is set once a request's files did not arrive whole: the
	// socket's messages might no longer pair with the requests, so every
	// later fork happens on the calling thread.
	broken atomic.Bool
}

type spawnReq struct {
	argv0     string
	argv, env []string
	dir       string
	done      chan spawnRes
}

type spawnRes struct {
	pid int
	err error
	// lost is set when the request's descriptors never reached the
	// private table: the caller forks by itself.
	lost bool
}

var (
	spawnerOnce sync.Once
	theSpawner  *spawner
)

// forkExec starts argv0 with argv and env in dir (empty: the agent's own),
// with standard input /dev/null and standard output and error the given
// files, as the leader of a new process group, and returns its pid.
func forkExec(argv0 string, argv, env []string, dir string, stdout, stderr *os.File) (int, error) {
	spawnerOnce.Do(func() { theSpawner, _ = newSpawner() })
	if s := theSpawner; s != nil && !s.broken.Load() {
		if res := s.start(argv0, argv, env, dir, stdout, stderr); !res.lost {
			return res.pid, res.err
		}
		s.broken.Store(true)
	}
	return forkExecHere(argv0, argv, env, dir, stdout, stderr)
}

// newSpawner starts the spawner's thread and returns once its table is
// ready, or the error that kept it from being set up (the thread is then
// gone).
func newSpawner() (*spawner, error) {
	// The runtime's poller must exist before the thread's table is split
	// off, so that its descriptors are in both tables: a pipe is
	// registered with it, which creates it if need be.
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	r.Close()
	w.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	s := &spawner{sock: fds[0], reqs: make(chan *spawnReq)}
	ready := make(chan error, 1)
	go s.loop(fds[1], ready)
	if err := <-ready; err != nil {
		unix.Close(fds[0])
		return nil, err
	}
	return s, nil
}

// loop is the spawner's thread. It never returns once set up: the thread
// lives as long as the process.
func (s *spawner) loop(peer int, ready chan<- error) {
	// Never unlocked: if this goroutine returns, the runtime ends the
	// thread, and its private table with it.
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_FILES); err != nil {
		unix.Close(peer)
		ready <- err
		return
	}
	null, err := trimFiles(peer)
	if err != nil {
		ready <- err
		return
	}
	s.tid = unix.Gettid()
	ready <- nil
	for r := range s.reqs {
		r.done <- s.fork(peer, null, r)
	}
}

// trimFiles closes, in the calling thread's private table, every
// descriptor but 0, 1, 2, keep and the runtime poller's, then opens
// /dev/null and returns it.
func trimFiles(keep int) (int, error) {
	dir, err := unix.Open("/proc/thread-self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	var names []string
	buf := make([]byte, 8<<10)
	for {
		n, err := unix.Getdents(dir, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			unix.Close(dir)
			return -1, err
		}
		if n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	var drop []int
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil || fd <= 2 || fd == keep || fd == dir {
			continue
		}
		var link [64]byte
		n, err := unix.Readlink("/proc/thread-self/fd/"+name, link[:])
		if err == nil && isPollerFD(link[:n]) {
			continue
		}
		drop = append(drop, fd)
	}
	unix.Close(dir)
	for _, fd := range drop {
		unix.Close(fd) // our copy only: the process's own stays open
	}
	return unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
}

// isPollerFD reports whether a descriptor's /proc link names an epoll
// instance or an eventfd: the runtime's poller may use them from any
// thread (netpoll when the world restarts, netpollBreak), so they stay.
func isPollerFD(link []byte) bool {
	return bytes.Equal(link, []byte("anon_inode:[eventpoll]")) || bytes.Equal(link, []byte("anon_inode:[eventfd]"))
}

// start hands a fork to the spawner's thread: the two output files over
// the socket, the rest over reqs.
func (s *spawner) start(argv0 string, argv, env []string, dir string, stdout, stderr *os.File) spawnRes {
	rights := unix.UnixRights(int(stdout.Fd()), int(stderr.Fd()))
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		err := unix.Sendmsg(s.sock, []byte{0}, rights, nil, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return spawnRes{lost: true}
		}
		break
	}
	r := &spawnReq{argv0: argv0, argv: argv, env: env, dir: dir, done: make(chan spawnRes, 1)}
	s.reqs <- r
	return <-r.done
}

// fork runs on the spawner's thread: it receives the request's output
// files into the private table, forks, and closes them there.
func (s *spawner) fork(peer, null int, r *spawnReq) spawnRes {
	var b [1]byte
	oob := make([]byte, unix.CmsgSpace(2*4))
	var oobn int
	var err error
	for {
		_, oobn, _, _, err = unix.Recvmsg(peer, b[:], oob, unix.MSG_CMSG_CLOEXEC)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return spawnRes{lost: true}
	}
	var fds []int
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, m := range msgs {
			if got, err := unix.ParseUnixRights(&m); err == nil {
				fds = append(fds, got...)
			}
		}
	}
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	if len(fds) != 2 {
		return spawnRes{lost: true}
	}
	pid, err := syscall.ForkExec(r.argv0, r.argv, &syscall.ProcAttr{
		Dir:   r.dir,
		Env:   r.env,
		Files: []uintptr{uintptr(null), uintptr(fds[0]), uintptr(fds[1])},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		return spawnRes{err: &os.PathError{Op: "fork/exec", Path: r.argv0, Err: err}}
	}
	return spawnRes{pid: pid}
}
