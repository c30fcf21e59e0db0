package agent

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/kanade/kanade-agent/provision"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// connect returns the connection the agent uses and whether the agent owns
// it (and must close it): Options.Conn as it is, or a new connection
// dialled with natsOptions. Dialling starts even when no server is
// reachable (RetryOnFailedConnect), but its first attempt may take a
// connect timeout per server: connect returns ctx.Err() as soon as ctx
// ends, and a connection the dial still produces is then closed.
func (a *Agent) connect(ctx context.Context) (*nats.Conn, bool, error) {
	if nc := a.opts.Conn; nc != nil {
		if nc.IsClosed() {
			return nil, false, fmt.Errorf("agent: Options.Conn: %w", nats.ErrConnectionClosed)
		}
		return nc, false, nil
	}
	nopts, err := a.natsOptions()
	if err != nil {
		return nil, false, err
	}
	type dialed struct {
		nc  *nats.Conn
		err error
	}
	ch := make(chan dialed, 1)
	go func() {
		nc, err := nats.Connect(strings.Join(a.opts.Servers, ","), nopts...)
		ch <- dialed{nc, err}
	}()
	select {
	case d := <-ch:
		if d.err != nil {
			return nil, false, fmt.Errorf("agent: connect: %w", d.err)
		}
		return d.nc, true, nil
	case <-ctx.Done():
		go func() {
			if d := <-ch; d.nc != nil {
				d.nc.Close()
			}
		}()
		return nil, false, ctx.Err()
	}
}

// newJetStream returns the JetStream context of nc, in Options.JSDomain
// when set.
func (a *Agent) newJetStream(nc *nats.Conn) (jetstream.JetStream, error) {
	if a.opts.JSDomain != "" {
		return jetstream.NewWithDomain(nc, a.opts.JSDomain)
	}
	return jetstream.New(nc)
}

// jsAPIPrefix is the prefix of the JetStream API subjects the agent uses
// directly: $JS.API., or $JS.<domain>.API. with Options.JSDomain.
func (a *Agent) jsAPIPrefix() string {
	if a.opts.JSDomain != "" {
		return "$JS." + a.opts.JSDomain + ".API."
	}
	return "$JS.API."
}

// connWatch follows a connection's state for the agent (see watchConn).
type connWatch struct {
	closed    chan struct{} // closed when the connection was seen closed
	closeOnce sync.Once
	stop      func() // stops the watch and waits for it
}

func newConnWatch() *connWatch { return &connWatch{closed: make(chan struct{}), stop: func() {}} }

// connEvent applies a change of the connection's state: a disconnect
// marks the gate state stale; a (re)connect marks it live again if it was
// ever synced (the KV watchers resume where they were) and wakes
// markReady; a close (only a caller closes a connection under a running
// agent) closes w.closed, which stops Run.
func (a *Agent) connEvent(w *connWatch, st nats.Status) {
	now := time.Now()
	switch st {
	case nats.CONNECTED:
		a.kv.reconnected(now)
		a.kick()
		a.connected.fire()
	case nats.RECONNECTING, nats.DISCONNECTED:
		a.kv.markGateLive(false, now)
		a.kv.abortReads()
	case nats.CLOSED:
		a.kv.markGateLive(false, now)
		w.closeOnce.Do(func() { close(w.closed) })
	}
}

// watchConn follows nc's state for the agent (connEvent). The agent's own
// connection is followed by its handlers (natsOptions), set before it was
// dialled, on nats.go's callback goroutine: watchConn returns their watch.
// A caller's connection, whose handlers the agent must not replace, is
// followed through a nats.Conn.StatusChanged listener on a goroutine of
// its own, registered before watchConn returns, so no change after it is
// missed; stop removes it.
func (a *Agent) watchConn(nc *nats.Conn, owned bool) *connWatch {
	if owned {
		if nc.IsClosed() {
			a.connEvent(a.connW, nats.CLOSED)
		}
		return a.connW
	}
	ch := nc.StatusChanged(nats.CONNECTED, nats.RECONNECTING, nats.DISCONNECTED, nats.CLOSED)
	ctx, cancel := context.WithCancel(context.Background())
	w := newConnWatch()
	done := make(chan struct{})
	w.stop = func() {
		cancel()
		<-done
		nc.RemoveStatusListener(ch)
	}
	go func() {
		defer close(done)
		if nc.IsClosed() {
			a.connEvent(w, nats.CLOSED)
			return
		}
		// A caller's connection is logged here, once per change.
		connected := nc.IsConnected()
		for {
			var st nats.Status
			select {
			case <-ctx.Done():
				return
			case st = <-ch:
			}
			switch st {
			case nats.CONNECTED:
				if !connected {
					a.log.Info("nats connected", "url", redactURL(nc.ConnectedUrl()))
				}
				connected = true
			case nats.RECONNECTING, nats.DISCONNECTED:
				if connected {
					a.log.Info("nats disconnected")
				}
				connected = false
			}
			a.connEvent(w, st)
			if st == nats.CLOSED {
				return
			}
		}
	}()
	return w
}

