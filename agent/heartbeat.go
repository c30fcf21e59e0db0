package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kanade/kanade-agent/internal/hostperf"
	"github.com/kanade/kanade-agent/signing"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
)

// commandProtocols are the command forms this agent accepts, reported in
// the heartbeat's command_protocols: "legacy" is upstream's name for its
// original form (the Kanade-Sig headers over at_ms and the bare Command),
// "kanade.command.v2" upstream's signed envelope (signing.CheckEnvelope),
// which a backend sends only to agents that list it, and
// signing.AlgEd25519Subject this agent's subject-bound form
// (docs/protocol.md); a backend ignores names it does not know.
var commandProtocols = append(signing.CommandProtocols(), signing.AlgEd25519Subject)

// heartbeatHostname is the heartbeat's hostname, as upstream takes it:
// %COMPUTERNAME% (the NetBIOS name Windows shows), else $HOSTNAME; this
// agent falls back to the system's host name where neither is set (a
// service on Linux has no $HOSTNAME), so the field is rarely empty.
func heartbeatHostname() string {
	for _, k := range []string{"COMPUTERNAME", "HOSTNAME"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	h, _ := os.Hostname()
	return h
}

// identity returns the heartbeat fields every reply carries, periodic or
// ping: who and what the agent is, and its keyring report (always sent, an
// empty keyring as []).
func (a *Agent) identity(now time.Time) wire.Heartbeat {
	return wire.Heartbeat{
		PcID: a.opts.PcID, At: now.UTC(), AgentVersion: a.opts.Version, Hostname: a.hostname,
		OSFamily:    wire.OSFamily(runtime.GOOS),
		CommandKeys: a.verifier.fingerprints(), Enforcing: a.verifier.enforcing(),
		Outbox: a.outboxStats(),
	}
}

// heartbeat builds the periodic Heartbeat, as upstream's heartbeat loop
// does: the agent process's own load (no agent_cpu_pct on the first one,
// which only sets the CPU baseline; disk bytes cumulative since the process
// started), the quarantined versions, the last sign-in (re-read every time:
// it changes while the agent runs), the command keys after re-reading the
// keyring, and the command protocols. Only the heartbeat timer calls it:
// each call is a CPU sample.
func (a *Agent) heartbeat(now time.Time) wire.Heartbeat {
	// Refresh, then report, as upstream does: re-reading the keyring here
	// is what bounds how long a revoked key keeps verifying. A failed read
	// keeps the keys already loaded and is logged by the verifier.
	_ = a.verifier.v.Refresh()
	hb := a.identity(now)
	if self, err := a.self.Sample(now); err != nil {
		a.log.Debug("self sample failed", "err", err)
	} else {
		hb.AgentRSSBytes = self.RSSBytes
		if self.HasCPU {
			hb.AgentCPUPct = &self.CPUPct
		}
		if self.HasDisk {
			hb.AgentDiskReadBytes, hb.AgentDiskWrittenBytes = &self.DiskReadBytes, &self.DiskWrittenBytes
		}
	}
	if a.upd != nil {
		hb.QuarantinedVersions = a.upd.Quarantined()
	}
	if l, err := hostperf.LastLogon(); err != nil {
		a.log.Debug("cannot read the last logon", "err", err)
	} else {
		hb.LastLogonUser, hb.LastLogonDisplayName = l.User, l.DisplayName
	}
	hb.CommandProtocols = slices.Clone(commandProtocols)
	return hb
}

// pingReply builds the answer to a ping, as upstream's ping responder does:
// a fresh heartbeat without the periodic fields (agent_cpu_pct, the other
// self figures, quarantined_versions, the last logon and command_protocols
// are omitted; the periodic heartbeat carries them). Sampling the agent's
// CPU here would also cut the periodic heartbeat's CPU interval short.
// command_keys and enforcing are sent because this agent always sends them.
func (a *Agent) pingReply(now time.Time) wire.Heartbeat {
	return a.identity(now)
}

// publishCore publishes v on subj with core NATS, but only while connected:
// a heartbeat buffered during an outage and flushed minutes later would lie
// about liveness.
func (a *Agent) publishCore(subj string, v any) {
	if !a.nc.IsConnected() {
		return
	}
	b, err := wire.Marshal(v) // serde_json's bytes: no \u003c escapes
	if err != nil {
		a.log.Error("cannot encode", "subject", subj, "err", err)
		return
	}
	if err := a.nc.Publish(subj, b); err != nil {
		a.log.Debug("core publish failed", "subject", subj, "err", err)
	}
}

// minTimerInterval is the shortest period runTimers ever uses, whatever the
// effective config says. The config's own floors (wire.MinHeartbeatInterval,
// applied by wire.Config.Apply) are far above it; this only keeps a zero or
// negative interval from Options.Defaults from spinning.
const minTimerInterval = 10 * time.Millisecond

// timerInterval returns d, raised to minTimerInterval.
func timerInterval(d time.Duration) time.Duration { return max(d, minTimerInterval) }

// resetTimer makes t fire d from now, dropping a tick it may hold.
func resetTimer(t *time.Timer, d time.Duration) {
	t.Stop()
	t.Reset(d)
}

// runTimers publishes heartbeats and HostPerf samples on the intervals of
// the effective config (already clamped to their floors by wire.Config.Apply),
// which change live. The first heartbeat and the first HostPerf go out at
// once, and so does the first after a change of their interval, as
// upstream's tickers do; the first HostPerf has no CPU figure and no rates
// (there is nothing to diff against yet). It also refreshes the keyring
// every keyRefreshInterval (refreshKeys), the first time one interval
// after it starts: one goroutine for the agent's periodic work. It returns
// when ctx ends, or with an error when closed is closed (the connection was
// closed under the agent).
func (a *Agent) runTimers(ctx context.Context, closed <-chan struct{}) error {
	hbSubj, _ := subject.Heartbeat(a.opts.PcID)
	hpSubj, _ := subject.HostPerf(a.opts.PcID)
	cfg := a.config()
	hbEvery, hpEvery := timerInterval(cfg.HeartbeatInterval), timerInterval(cfg.HostPerfInterval)
	hbT := time.NewTimer(0)
	hpT := time.NewTimer(0) // the first sample has no rates (RatesUnknown)
	keyT := time.NewTimer(a.keyRefreshInterval())
	defer hbT.Stop()
	defer hpT.Stop()
	defer keyT.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-closed:
			return fmt.Errorf("connection closed under the agent: %w", nats.ErrConnectionClosed)
		case <-keyT.C:
			a.refreshKeys()
			keyT.Reset(a.keyRefreshInterval())
		case <-a.cfgChanged:
			cfg := a.config()
			if d := timerInterval(cfg.HeartbeatInterval); d != hbEvery {
				// As upstream: a new cadence starts with a heartbeat now.
				a.log.Info("heartbeat interval changed", "old", hbEvery, "new", d)
				hbEvery = d
				resetTimer(hbT, 0)
			}
			if d := timerInterval(cfg.HostPerfInterval); d != hpEvery {
				hpEvery = d
				resetTimer(hpT, 0)
			}
		case now := <-hbT.C:
			a.publishCore(hbSubj, a.heartbeat(now))
			hbT.Reset(hbEvery)
		case now := <-hpT.C:
			if p, err := a.host.Sample(now); err != nil {
				a.log.Debug("host perf sample failed", "err", err)
			} else {
				p.PcID, p.At = a.opts.PcID, now.UTC()
				a.publishCore(hpSubj, p)
			}
			hpT.Reset(hpEvery)
		}
	}
}

