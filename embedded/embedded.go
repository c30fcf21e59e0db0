package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/kanade/kanade-agent/provision"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultListen is the address the server listens on when Options.Listen is empty.
const DefaultListen = "127.0.0.1:4222"

// DefaultReadyTimeout bounds the wait for the server to accept connections
// when Options.ReadyTimeout is zero.
const DefaultReadyTimeout = 30 * time.Second

// ErrClosed is returned by a second Server.Close. It wraps net.ErrClosed.
var ErrClosed = fmt.Errorf("embedded: server already closed: %w", net.ErrClosed)

// Options configures Start. Only StoreDir is required.
type Options struct {
	// StoreDir is the directory of the JetStream file store. Required; it is
	// created if missing.
	StoreDir string
	// Listen is the client address as host:port. Default DefaultListen
	// (127.0.0.1:4222). Port 0 or -1 picks a free port; ClientURL tells which.
	// An empty host listens on every interface.
	Listen string
	// Logger receives the server's log lines. Default: slog.Default().
	Logger *slog.Logger
	// LogLevel is the lowest level of server log lines passed to Logger.
	// Server notices map to Info, debug lines to Debug and trace lines to
	// Debug-4. Default slog.LevelWarn.
	LogLevel slog.Leveler
	// SkipProvision leaves the server empty instead of creating the
	// protocol's streams, buckets and object stores (provision.Ensure).
	SkipProvision bool
	// MaxStore is the most bytes JetStream may store on disk. Default: the
	// server's default, 75 % of the free space under StoreDir. Stream limits
	// are reserved against it, so provisioning needs about 3.9 GiB of it.
	MaxStore int64
	// ReadyTimeout bounds the wait for the server to accept connections,
	// within ctx. Default DefaultReadyTimeout.
	ReadyTimeout time.Duration
}

func (o *Options) setDefaults() {
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.LogLevel == nil {
		o.LogLevel = slog.LevelWarn
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = DefaultReadyTimeout
	}
}

// Validate reports the first problem with o. An empty Listen is valid (it
// means DefaultListen).
func (o *Options) Validate() error {
	if o.StoreDir == "" {
		return errors.New("embedded: Options.StoreDir is required")
	}
	if o.Listen != "" {
		if _, _, err := splitListen(o.Listen); err != nil {
			return err
		}
	}
	if o.MaxStore < 0 {
		return fmt.Errorf("embedded: Options.MaxStore %d is negative", o.MaxStore)
	}
	return nil
}

