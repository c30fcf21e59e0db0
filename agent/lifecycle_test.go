package agent_test

// Tests of the agent's lifecycle for embedders: WaitReady, a ctx that ends
// during startup, a caller's connection (Options.Conn), Options.InboxPrefix
// and Options.JSDomain.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/ledger"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/provision"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// launch starts Run of an agent with o (DisableInventory, a test logger and
// a short KillGrace unless set) without waiting for it to be ready. The
// agent is stopped when the test ends.
func launch(t *testing.T, o agent.Options) *running {
	t.Helper()
	o.DisableInventory = true
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	if o.KillGrace == 0 {
		o.KillGrace = 500 * time.Millisecond
	}
	a, err := agent.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Agent: a, dir: o.DataDir, cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = a.Run(ctx)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Error("agent did not stop")
		}
	})
	return r
}

// readyOrErr calls WaitReady with a deadline of d.
func readyOrErr(r *running, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return r.WaitReady(ctx)
}

// stopWithin cancels r's ctx and fails the test unless Run returns within d.
func stopWithin(t *testing.T, r *running, d time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(d):
		t.Fatalf("Run did not return within %v of its ctx ending", d)
	}
	return time.Since(t0)
}

// deadURL returns the URL of a local port nothing listens on.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "nats://" + addr
}

// TestWaitReadyLockedDataDir: a second agent on the data directory of a
// running one fails within 2 s (the wait for a predecessor's lock, see
// agent.open), and its WaitReady returns that error (Ready
// alone would never fire); the first agent's WaitReady returns nil.
func TestWaitReadyLockedDataDir(t *testing.T) {
	e := newEnv(t)
	first := e.start("pc-lock", "", nil)
	if err := readyOrErr(first, 5*time.Second); err != nil {
		t.Fatalf("WaitReady of a ready agent: %v", err)
	}
	second := launch(t, agent.Options{PcID: "pc-lock", DataDir: first.dir, Servers: []string{e.srv.URL()}})
	t0 := time.Now()
	err := readyOrErr(second, 20*time.Second)
	took := time.Since(t0)
	if err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, agent.ErrStoppedBeforeReady) {
		t.Fatalf("WaitReady of an agent on a locked data dir: %v, want the lock error", err)
	}
	if !strings.Contains(err.Error(), "lock") {
		t.Errorf("WaitReady error %q does not name the lock", err)
	}
	if took > 5*time.Second {
		t.Errorf("WaitReady took %v, want the error promptly", took)
	}
	<-second.done
	if second.err == nil || second.err.Error() != err.Error() {
		t.Errorf("Run returned %v, WaitReady %v: want the same error", second.err, err)
	}
	// Later calls give the same answer at once.
	if err2 := readyOrErr(second, time.Second); err2 == nil || err2.Error() != err.Error() {
		t.Errorf("second WaitReady: %v", err2)
	}
	select {
	case <-second.Ready():
		t.Error("Ready closed for an agent that failed")
	default:
	}
}