// Bounds on the requests an agent answers, so that a flood of them (which
// anyone who may publish on the agent's subjects can send, signed or not)
// costs a bounded amount of CPU, disk reads and bandwidth: a burst, then one
// every interval. Requests past them get no answer and are counted in
// Stats.RequestsDropped.
const (
	pingBurst = 20
	pingEvery = 100 * time.Millisecond
	logsBurst = 10
	logsEvery = time.Second
)

// requestQueue runs the handlers of the agents.<pc_id>.ping and
// logs.fetch.<pc_id> requests, which reach it through the command intake's
// lane (inbound.go), in order on a goroutine started when a request arrives
// and ended when none is left. At most requestQueueLen requests and
// requestQueueBytes bytes wait (the pending limits their subscriptions
// had); more are dropped and counted in Stats.RequestsDropped.
type requestQueue struct {
	mu      sync.Mutex
	q       []request
	bytes   int
	running bool
	stopped bool
	wg      sync.WaitGroup
	dropped *atomic.Int64
}

type request struct {
	m *nats.Msg
	h nats.MsgHandler
}

const (
	requestQueueLen   = 256
	requestQueueBytes = 16 << 20
)

// route returns the router of a request subject answered by h.
func (q *requestQueue) route(h nats.MsgHandler) router { return requestRoute{q, h} }