// splitListen parses host:port; port 0 and -1 both mean a random port.
func splitListen(listen string) (string, int, error) {
	host, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("embedded: listen address %q: want host:port: %w", listen, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < -1 || port > 65535 {
		return "", 0, fmt.Errorf("embedded: listen address %q: port %q is not a number from -1 to 65535", listen, p)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

// Server is a running embedded NATS server. Its methods are safe for
// concurrent use.
type Server struct {
	ns  *server.Server
	url string

	mu     sync.Mutex
	closed bool
}

// Start starts the server, waits until it accepts connections and, unless
// opts.SkipProvision, creates the protocol's streams, buckets and object
// stores. ctx bounds only the start; the server runs until Close. On error
// nothing is left running.
func Start(ctx context.Context, opts Options) (*Server, error) {
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	host, port, _ := splitListen(opts.Listen)

	sopts := &server.Options{
		ServerName:        "kanade-embedded",
		Host:              host,
		Port:              port,
		JetStream:         true,
		StoreDir:          opts.StoreDir,
		JetStreamMaxStore: opts.MaxStore,
		NoSigs:            true,
	}
	ns, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("embedded: new server: %w", err)
	}
	fatal := make(chan error, 1)
	lg := &logAdapter{
		l:   opts.Logger.With("component", "nats-server"),
		min: opts.LogLevel,
		fatal: func(err error) {
			select {
			case fatal <- err:
			default:
			}
		},
	}
	min := opts.LogLevel.Level()
	ns.SetLoggerV2(lg, min <= slog.LevelDebug, min <= levelTrace, false)

	ns.Start()
	if err := waitReady(ctx, ns, opts.ReadyTimeout, fatal); err != nil {
		shutdown(ns)
		return nil, err
	}
	s := &Server{ns: ns, url: clientURL(ns, host)}
	if !opts.SkipProvision {
		if err := s.provision(ctx, opts.Logger); err != nil {
			shutdown(ns)
			return nil, err
		}
	}
	return s, nil
}

// waitReady polls ns until it accepts connections, a fatal error is logged,
// ctx ends or timeout passes.
func waitReady(ctx context.Context, ns *server.Server, timeout time.Duration, fatal <-chan error) error {
	deadline := time.Now().Add(timeout)
	for !ns.ReadyForConnections(50 * time.Millisecond) {
		select {
		case err := <-fatal:
			return fmt.Errorf("embedded: start: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("embedded: start: %w", context.Cause(ctx))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("embedded: start: not ready for connections after %s", timeout)
		}
	}
	return nil
}

// clientURL is ns.ClientURL with an unspecified listen host ("", 0.0.0.0,
// ::) replaced by loopback, which every OS can dial.
func clientURL(ns *server.Server, host string) string {
	addr, ok := ns.Addr().(*net.TCPAddr)
	if !ok {
		return ns.ClientURL()
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return "nats://" + net.JoinHostPort(host, strconv.Itoa(addr.Port))
}

// provision creates the protocol's streams, buckets and object stores. On a
// small disk, where JetStream's store limit (by default 75 % of the free
// space) cannot hold the streams' limits (about 3.9 GiB), the stream limits
// are scaled down to half the store limit instead of failing.
func (s *Server) provision(ctx context.Context, log *slog.Logger) error {
	nc, err := nats.Connect(s.url, nats.InProcessServer(s.ns), nats.Name("kanade-embedded-provision"))
	if err != nil {
		return fmt.Errorf("embedded: provision: connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("embedded: provision: %w", err)
	}
	var budget int64
	if jsc := s.ns.JetStreamConfig(); jsc != nil && jsc.MaxStore > 0 && jsc.MaxStore/2 < provision.StreamBytes() {
		budget = jsc.MaxStore / 2
		log.Warn("small disk: the embedded server's stream limits are scaled down to fit its store",
			"store_limit_bytes", jsc.MaxStore, "stream_limits_bytes", budget)
	}
	if err := provision.EnsureWithin(ctx, js, budget); err != nil {
		if isStorageExceeded(err) {
			return fmt.Errorf("embedded: provision: %w (the stream limits need about 3.9 GiB of JetStream storage: free disk space or set Options.MaxStore)", err)
		}
		return fmt.Errorf("embedded: provision: %w", err)
	}
	return nil
}

// isStorageExceeded reports whether err is JetStream's "insufficient storage
// resources" API error (code 10047).
func isStorageExceeded(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeStorageExceeded
}

// errCodeStorageExceeded is JetStream's JSStorageResourcesExceededErr.
const errCodeStorageExceeded jetstream.ErrorCode = 10047

// ClientURL returns the URL clients connect to, such as nats://127.0.0.1:4222.
func (s *Server) ClientURL() string { return s.url }

// NATSServer returns the underlying nats-server, for in-process connections
// (nats.InProcessServer) and monitoring. Do not shut it down directly; use Close.
func (s *Server) NATSServer() *server.Server { return s.ns }

// Close shuts the server down and waits until it has stopped, flushing
// JetStream to disk. A second call returns ErrClosed, which wraps net.ErrClosed.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.mu.Unlock()
	shutdown(s.ns)
	return nil
}

func shutdown(ns *server.Server) {
	ns.Shutdown()
	ns.WaitForShutdown()
}
