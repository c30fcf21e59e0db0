package natstest

import (
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// front holds a server's client port for as long as the test runs and
// relays every connection to wherever the server listens now. A Shutdown
// therefore never frees the port the test's clients know: another test
// process (go test runs packages in parallel) cannot take it meanwhile, so
// an agent of this test never reconnects to someone else's server, and
// another process's agent never lands on this one (both happened: a
// restarted test server's port reused by a cluster node of another
// package merged their traffic). While the server is down the front
// accepts and closes at once, as a refused connection would look to a
// NATS client.
type front struct {
	ln net.Listener

	mu     sync.Mutex
	target string // host:port of the running server; "" while down
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// newFront listens on 127.0.0.1:port (0: a free port).
func newFront(port int) (*front, error) {
	if port < 0 {
		port = 0
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	f := &front{ln: ln, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.accept()
	return f, nil
}

// goroutines returns how many goroutines the front runs now.
func (f *front) goroutines() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return 1 + len(f.conns) // the acceptor, and a relay per direction
}

// addr returns the front's host:port.
func (f *front) addr() string { return f.ln.Addr().String() }

// port returns the front's port.
func (f *front) port() int { return f.ln.Addr().(*net.TCPAddr).Port }

// setTarget relays new connections to target; "" (the server going down)
// also closes every relayed connection.
func (f *front) setTarget(target string) {
	f.mu.Lock()
	f.target = target
	var drop []net.Conn
	if target == "" {
		for c := range f.conns {
			drop = append(drop, c)
		}
	}
	f.mu.Unlock()
	for _, c := range drop {
		_ = c.Close()
	}
}

// close stops listening, closes every connection and waits for the relays.
func (f *front) close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	f.mu.Unlock()
	_ = f.ln.Close()
	f.setTarget("")
	f.wg.Wait()
}

func (f *front) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		target := f.target
		f.mu.Unlock()
		if target == "" {
			_ = c.Close()
			continue
		}
		s, err := net.DialTimeout("tcp", target, 2*time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		f.mu.Lock()
		if f.closed || f.target != target {
			f.mu.Unlock()
			_ = c.Close()
			_ = s.Close()
			continue
		}
		f.conns[c], f.conns[s] = struct{}{}, struct{}{}
		f.wg.Add(2)
		f.mu.Unlock()
		go f.relay(c, s)
		go f.relay(s, c)
	}
}

// relay copies src to dst; when either side ends, both are closed.
func (f *front) relay(src, dst net.Conn) {
	defer f.wg.Done()
	_, _ = io.Copy(dst, src)
	f.mu.Lock()
	delete(f.conns, src)
	delete(f.conns, dst)
	f.mu.Unlock()
	_ = src.Close()
	_ = dst.Close()
}