// TestWaitReadyStoppedBeforeReady: with no server reachable the agent is
// never ready; WaitReady returns its own ctx's error at its deadline, and
// ErrStoppedBeforeReady once Run returned nil because its ctx ended.
func TestWaitReadyStoppedBeforeReady(t *testing.T) {
	r := launch(t, agent.Options{PcID: "pc-early", DataDir: natstest.TempDir(t), Servers: []string{deadURL(t)}})
	if err := readyOrErr(r, 300*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitReady with no server: %v, want context.DeadlineExceeded", err)
	}
	got := make(chan error, 1)
	go func() { err := readyOrErr(r, 30*time.Second); got <- err }()
	stopWithin(t, r, 5*time.Second)
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	select {
	case err := <-got:
		if !errors.Is(err, agent.ErrStoppedBeforeReady) {
			t.Fatalf("WaitReady: %v, want ErrStoppedBeforeReady", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitReady did not return after Run returned")
	}
}

// launchingLedger records n commands launching in dir's ledger, as an
// agent that crashed while running them leaves it, and returns their
// request ids.
func launchingLedger(t *testing.T, dir string, n int) map[string]bool {
	t.Helper()
	l, err := ledger.Open(filepath.Join(dir, "ledger"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for i := range n {
		id := uuid.NewString()
		meta, _ := json.Marshal(map[string]any{
			"request_id": id, "manifest_id": wire.AdhocID, "exec_id": fmt.Sprintf("exec-%d", i),
			"result_id": uuid.NewString(), "started_at": time.Now().UTC(),
		})
		if ok, _, err := l.Claim(id); !ok || err != nil {
			t.Fatalf("claim: %v %v", ok, err)
		}
		if err := l.Launching(id, meta); err != nil {
			t.Fatal(err)
		}
		ids[id] = true
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// onMessage is a slog handler calling f for every record whose message is msg.
type onMessage struct {
	msg string
	f   func()
}

func (h onMessage) Enabled(context.Context, slog.Level) bool { return true }
func (h onMessage) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h onMessage) WithGroup(string) slog.Handler            { return h }
func (h onMessage) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.f()
	}
	return nil
}

// TestStartupRecoveryHonoursCtx: an agent restarted after a crash left 121
// commands launching reports each with exit 121 before it takes commands.
// Here its results outbox is full (no server, MaxBytes reached after one
// result), so the recovery waits for room; the ctx ending then must stop
// Run promptly, and nothing may be lost: the next start, with room and a
// server, reports every one of the 121 exactly once.
func TestStartupRecoveryHonoursCtx(t *testing.T) {
	const n = 121
	dir := natstest.TempDir(t)
	ids := launchingLedger(t, dir, n)
	restore := agent.SetOutboxMaxBytes("results", 1)
	defer restore()
	var r *running
	cancelled := make(chan struct{})
	stop := func() {
		select {
		case <-cancelled:
		default:
			close(cancelled)
		}
	}
	r = launch(t, agent.Options{
		PcID: "pc-recover", DataDir: dir, Servers: []string{deadURL(t)},
		Logger: slog.New(onMessage{"cannot store result", stop}),
	})
	select {
	case <-cancelled:
	case <-r.done:
		t.Fatalf("Run returned before the recovery met the full outbox: %v", r.err)
	case <-time.After(30 * time.Second):
		t.Fatal("the recovery never met the full outbox")
	}
	if took := stopWithin(t, r, 20*time.Second); took > 5*time.Second {
		t.Errorf("Run took %v to return after its ctx ended during recovery, want < 5 s", took)
	}
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	if err := readyOrErr(r, time.Second); !errors.Is(err, agent.ErrStoppedBeforeReady) {
		t.Errorf("WaitReady: %v, want ErrStoppedBeforeReady", err)
	}

	// The next start, with room and a server, reports all 121 exactly once.
	restore()
	e := newEnv(t)
	e.start("pc-recover", dir, nil)
	ctx := context.Background()
	st, err := e.js.Stream(ctx, subject.StreamResults)
	if err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 60*time.Second, 50*time.Millisecond, func() error {
		info, err := st.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs < n {
			return fmt.Errorf("%d results stored, want %d", info.State.Msgs, n)
		}
		return nil
	})
	seen := map[string]bool{}
	info, _ := st.Info(ctx)
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		res, err := wire.DecodeExecResult(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if !ids[res.RequestID] || res.ExitCode != wire.ExitRestarted || seen[res.RequestID] {
			t.Fatalf("unexpected result %+v (duplicate %v)", res, seen[res.RequestID])
		}
		seen[res.RequestID] = true
	}
	if len(seen) != n {
		t.Fatalf("%d commands reported, want %d", len(seen), n)
	}
}

// TestStopWithoutStreams: on a server without the protocol's streams the
// outboxes cannot drain (the agent_online event waits in the obs outbox);
// a ctx that ends then makes Run return promptly instead of spending
// ShutdownTimeout on a flush that cannot succeed. The event stays stored.
func TestStopWithoutStreams(t *testing.T) {
	srv := natstest.RunBareServer(t)
	dir := natstest.TempDir(t)
	r := launch(t, agent.Options{
		PcID: "pc-bare", DataDir: dir, Servers: []string{srv.URL()},
		ShutdownTimeout: 30 * time.Second,
	})
	if err := readyOrErr(r, 20*time.Second); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if p := r.Stats().Outbox["obs"].Pending; p == 0 {
			return errors.New("agent_online not stored yet")
		}
		return nil
	})
	if took := stopWithin(t, r, 40*time.Second); took > 5*time.Second {
		t.Errorf("Run took %v to return without streams, want < 5 s", took)
	}
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	// The event is still there for the next start, which delivers it.
	nc := natstest.Connect(t, srv.URL())
	js := natstest.JetStream(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := provision.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	launch(t, agent.Options{PcID: "pc-bare", DataDir: dir, Servers: []string{srv.URL()}})
	st, err := js.Stream(ctx, subject.StreamObs)
	if err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		info, err := st.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs < 2 { // both starts' agent_online
			return fmt.Errorf("%d obs events stored, want 2", info.State.Msgs)
		}
		return nil
	})
}

