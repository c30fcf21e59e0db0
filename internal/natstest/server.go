package natstest

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/provision"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options configures RunServerWith. The zero value is a provisioned
// JetStream server on a free port storing in TempDir(t).
type Options struct {
	// StoreDir is the JetStream store directory; default TempDir(t).
	StoreDir string
	// Port is the client port; default -1 (a free port, kept across Restart).
	Port int
	// Bare skips provision.Ensure: the server has no streams, buckets or object stores.
	Bare bool
	// MaxPayload is the server's max_payload in bytes; default the server's (1 MiB).
	MaxPayload int32
	// Direct lets clients dial the server itself rather than the relay
	// that holds the port for the test's life (front.go), for benchmarks,
	// which must not measure the relay. The port is then free while the
	// server is down: do not Restart a Direct server where other test
	// processes run.
	Direct bool
}

// Server is an embedded nats-server with JetStream that can be stopped and
// started again on the same port and store directory.
type Server struct {
	t    testing.TB
	opts Options

	front *front // holds the client port for the test's life; nil if Direct

	mu   sync.Mutex
	ns   *server.Server
	port int // the server's own port (the clients' if Direct)
}

// RunServer starts a JetStream server with every stream, bucket and object
// store of the protocol provisioned. t.Cleanup shuts it down.
func RunServer(t testing.TB) *Server { return RunServerWith(t, Options{}) }

// RunBareServer starts a JetStream server with nothing provisioned.
// t.Cleanup shuts it down.
func RunBareServer(t testing.TB) *Server { return RunServerWith(t, Options{Bare: true}) }

// RunServerWith starts a server configured by o. t.Cleanup shuts it down.
func RunServerWith(t testing.TB, o Options) *Server {
	t.Helper()
	if o.StoreDir == "" {
		o.StoreDir = TempDir(t)
	}
	if o.Port == 0 {
		o.Port = -1
	}
	s := &Server{t: t, opts: o, port: o.Port}
	if !o.Direct {
		f, err := newFront(o.Port)
		if err != nil {
			t.Fatalf("natstest: listen: %v", err)
		}
		t.Cleanup(f.close) // after Shutdown (cleanups run last first)
		s.front, s.port = f, -1
	}
	t.Cleanup(s.Shutdown)
	if err := s.start(); err != nil {
		t.Fatalf("natstest: %v", err)
	}
	if !o.Bare {
		if err := s.provision(); err != nil {
			t.Fatalf("natstest: %v", err)
		}
	}
	return s
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ns != nil {
		return nil
	}
	opts := &server.Options{
		Host:       "127.0.0.1",
		Port:       s.port, // -1 behind a front: any, clients use the front's
		JetStream:  true,
		StoreDir:   s.opts.StoreDir,
		NoLog:      true,
		NoSigs:     true,
		MaxPayload: s.opts.MaxPayload,
	}
	if s.front != nil {
		opts.ClientAdvertise = s.front.addr()
	}
	var lastErr error
	// A just-closed port can take a moment to be reusable; retry briefly.
	for attempt := 0; attempt < 50; attempt++ {
		ns, err := server.NewServer(opts)
		if err != nil {
			return fmt.Errorf("new server: %w", err)
		}
		go ns.Start()
		if ns.ReadyForConnections(10 * time.Second) {
			s.ns = ns
			if s.front != nil {
				s.front.setTarget(ns.Addr().String())
			} else {
				s.port = ns.Addr().(*net.TCPAddr).Port
				opts.Port = s.port
			}
			return nil
		}
		ns.Shutdown()
		ns.WaitForShutdown()
		lastErr = fmt.Errorf("server for %s not ready", s.addrLocked())
		time.Sleep(50 * time.Millisecond)
	}
	return lastErr
}

func (s *Server) provision() error {
	nc, err := nats.Connect(s.URL())
	if err != nil {
		return fmt.Errorf("connect to provision: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return provision.Ensure(ctx, js)
}

// URL returns the client URL, nats://127.0.0.1:<port>. It does not change
// across Restart: the port is held by the test (a relay in front of the
// server, see front) for the test's life.
func (s *Server) URL() string { return "nats://" + s.Addr() }

// Addr returns host:port of the client listener (for NewProxy).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrLocked()
}

func (s *Server) addrLocked() string {
	if s.front != nil {
		return s.front.addr()
	}
	return fmt.Sprintf("127.0.0.1:%d", s.port)
}

// RelayGoroutines returns how many goroutines the relay in front of the
// server runs now (one, plus two per client connection), for tests that
// count the goroutines of what they test.
func (s *Server) RelayGoroutines() int {
	if s.front == nil {
		return 0
	}
	return s.front.goroutines()
}

// Port returns the client port.
func (s *Server) Port() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.front != nil {
		return s.front.port()
	}
	return s.port
}

// StoreDir returns the JetStream store directory.
func (s *Server) StoreDir() string { return s.opts.StoreDir }

// NATS returns the running *server.Server, or nil while shut down.
func (s *Server) NATS() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ns
}

// Running reports whether the server is up.
func (s *Server) Running() bool { return s.NATS() != nil }

// Shutdown stops the server and waits for it; the port and store stay
// reserved for Start. Safe to call when already down.
func (s *Server) Shutdown() {
	s.mu.Lock()
	ns := s.ns
	s.ns = nil
	s.mu.Unlock()
	if ns != nil {
		if s.front != nil {
			s.front.setTarget("")
		}
		ns.Shutdown()
		ns.WaitForShutdown()
	}
}

// Start starts the server again on the same port and store directory
// (streams and messages survive). It does nothing if already running and
// fails the test if the server cannot start. It does not provision again.
func (s *Server) Start() {
	if err := s.start(); err != nil {
		s.t.Errorf("natstest: restart: %v", err)
	}
}

// Restart is Shutdown followed by Start.
func (s *Server) Restart() {
	s.Shutdown()
	s.Start()
}

// Connect connects to url with test-friendly settings: reconnect forever
// every 20 ms without jitter, 2 s connect timeout, plus opts. t.Cleanup
// closes the connection.
func Connect(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	all := append([]nats.Option{
		nats.MaxReconnects(-1),
		nats.ReconnectWait(20 * time.Millisecond),
		nats.ReconnectJitter(0, 0),
		nats.Timeout(2 * time.Second),
		nats.RetryOnFailedConnect(true),
	}, opts...)
	nc, err := nats.Connect(url, all...)
	if err != nil {
		t.Fatalf("natstest: connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// JetStream returns jetstream.New(nc, opts...), failing the test on error.
func JetStream(t testing.TB, nc *nats.Conn, opts ...jetstream.JetStreamOpt) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc, opts...)
	if err != nil {
		t.Fatalf("natstest: jetstream: %v", err)
	}
	return js
}

// CheckFor calls f every interval until it returns nil, and fails the test
// with f's last error once total has passed.
func CheckFor(t testing.TB, total, every time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	tick := time.NewTicker(every)
	defer tick.Stop()
	var err error
	for {
		if err = f(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("natstest: condition not met after %v: %v", total, err)
		}
		<-tick.C
	}
}