// natsOptions builds the connection options: the agent's name and inbox
// prefix, reconnection forever with jitter, a connection that starts even
// when no server is reachable, handlers that log and follow the
// connection's state (connEvent, see watchConn), and the configured
// credentials.
func (a *Agent) natsOptions() ([]nats.Option, error) {
	log := a.log
	a.connW = newConnWatch()
	w := a.connW
	o := []nats.Option{
		nats.Name("kanade-agent/" + a.opts.PcID),
		nats.CustomInboxPrefix(a.opts.InboxPrefix),
		// Requests (JetStream API calls, KV reads) are rare after start:
		// each takes a subscription of its own for its reply rather than
		// the connection keeping a reply subscription, its goroutine and
		// its random source (about 10 KiB) for the agent's life.
		nats.UseOldRequestStyle(),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.ReconnectJitter(500*time.Millisecond, 2*time.Second),
		// A dead connection is noticed within about a minute (the default
		// is four), so heartbeats stop and a cluster peer takes over sooner.
		nats.PingInterval(30 * time.Second),
		nats.MaxPingsOutstanding(2),
		// Heartbeats are never queued while disconnected (see heartbeat.go);
		// the reconnect buffer only holds what core publishes slip through.
		nats.ReconnectBufSize(1 << 20),
		// Keep trying after refused credentials: an account or a rotated
		// token may reach the server later (nats.go gives up after two).
		nats.IgnoreAuthErrorAbort(),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			} else {
				log.Info("nats disconnected")
			}
			a.connEvent(w, nats.DISCONNECTED)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "url", redactURL(nc.ConnectedUrl()))
			a.connEvent(w, nats.CONNECTED)
		}),
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info("nats connected", "url", redactURL(nc.ConnectedUrl()))
			a.connEvent(w, nats.CONNECTED)
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			if err := nc.LastError(); err != nil {
				log.Error("nats connection closed", "err", err)
			}
			a.connEvent(w, nats.CLOSED)
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Warn("nats async error", "subject", subj, "err", err)
		}),
	}
	c := a.opts.Credentials
	switch {
	case c.Token != "":
		o = append(o, nats.Token(c.Token))
	case c.User != "":
		o = append(o, nats.UserInfo(c.User, c.Password))
	case c.CredsFile != "":
		o = append(o, nats.UserCredentials(c.CredsFile))
	case c.NKeySeedFile != "":
		opt, err := nats.NkeyOptionFromSeed(c.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("agent: nkey seed %s: %w", c.NKeySeedFile, err)
		}
		o = append(o, opt)
	}
	switch {
	case c.TLSConfig != nil:
		o = append(o, nats.Secure(c.TLSConfig))
	case c.CAFile != "" || c.CertFile != "":
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.CAFile != "" {
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				return nil, fmt.Errorf("agent: tls ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("agent: tls ca %s: no certificate found", c.CAFile)
			}
			cfg.RootCAs = pool
		}
		if c.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("agent: tls client certificate: %w", err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		o = append(o, nats.Secure(cfg))
	}
	return append(o, a.opts.NATSOptions...), nil
}

// redactURL returns u for logs: without its user information, which may
// hold a password or a token (the agent log is served by logs.fetch).
// nats.Conn.ConnectedUrlRedacted hides only a password, not a token given
// as the user name.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		if i := strings.LastIndex(u, "@"); i >= 0 {
			return "redacted@" + u[i+1:]
		}
		return u
	}
	if p.User != nil {
		p.User = url.User("redacted")
	}
	return p.String()
}

// backoff is the protocol's retry schedule: 1 s doubling to 300 s, ±25 % jitter.
type backoff struct{ n int }

func (b *backoff) next() time.Duration {
	d := time.Second << min(b.n, 9)
	if d > 300*time.Second {
		d = 300 * time.Second
	}
	b.n++
	j := 0.75 + rand.Float64()*0.5
	return time.Duration(float64(d) * j)
}