// sharedConn is a caller's connection, reconnecting forever, with extra
// options.
func sharedConn(t *testing.T, url string, opts ...nats.Option) *nats.Conn {
	return natstest.Connect(t, url, append([]nats.Option{nats.Name("host-program")}, opts...)...)
}

// TestSharedConn: two agents share one caller-owned connection; both run
// commands; stopping one leaves the connection open and the other
// working, across a server restart; once both stopped, the connection
// holds none of their subscriptions.
func TestSharedConn(t *testing.T) {
	e := newEnv(t)
	var reconnects atomic.Int64
	nc := sharedConn(t, e.srv.URL(), nats.ReconnectHandler(func(*nats.Conn) { reconnects.Add(1) }))
	// A first request creates the connection's reply subscription, which
	// stays: count from there.
	if _, err := natstest.JetStream(t, nc).AccountInfo(context.Background()); err != nil {
		t.Fatal(err)
	}
	base := nc.NumSubscriptions()
	a := launch(t, agent.Options{PcID: "pc-sa", DataDir: natstest.TempDir(t), Conn: nc})
	b := launch(t, agent.Options{PcID: "pc-sb", DataDir: natstest.TempDir(t), Conn: nc})
	for _, r := range []*running{a, b} {
		if err := readyOrErr(r, 20*time.Second); err != nil {
			t.Fatalf("WaitReady: %v", err)
		}
	}
	ca, cb := cmd("echo a"), cmd("echo b")
	e.publish(pcSubject("pc-sa"), ca)
	e.publish(pcSubject("pc-sb"), cb)
	for _, c := range []wire.Command{ca, cb} {
		if r := e.waitResult(c.RequestID, 30*time.Second); r.ExitCode != 0 {
			t.Fatalf("result %+v", r)
		}
	}
	stopWithin(t, a, 30*time.Second)
	if a.err != nil {
		t.Fatalf("Run: %v", a.err)
	}
	if nc.IsClosed() || !nc.IsConnected() {
		t.Fatalf("the caller's connection is %v after the agent stopped", nc.Status())
	}
	// The other agent keeps working, also after a reconnect.
	e.srv.Restart()
	c2 := cmd("echo b2")
	natstest.CheckFor(t, 30*time.Second, 200*time.Millisecond, func() error {
		if !nc.IsConnected() {
			return errors.New("not reconnected yet")
		}
		return nil
	})
	e.publish(pcSubject("pc-sb"), c2)
	if r := e.waitResult(c2.RequestID, 30*time.Second); r.ExitCode != 0 {
		t.Fatalf("result %+v", r)
	}
	if reconnects.Load() == 0 {
		t.Error("the caller's reconnect handler was not called: the agent replaced it")
	}
	stopWithin(t, b, 30*time.Second)
	if b.err != nil {
		t.Fatalf("Run: %v", b.err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("the caller's connection after both agents stopped: %v", err)
	}
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if n := nc.NumSubscriptions(); n > base {
			return fmt.Errorf("%d subscriptions left on the caller's connection, had %d", n, base)
		}
		return nil
	})
}

