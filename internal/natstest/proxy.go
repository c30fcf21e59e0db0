package natstest

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy is a TCP proxy in front of a server that delays each direction by a
// fixed one-way delay, and can cut connections and refuse new ones.
type Proxy struct {
	target string
	delay  time.Duration
	ln     net.Listener

	mu     sync.Mutex
	paused bool
	closed bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// NewProxy listens on 127.0.0.1 (a free port) and forwards every connection
// to target (host:port), delaying the data by oneWay in each direction, so
// the round trip grows by 2*oneWay. t.Cleanup closes it.
func NewProxy(t testing.TB, target string, oneWay time.Duration) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("natstest: proxy listen: %v", err)
	}
	p := &Proxy{target: target, delay: oneWay, ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// URL returns nats://<proxy address>.
func (p *Proxy) URL() string { return "nats://" + p.ln.Addr().String() }

// Addr returns the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Conns returns the number of open proxied connections.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns) / 2
}

// Cut closes every current connection, both sides. New connections are
// still accepted (unless paused).
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
}

// Pause makes the proxy refuse new connections (it accepts and closes them
// at once), as a dead broker would. Current connections are left alone:
// call Cut too to drop them.
func (p *Proxy) Pause() {
	p.mu.Lock()
	p.paused = true
	p.mu.Unlock()
}

// Resume makes the proxy accept new connections again.
func (p *Proxy) Resume() {
	p.mu.Lock()
	p.paused = false
	p.mu.Unlock()
}

// Close stops listening, cuts every connection and waits for the proxy's
// goroutines. The second call returns an error wrapping net.ErrClosed.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return fmt.Errorf("natstest: proxy already closed: %w", net.ErrClosed)
	}
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	p.Cut()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.paused || p.closed
		p.mu.Unlock()
		if refuse {
			_ = c.Close()
			continue
		}
		s, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = c.Close()
			_ = s.Close()
			return
		}
		p.conns[c] = struct{}{}
		p.conns[s] = struct{}{}
		p.wg.Add(4)
		p.mu.Unlock()
		go p.pipe(c, s)
		go p.pipe(s, c)
	}
}

type chunk struct {
	b   []byte
	due time.Time
}

// pipe copies src to dst, each chunk delayed by p.delay from the moment it
// was read. The reader never waits for the writer's delay, so throughput is
// not limited by it (the queue holds up to 4096 chunks).
func (p *Proxy) pipe(src, dst net.Conn) {
	q := make(chan chunk, 4096)
	done := make(chan struct{})
	go func() { // writer
		defer p.wg.Done()
		defer close(done)
		var timer *time.Timer
		for ch := range q {
			if d := time.Until(ch.due); d > 0 {
				if timer == nil {
					timer = time.NewTimer(d)
				} else {
					timer.Reset(d)
				}
				<-timer.C
			}
			if _, err := dst.Write(ch.b); err != nil {
				p.drop(src, dst)
				for range q { // drain so the reader never blocks
				}
				return
			}
		}
		// Source ended: close the other side for writing so it sees EOF.
		p.drop(src, dst)
	}()
	defer p.wg.Done()
	defer close(q)
	for {
		buf := make([]byte, 32*1024)
		n, err := src.Read(buf)
		if n > 0 {
			select {
			case q <- chunk{b: buf[:n], due: time.Now().Add(p.delay)}:
			case <-done:
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *Proxy) drop(a, b net.Conn) {
	p.mu.Lock()
	delete(p.conns, a)
	delete(p.conns, b)
	p.mu.Unlock()
	_ = a.Close()
	_ = b.Close()
}