type requestRoute struct {
	q *requestQueue
	h nats.MsgHandler
}

func (r requestRoute) admit(m *nats.Msg) { r.q.offer(request{m, r.h}) }

func (q *requestQueue) offer(r request) {
	n := len(r.m.Data)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stopped {
		return
	}
	if len(q.q) >= requestQueueLen || q.bytes+n > requestQueueBytes {
		q.dropped.Add(1)
		return
	}
	q.q = append(q.q, r)
	q.bytes += n
	if !q.running {
		q.running = true
		q.wg.Add(1)
		go q.loop()
	}
}

func (q *requestQueue) loop() {
	defer q.wg.Done()
	for {
		q.mu.Lock()
		if len(q.q) == 0 || q.stopped {
			q.running = false
			q.q = nil
			q.mu.Unlock()
			return
		}
		r := q.q[0]
		q.q[0] = request{}
		q.q = q.q[1:]
		q.bytes -= len(r.m.Data)
		q.mu.Unlock()
		r.h(r.m)
	}
}

// stop drops the requests waiting and waits for one being answered.
func (q *requestQueue) stop() {
	q.mu.Lock()
	q.stopped = true
	q.mu.Unlock()
	q.wg.Wait()
}

// onPing answers agents.<pc_id>.ping with a fresh heartbeat. A ping is
// answered unsigned, also while the agent enforces signatures, as upstream
// (whose backend pings unsigned): it runs nothing and reveals only what the
// periodic heartbeat publishes. Pings beyond the rate limit are dropped.
func (a *Agent) onPing(m *nats.Msg) {
	if !a.pingLimit.allow(time.Now()) {
		a.counters.requestsDropped.Add(1)
		return
	}
	b, err := wire.Marshal(a.pingReply(time.Now()))
	if err == nil {
		err = m.Respond(b)
	}
	if err != nil {
		a.log.Warn("cannot answer ping", "err", err)
	}
}

// maxLogReply is the largest logs.fetch reply.
const maxLogReply = 800 << 10

// maxLogsRequestAge is how old the signature of a logs.fetch request may be
// while the agent enforces signatures. A request is answered live, so a
// short window is enough; it bounds the replay of a captured request.
const maxLogsRequestAge = 5 * time.Minute