// TestSharedConnClosed: when the caller closes its connection under a
// running agent, Run stops and says so.
func TestSharedConnClosed(t *testing.T) {
	e := newEnv(t)
	nc := sharedConn(t, e.srv.URL())
	r := launch(t, agent.Options{PcID: "pc-closed", DataDir: natstest.TempDir(t), Conn: nc})
	if err := readyOrErr(r, 20*time.Second); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	nc.Close()
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after the connection was closed")
	}
	if !errors.Is(r.err, nats.ErrConnectionClosed) {
		t.Fatalf("Run: %v, want nats.ErrConnectionClosed", r.err)
	}
	// A closed connection is refused at once.
	r2 := launch(t, agent.Options{PcID: "pc-closed2", DataDir: natstest.TempDir(t), Conn: nc})
	if err := readyOrErr(r2, 10*time.Second); !errors.Is(err, nats.ErrConnectionClosed) {
		t.Fatalf("WaitReady with a closed Conn: %v", err)
	}
}

// TestConnOptionsValidate: with Conn, the dialling options are refused;
// a bad InboxPrefix or JSDomain is refused.
func TestConnOptionsValidate(t *testing.T) {
	e := newEnv(t)
	nc := sharedConn(t, e.srv.URL())
	dir := natstest.TempDir(t)
	for name, o := range map[string]agent.Options{
		"servers":      {Conn: nc, Servers: []string{e.srv.URL()}},
		"token":        {Conn: nc, Credentials: agent.Credentials{Token: "x"}},
		"ca":           {Conn: nc, Credentials: agent.Credentials{CAFile: "/ca.pem"}},
		"natsoptions":  {Conn: nc, NATSOptions: []nats.Option{nats.Name("x")}},
		"inboxprefix":  {Conn: nc, InboxPrefix: "_INBOX.pc"},
		"prefix-star":  {InboxPrefix: "_INBOX.*"},
		"prefix-gt":    {InboxPrefix: "_INBOX.>"},
		"prefix-dot":   {InboxPrefix: "_INBOX."},
		"prefix-space": {InboxPrefix: "_IN BOX"},
		"domain-dot":   {JSDomain: "a.b"},
		"domain-space": {JSDomain: "a b"},
	} {
		o.PcID, o.DataDir = "pc-v", dir
		if _, err := agent.New(o); err == nil {
			t.Errorf("%s: New accepted %+v", name, o)
		}
	}
	for name, o := range map[string]agent.Options{
		"conn":         {Conn: nc, JSDomain: "hub"},
		"inbox prefix": {InboxPrefix: "_INBOX.pc-v"},
	} {
		o.PcID, o.DataDir = "pc-v", dir
		if _, err := agent.New(o); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestInboxPrefix: the agent's JetStream API requests carry replies under
// Options.InboxPrefix, and it works so.
func TestInboxPrefix(t *testing.T) {
	e := newEnv(t)
	spy, err := e.nc.SubscribeSync("$JS.API.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	e.start("pc-inbox", "", func(o *agent.Options) { o.InboxPrefix = "_INBOX.pc-inbox" })
	c := cmd("echo hi")
	e.publish(pcSubject("pc-inbox"), c)
	if res := e.waitResult(c.RequestID, 30*time.Second); res.ExitCode != 0 {
		t.Fatalf("result %+v", res)
	}
	seen := 0
	for {
		m, err := spy.NextMsg(100 * time.Millisecond)
		if err != nil {
			break
		}
		if strings.HasPrefix(m.Reply, "_INBOX.pc-inbox.") {
			seen++
		}
	}
	if seen == 0 {
		t.Fatal("no JetStream API request of the agent replied to under _INBOX.pc-inbox.")
	}
}

// TestJSDomain: an agent with Options.JSDomain sends its JetStream API
// requests to $JS.<domain>.API, and works against a server of that domain.
func TestJSDomain(t *testing.T) {
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, JetStreamDomain: "hub",
		StoreDir: natstest.TempDir(t), NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	nc := natstest.Connect(t, ns.ClientURL())
	js, err := jetstream.NewWithDomain(nc, "hub")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := provision.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	r := launch(t, agent.Options{PcID: "pc-leaf", DataDir: natstest.TempDir(t), Servers: []string{ns.ClientURL()}, JSDomain: "hub"})
	if err := readyOrErr(r, 20*time.Second); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	c := cmd("echo leaf")
	b, _ := json.Marshal(c)
	if err := nc.Publish(pcSubject("pc-leaf"), b); err != nil {
		t.Fatal(err)
	}
	rsub, _ := subject.Result(c.RequestID)
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		st, err := js.Stream(ctx, subject.StreamResults)
		if err != nil {
			return err
		}
		m, err := st.GetLastMsgForSubject(ctx, rsub)
		if err != nil {
			return err
		}
		res, err := wire.DecodeExecResult(m.Data)
		if err != nil {
			return err
		}
		if res.ExitCode != 0 {
			return fmt.Errorf("result %+v", res)
		}
		return nil
	})

	// The server maps its own domain's API onto $JS.API, so where the
	// requests go shows on a server of another domain: all under
	// $JS.elsewhere.API, none under $JS.API.
	bare := natstest.RunBareServer(t)
	spyNC := natstest.Connect(t, bare.URL())
	spy, err := spyNC.SubscribeSync("$JS.elsewhere.API.>")
	if err != nil {
		t.Fatal(err)
	}
	local, err := spyNC.SubscribeSync("$JS.API.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := spyNC.Flush(); err != nil {
		t.Fatal(err)
	}
	launch(t, agent.Options{PcID: "pc-leaf2", DataDir: natstest.TempDir(t), Servers: []string{bare.URL()}, JSDomain: "elsewhere"})
	if _, err := spy.NextMsg(10 * time.Second); err != nil {
		t.Fatalf("no request on $JS.elsewhere.API: %v", err)
	}
	if m, err := local.NextMsg(500 * time.Millisecond); err == nil {
		t.Fatalf("request on %s, want none under $JS.API", m.Subject)
	}
}

// TestWaitReadyBadTLS: an unreadable CA file fails Run before it connects;
// WaitReady returns that error.
func TestWaitReadyBadTLS(t *testing.T) {
	dir := natstest.TempDir(t)
	r := launch(t, agent.Options{PcID: "pc-tls", DataDir: dir, Servers: []string{deadURL(t)},
		Credentials: agent.Credentials{CAFile: filepath.Join(dir, "missing-ca.pem")}})
	err := readyOrErr(r, 20*time.Second)
	if err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "tls ca") {
		t.Fatalf("WaitReady with a missing CA file: %v, want the tls ca error", err)
	}
}