// sleepCtx waits d or until ctx ends, reporting whether the full wait elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// retry calls f until it succeeds or ctx ends, backing off between
// failures; a (re)connect cuts the wait short and starts the backoff over,
// so an agent that started offline, or was offline long enough for the
// backoff to reach minutes, tries again as soon as the broker is back.
// It logs the first failure and then every change of error text.
func (a *Agent) retry(ctx context.Context, what string, f func(context.Context) error) error {
	var b backoff
	last := ""
	for {
		up := a.connected.wait()
		err := f(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d := b.next()
		if msg := err.Error(); msg != last {
			a.log.Warn("waiting for "+what, "err", err, "retry_in", d.Round(time.Millisecond))
			last = msg
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-up:
			t.Stop()
			b = backoff{}
		case <-t.C:
		}
	}
}

// waitInfra waits until the streams, buckets and object stores the agent
// needs exist, retrying with backoff; it never gives up before ctx ends.
// The check is shared by the agents of one process that dial the same
// servers with the same credentials and JetStream domain (sharedCheck).
func (a *Agent) waitInfra(ctx context.Context) error {
	return a.retry(ctx, "streams and buckets", func(ctx context.Context) error {
		if !a.nc.IsConnected() {
			return errNotConnected
		}
		key := a.infraKey(a.nc.ConnectedServerId())
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		err := infraChecks.check(cctx, key, func(ctx context.Context) error { return provision.Check(ctx, a.js) })
		if err != nil {
			a.replayOnce.Do(func() { close(a.replayUp) })
			return err
		}
		a.infraUp.Store(true)
		return nil
	})
}

// infraKey names the account and JetStream domain the agent checks the
// streams of, for sharedCheck: its servers, the server it reached, domain
// and credentials. It is
// "" (no sharing) for a caller's connection or extra NATS options, whose
// account the agent cannot tell.
func (a *Agent) infraKey(serverID string) string {
	o := a.opts
	if o.Conn != nil || len(o.NATSOptions) > 0 {
		return ""
	}
	c := o.Credentials
	// The server's id (new at each start) keeps a success from standing
	// for another server that took the same address since.
	h := sha256.Sum256([]byte(strings.Join([]string{strings.Join(o.Servers, ","), serverID, o.JSDomain, c.Token, c.User, c.Password, c.CredsFile, c.NKeySeedFile}, "\x00")))
	return hex.EncodeToString(h[:])
}

// infraCheckTTL is how long a successful infrastructure check stands for
// the other agents of the process with the same key.
const infraCheckTTL = 30 * time.Second

// sharedCheck runs one check at a time per key for the agents of a
// process, and lets a success stand for infraCheckTTL: a fleet of agents
// embedded in one process (or a restart of many) asks the server for the
// protocol's 13 streams, buckets and object stores once, not once per
// agent. Streams are created by an operator and not deleted under running
// agents; one that is would fail the agent's later requests, which retry.
type sharedCheck struct {
	mu       sync.Mutex
	ok       map[string]time.Time     // key → when a check last succeeded
	inflight map[string]chan struct{} // key → closed when the running check ends
}

var infraChecks sharedCheck

// check returns nil when a check of key succeeded within infraCheckTTL;
// otherwise it waits for a check of key already running and takes its
// success, or runs f. An empty key always runs f.
func (s *sharedCheck) check(ctx context.Context, key string, f func(context.Context) error) error {
	if key == "" {
		return f(ctx)
	}
	s.mu.Lock()
	if t, ok := s.ok[key]; ok && time.Since(t) < infraCheckTTL {
		s.mu.Unlock()
		return nil
	}
	wait, running := s.inflight[key]
	if !running {
		if s.inflight == nil {
			s.inflight, s.ok = map[string]chan struct{}{}, map[string]time.Time{}
		}
		done := make(chan struct{})
		s.inflight[key] = done
		s.mu.Unlock()
		err := f(ctx)
		s.mu.Lock()
		if err == nil {
			s.ok[key] = time.Now()
		}
		delete(s.inflight, key)
		close(done)
		s.mu.Unlock()
		return err
	}
	s.mu.Unlock()
	select {
	case <-wait:
	case <-ctx.Done():
		return ctx.Err()
	}
	// Take its success, or run a check of our own after its failure
	// (which may be its own timeout).
	s.mu.Lock()
	t, ok := s.ok[key]
	s.mu.Unlock()
	if ok && time.Since(t) < infraCheckTTL {
		return nil
	}
	return f(ctx)
}

var errNotConnected = errors.New("agent: not connected to NATS")