// logsRefusal returns why a logs.fetch request must not be answered, or ""
// when it may be. An agent that does not enforce command signatures answers
// every request, as upstream does (upstream's backend sends them unsigned).
// One that enforces answers only a request signed by a key of its command
// keyring in the subject-bound form for this very subject
// (logs.fetch.<pc_id>: a request signed for another agent, or a command's
// signature, does not count) and made at most maxLogsRequestAge ago: the
// log may hold what commands printed, and enforcing means that publishing
// on the agent's subjects is not enough to be trusted.
func (a *Agent) logsRefusal(m *nats.Msg, now time.Time) string {
	if !a.verifier.enforcing() {
		return ""
	}
	d := a.verifier.check(m.Subject, m.Header, m.Data, now)
	switch {
	case d.Outcome != signing.OutcomeVerified:
		return fmt.Sprintf("signature %s (%s)", d.Outcome, d.Reason)
	case !d.Bound:
		return "the signature is not bound to this subject (" + signing.AlgEd25519Subject + " required)"
	case now.Sub(d.At) > maxLogsRequestAge:
		return fmt.Sprintf("signature made %s ago, more than %s", now.Sub(d.At).Round(time.Second), maxLogsRequestAge)
	}
	return ""
}

// logsRefusals counts refused logs.fetch requests (of every Agent of the
// process), so that a flood of them logs one line per hundred.
var logsRefusals atomic.Int64

// onLogsFetch answers logs.fetch.<pc_id> with the tail of the agent log.
// While the agent enforces signatures, a request that is not signed (see
// logsRefusal) gets a one-line refusal instead. Requests beyond the rate
// limit get no answer.
func (a *Agent) onLogsFetch(m *nats.Msg) {
	if !a.logsLimit.allow(time.Now()) {
		a.counters.requestsDropped.Add(1)
		return
	}
	if why := a.logsRefusal(m, time.Now()); why != "" {
		if n := logsRefusals.Add(1); n == 1 || n%100 == 0 {
			a.log.Warn("refusing logs.fetch: this agent enforces signatures", "reason", why, "refused_total", n)
		}
		_ = m.Respond([]byte("kanade-agent: logs.fetch refused: " + why))
		return
	}
	// An empty body or no tail_lines means wire.DefaultTailLines, as
	// upstream; a malformed request gets a one-line error.
	req, err := wire.DecodeLogsFetchRequest(m.Data)
	if err != nil {
		_ = m.Respond([]byte("kanade-agent: bad logs.fetch request: " + oneLine(err.Error())))
		return
	}
	if a.opts.LogFile == "" {
		_ = m.Respond([]byte("kanade-agent: this agent writes no log file"))
		return
	}
	tail, err := tailLog(a.opts.LogFile, req.TailLines, maxLogReply)
	if err != nil {
		_ = m.Respond([]byte("kanade-agent: cannot read log: " + err.Error()))
		return
	}
	if err := m.Respond(tail); err != nil {
		a.log.Warn("cannot answer logs.fetch", "err", err)
	}
}

// oneLine returns s with its line breaks replaced by spaces.
func oneLine(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

// tailLog returns at most the last n lines (all when n <= 0) of the log at
// path, and at most max bytes. Right after a rotation the current file is
// short, so the tail continues into the previous file, path.1.
func tailLog(path string, n, max int) ([]byte, error) {
	cur, err := tailFile(path, n, max)
	if err != nil {
		return nil, err
	}
	have := bytes.Count(cur, []byte{'\n'})
	if (n > 0 && have >= n) || len(cur) >= max {
		return cur, nil
	}
	want := 0
	if n > 0 {
		want = n - have
	}
	prev, err := tailFile(path+".1", want, max-len(cur))
	if err != nil {
		return cur, nil // no previous file: the current one is all there is
	}
	return append(prev, cur...), nil
}

// tailFile returns at most the last n lines of path, and at most max bytes.
func tailFile(path string, n, max int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	start := size - int64(max)
	if start < 0 {
		start = 0
	}
	buf := make([]byte, size-start)
	if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
		return nil, err
	}
	if start > 0 { // drop the partial first line
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf = buf[i+1:]
		}
	}
	if n <= 0 {
		return buf, nil
	}
	end := len(buf)
	if end > 0 && buf[end-1] == '\n' {
		end--
	}
	count := 0
	for i := end - 1; i >= 0; i-- {
		if buf[i] == '\n' {
			count++
			if count == n {
				return buf[i+1:], nil
			}
		}
	}
	return buf, nil
}