// blackHoles returns the URLs of n local listeners that accept connections
// and never answer, as a firewalled or hung server: each dial attempt waits
// for the connect timeout.
func blackHoles(t *testing.T, n int) []string {
	t.Helper()
	var urls []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var held []net.Conn
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				c, err := ln.Accept()
				if err != nil {
					for _, c := range held {
						c.Close()
					}
					return
				}
				held = append(held, c)
			}
		}()
		t.Cleanup(func() { ln.Close(); <-done })
		urls = append(urls, "nats://"+ln.Addr().String())
	}
	return urls
}

// TestStartupConnectHonoursCtx: the first connection attempt to servers
// that never answer takes a connect timeout per server; a ctx that ends
// meanwhile makes Run return at once.
func TestStartupConnectHonoursCtx(t *testing.T) {
	var started atomic.Bool
	r := launch(t, agent.Options{PcID: "pc-hole", DataDir: natstest.TempDir(t), Servers: blackHoles(t, 5),
		NATSOptions: []nats.Option{nats.Timeout(4 * time.Second), nats.DontRandomize()},
		ObsSources: []agent.ObsSource{agent.ObsSourceFunc(func(ctx context.Context, _ func(context.Context, wire.ObsEvent) error) error {
			started.Store(true) // never reached: Run does not get past the dial
			<-ctx.Done()
			return nil
		})},
	})
	if err := readyOrErr(r, 500*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitReady: %v, want context.DeadlineExceeded", err)
	}
	if took := stopWithin(t, r, 40*time.Second); took > 5*time.Second {
		t.Errorf("Run took %v to return after its ctx ended while dialling, want < 5 s", took)
	}
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	if started.Load() {
		t.Error("Run went past the dial")
	}
}
