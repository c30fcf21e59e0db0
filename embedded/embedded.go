package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kanade/kanade-agent/provision"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// InProcessURL names the server in nats.Connect when a client connects in
// process (nats.InProcessServer): nats.go needs a URL, but never dials it.
const InProcessURL = "nats://in-process"

// DefaultReadyTimeout bounds the wait for the server to accept connections
// when Options.ReadyTimeout is zero.
const DefaultReadyTimeout = 30 * time.Second

// ErrClosed is returned by a second Server.Close. It wraps net.ErrClosed.
var ErrClosed = fmt.Errorf("embedded: server already closed: %w", net.ErrClosed)

// ErrInsecureListen is returned by Start and Options.Validate for a Listen
// address that is not loopback while Options.Token is empty: that would
// let anyone on the network run commands on every agent of this server.
var ErrInsecureListen = errors.New("embedded: refusing to listen on a non-loopback address without authentication (set Options.Token, or listen on 127.0.0.1)")

// Options configures Start. Only StoreDir is required.
type Options struct {
	// StoreDir is the directory of the JetStream file store. Required; it is
	// created if missing.
	StoreDir string
	// Listen is the client TCP address as host:port. Default: empty, no
	// TCP listener at all; clients connect in process (Server.Connect,
	// nats.InProcessServer) or through Server.ServeLocal. Port 0 or -1
	// picks a free port; ClientURL tells which. An empty host listens on
	// every interface. A host other than a loopback address (127.0.0.0/8,
	// ::1, localhost) needs Token (ErrInsecureListen).
	Listen string
	// Token, when set, is required from every client, in-process ones
	// included (nats.Token). Server.Connect presents it.
	Token string
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
	// (and object store limits) are reserved against it, so provisioning
	// without scaling needs about 9.9 GiB of it (provision.LimitBytes).
	MaxStore int64
	// ReadyTimeout bounds the wait for the server to accept connections,
	// within ctx. Default DefaultReadyTimeout.
	ReadyTimeout time.Duration
}

func (o *Options) setDefaults() {
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

// Validate reports the first problem with o. An empty Listen is valid (no
// TCP listener).
func (o *Options) Validate() error {
	if o.StoreDir == "" {
		return errors.New("embedded: Options.StoreDir is required")
	}
	if o.Listen != "" {
		host, _, err := splitListen(o.Listen)
		if err != nil {
			return err
		}
		if o.Token == "" && !IsLoopback(host) {
			return fmt.Errorf("%w: listen address %q", ErrInsecureListen, o.Listen)
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

// IsLoopback reports whether host (the host part of a listen address) only
// accepts connections from this machine: "localhost" or a loopback IP
// address. An empty host and 0.0.0.0 or :: (every interface) are not.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Server is a running embedded NATS server. Its methods are safe for
// concurrent use.
type Server struct {
	ns    *server.Server
	url   string
	token string

	mu     sync.Mutex
	closed bool
	locals []*localListener
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
	sopts := &server.Options{
		ServerName:        "kanade-embedded",
		JetStream:         true,
		StoreDir:          opts.StoreDir,
		JetStreamMaxStore: opts.MaxStore,
		NoSigs:            true,
		Authorization:     opts.Token,
		DontListen:        opts.Listen == "",
	}
	host := ""
	if opts.Listen != "" {
		host, sopts.Port, _ = splitListen(opts.Listen)
		sopts.Host = host
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
	s := &Server{ns: ns, token: opts.Token}
	if opts.Listen != "" {
		s.url = clientURL(ns, host)
	}
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
// small disk, where half of JetStream's store limit (by default 75 % of the
// free space) cannot hold the streams' and object stores' byte limits
// (provision.LimitBytes, about 9.9 GiB), those limits are scaled down to
// half the store limit instead of failing.
func (s *Server) provision(ctx context.Context, log *slog.Logger) error {
	nc, err := s.Connect(nats.Name("kanade-embedded-provision"))
	if err != nil {
		return fmt.Errorf("embedded: provision: connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("embedded: provision: %w", err)
	}
	var budget int64
	if jsc := s.ns.JetStreamConfig(); jsc != nil && jsc.MaxStore > 0 && jsc.MaxStore/2 < provision.LimitBytes() {
		budget = jsc.MaxStore / 2
		log.Warn("small disk: the embedded server's stream limits are scaled down to fit its store",
			"store_limit_bytes", jsc.MaxStore, "stream_limits_bytes", budget)
	}
	if err := provision.EnsureWithin(ctx, js, budget); err != nil {
		if isStorageExceeded(err) {
			return fmt.Errorf("embedded: provision: %w (the stream and object store limits need about 9.9 GiB of JetStream storage: free disk space or set Options.MaxStore)", err)
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

// ClientURL returns the URL TCP clients connect to, such as
// nats://127.0.0.1:4222, or "" when the server has no TCP listener
// (Options.Listen empty).
func (s *Server) ClientURL() string { return s.url }

// Listening reports whether the server accepts TCP clients.
func (s *Server) Listening() bool { return s.ns.Addr() != nil }

// Connect opens an in-process connection to the server (no network
// socket), presenting Options.Token. opts are applied after the server and
// token options.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	return nats.Connect(InProcessURL, append(s.ConnectOptions(), opts...)...)
}

// ConnectOptions are the nats.Options of an in-process connection to the
// server with its token, for a client that calls nats.Connect itself (such
// as the agent) with the URL InProcessURL.
func (s *Server) ConnectOptions() []nats.Option {
	o := []nats.Option{nats.InProcessServer(s.ns)}
	if s.token != "" {
		o = append(o, nats.Token(s.token))
	}
	return o
}

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
	locals := s.locals
	s.mu.Unlock()
	for _, l := range locals {
		l.close()
	}
	shutdown(s.ns)
	return nil
}

func shutdown(ns *server.Server) {
	ns.Shutdown()
	ns.WaitForShutdown()
}
