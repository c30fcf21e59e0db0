package embedded

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
)

// ErrLocalPath is returned by ServeLocal when something other than a stale
// socket is in the way at the socket path.
var ErrLocalPath = errors.New("embedded: local socket path is taken by something that is not a socket")

// ServeLocal makes the server also accept clients on a local (Unix domain)
// socket at path, without opening a TCP port. Each client connection is
// joined to an in-process connection of the server, so it authenticates
// like any other client (Options.Token). The socket is made readable and
// writable by its owner only (0600); who may reach it is further decided by
// the directory it is in. A stale socket left at path by a crash is
// replaced; any other file there is an error (ErrLocalPath). Close stops
// serving and removes the socket.
//
// A client connects with a dialer that ignores the URL and dials path
// (nats.SetCustomDialer). Windows supports these sockets from Windows 10
// 1803 on; older systems (and Wine) return an error, which a caller can
// treat as "no local socket".
func (s *Server) ServeLocal(path string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return fmt.Errorf("%w: %s", ErrLocalPath, path)
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("embedded: remove the stale socket %s: %w", path, err)
		}
	}
	// Bind under a temporary name, restrict it, then move it into place,
	// so the socket is never reachable with looser permissions.
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	_ = os.Remove(tmp)
	l, err := net.Listen("unix", tmp)
	if err != nil {
		return fmt.Errorf("embedded: local socket: %w", err)
	}
	if ul, ok := l.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false)
	}
	err = os.Chmod(tmp, 0o600)
	if err != nil && isWindows() {
		err = nil // the directory's ACL decides on Windows
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		l.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("embedded: local socket %s: %w", path, err)
	}
	ll := &localListener{l: l, path: path, conns: map[net.Conn]struct{}{}}
	s.locals = append(s.locals, ll)
	ll.wg.Add(1)
	go ll.serve(s)
	return nil
}

// localListener accepts clients on a local socket and pipes each to an
// in-process connection of the server.
type localListener struct {
	l    net.Listener
	path string
	wg   sync.WaitGroup

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

func (ll *localListener) serve(s *Server) {
	defer ll.wg.Done()
	for {
		c, err := ll.l.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // closed
		}
		in, err := s.ns.InProcessConn()
		if err != nil {
			c.Close()
			continue
		}
		if !ll.track(c, in) {
			return
		}
		ll.wg.Add(1)
		go ll.pipe(c, in)
	}
}

// track records a client's connection pair so close can end it; false if
// the listener is already closed (both are closed then).
func (ll *localListener) track(c, in net.Conn) bool {
	ll.mu.Lock()
	defer ll.mu.Unlock()
	if ll.closed {
		c.Close()
		in.Close()
		return false
	}
	ll.conns[c] = struct{}{}
	ll.conns[in] = struct{}{}
	return true
}

// pipe copies both ways between the client and the server until either
// side ends, then closes both.
func (ll *localListener) pipe(c, in net.Conn) {
	defer ll.wg.Done()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go cp(in, c)
	go cp(c, in)
	<-done
	c.Close()
	in.Close()
	<-done
	ll.mu.Lock()
	delete(ll.conns, c)
	delete(ll.conns, in)
	ll.mu.Unlock()
}

// close stops accepting, ends every client connection and waits for the
// goroutines; the socket file is removed.
func (ll *localListener) close() {
	ll.mu.Lock()
	ll.closed = true
	for c := range ll.conns {
		c.Close()
	}
	ll.mu.Unlock()
	ll.l.Close()
	_ = os.Remove(ll.path)
	ll.wg.Wait()
}

func isWindows() bool { return runtime.GOOS == "windows" }
