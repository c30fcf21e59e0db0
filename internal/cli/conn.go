package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// connName is the NATS connection name of the CLI.
const connName = "kanade-cli"

// natsOptions builds the connection options from the global flags.
func (g *globals) natsOptions() ([]nats.Option, error) {
	o := []nats.Option{
		nats.Name(connName),
		nats.Timeout(g.timeout),
		// One connect attempt per URL (no RetryOnFailedConnect); once
		// connected, a brief outage is ridden out by reconnecting, and
		// every wait stays bounded by its own deadline.
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}),
	}
	switch {
	case g.token != "":
		o = append(o, nats.Token(g.token))
	case g.user != "":
		o = append(o, nats.UserInfo(g.user, g.password))
	case g.creds != "":
		if _, err := os.Stat(g.creds); err != nil {
			return nil, fmt.Errorf("--nats-creds: %w", err)
		}
		o = append(o, nats.UserCredentials(g.creds))
	case g.nkey != "":
		opt, err := nats.NkeyOptionFromSeed(g.nkey)
		if err != nil {
			return nil, fmt.Errorf("--nats-nkey %s: %w", g.nkey, err)
		}
		o = append(o, opt)
	}
	if g.tlsCA != "" || g.tlsCert != "" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if g.tlsCA != "" {
			pem, err := os.ReadFile(g.tlsCA)
			if err != nil {
				return nil, fmt.Errorf("--tls-ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--tls-ca %s: no PEM certificate found in it", g.tlsCA)
			}
			cfg.RootCAs = pool
		}
		if g.tlsCert != "" {
			cert, err := tls.LoadX509KeyPair(g.tlsCert, g.tlsKey)
			if err != nil {
				return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		o = append(o, nats.Secure(cfg))
	}
	return o, nil
}

// connect connects to NATS. The whole attempt, over every URL, is bounded
// by --timeout and by ctx; the error says where it tried and what to check.
func (inv *invocation) connect(ctx context.Context) (*nats.Conn, error) {
	g := &inv.g
	opts, err := g.natsOptions()
	if err != nil {
		return nil, err
	}
	servers := g.servers()
	where := redactURLs(servers)
	hint := "check --nats-url or KANADE_NATS_URL"
	lc, lerr := g.local(inv.env.Getenv)
	switch {
	case !g.urlSet && lerr != nil:
		return nil, lerr
	case !g.urlSet && lc != nil:
		// The local agent's embedded server: its socket, else its TCP port.
		hint = "is kanade-agent running? its " + lc.path + " names this address"
		switch {
		case lc.Socket != "":
			servers = []string{"nats://local-socket"}
			where = "the local socket " + lc.Socket
			opts = append(opts, nats.SetCustomDialer(socketDialer{lc.Socket}))
		case lc.URL != "":
			servers = []string{lc.URL}
			where = redactURL(lc.URL)
		default:
			return nil, fmt.Errorf("the local agent's %s names neither a socket nor a URL: restart kanade-agent, or give --nats-url", lc.path)
		}
		if !g.credsSet {
			opts = append(opts, nats.Token(lc.Token))
		}
	case g.urlSet && lc != nil && !g.credsSet && slices.Contains(servers, lc.URL):
		// The URL is the local agent's TCP port: use its token.
		opts = append(opts, nats.Token(lc.Token))
	}
	type result struct {
		nc  *nats.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(strings.Join(servers, ","), opts...)
		ch <- result{nc, err}
	}()
	t := time.NewTimer(g.timeout)
	defer t.Stop()
	abandon := func() {
		go func() { // close the connection should it still come up
			if r := <-ch; r.nc != nil {
				r.nc.Close()
			}
		}()
	}
	select {
	case r := <-ch:
		if r.err != nil {
			msg := fmt.Sprintf("cannot connect to NATS at %s: %v (%s, the credentials, and that the server runs)", where, r.err, hint)
			if errors.Is(r.err, nats.ErrAuthorization) && lerr != nil {
				msg += "; " + lerr.Error()
			}
			return nil, errors.New(msg)
		}
		return r.nc, nil
	case <-t.C:
		abandon()
		return nil, fmt.Errorf("cannot connect to NATS at %s within %v (%s and that the server runs, or raise --timeout)", where, g.timeout, hint)
	case <-ctx.Done():
		abandon()
		return nil, fmt.Errorf("interrupted while connecting to NATS at %s", where)
	}
}

// jetStream connects and returns the connection and its JetStream context.
func (inv *invocation) jetStream(ctx context.Context) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := inv.connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}

// session connects for one short operation: it returns the JetStream
// context, a context bounded by --timeout for the operation, and done,
// which ends both.
func (inv *invocation) session(ctx context.Context) (jetstream.JetStream, context.Context, func(), error) {
	nc, js, err := inv.jetStream(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	octx, cancel := context.WithTimeout(ctx, inv.g.timeout)
	return js, octx, func() { cancel(); nc.Close() }, nil
}

// redactURLs lists urls for messages, without passwords or tokens.
func redactURLs(urls []string) string {
	out := make([]string, len(urls))
	for i, s := range urls {
		out[i] = redactURL(s)
	}
	return strings.Join(out, ",")
}

func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.Host != "" {
		if u.User != nil {
			u.User = url.User("xxxxx")
		}
		return u.String()
	}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		return "xxxxx@" + s[i+1:]
	}
	return s
}

// jsError turns a JetStream error about what (a stream, bucket or object
// store) into one that says what to do.
func jsError(what string, err error) error {
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound), errors.Is(err, jetstream.ErrBucketNotFound),
		errors.Is(err, nats.ErrStreamNotFound), errors.Is(err, nats.ErrBucketNotFound):
		return fmt.Errorf("%s does not exist on the server: run 'kanade provision' first (%v)", what, err)
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return fmt.Errorf("%s: JetStream is not enabled on this server or account: %v", what, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return fmt.Errorf("%s: no answer from the server in time (raise --timeout?): %v", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// requestError explains a failed request to an agent.
func requestError(subj, pc string, timeout time.Duration, err error) error {
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("no agent answers on %s: pc %q is offline or its id is wrong (the agent logs its pc id when it starts)", subj, pc)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return fmt.Errorf("no reply on %s within %v: the agent is busy or unreachable (raise --timeout?)", subj, timeout)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("interrupted while waiting for a reply on %s", subj)
	}
	return fmt.Errorf("request on %s: %w", subj, err)
}
