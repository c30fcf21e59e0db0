package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/kanade/kanade-agent/signing"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
)

// heartbeat builds a fresh Heartbeat.
func (a *Agent) heartbeat(now time.Time) wire.Heartbeat {
	self, err := a.self.Sample(now)
	if err != nil {
		a.log.Debug("self sample failed", "err", err)
	}
	hb := wire.Heartbeat{
		PcID: a.opts.PcID, At: now.UTC(), AgentVersion: a.opts.Version, Hostname: a.hostname,
		OSFamily: wire.OSFamily(runtime.GOOS), AgentCPUPct: &self.CPUPct, AgentRSSBytes: self.RSSBytes,
		CommandKeys: a.verifier.fingerprints(), Enforcing: a.verifier.enforcing(),
		Outbox: a.outboxStats(),
	}
	if a.upd != nil {
		hb.QuarantinedVersions = a.upd.Quarantined()
	}
	if hb.CommandKeys == nil {
		hb.CommandKeys = []string{}
	}
	return hb
}

// publishCore publishes v on subj with core NATS, but only while connected:
// a heartbeat buffered during an outage and flushed minutes later would lie
// about liveness.
func (a *Agent) publishCore(subj string, v any) {
	if !a.nc.IsConnected() {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		a.log.Error("cannot encode", "subject", subj, "err", err)
		return
	}
	if err := a.nc.Publish(subj, b); err != nil {
		a.log.Debug("core publish failed", "subject", subj, "err", err)
	}
}

// runTimers publishes heartbeats and HostPerf samples on their configured
// intervals, which change live. It returns when ctx ends.
func (a *Agent) runTimers(ctx context.Context) {
	hbSubj, _ := subject.Heartbeat(a.opts.PcID)
	hpSubj, _ := subject.HostPerf(a.opts.PcID)
	cfg := a.config()
	hbT := time.NewTimer(0)
	hpT := time.NewTimer(cfg.HostPerfInterval)
	defer hbT.Stop()
	defer hpT.Stop()
	hbEvery, hpEvery := cfg.HeartbeatInterval, cfg.HostPerfInterval
	a.host.Sample(time.Now()) // prime the rates
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.cfgChanged:
			cfg := a.config()
			if cfg.HeartbeatInterval != hbEvery {
				hbEvery = cfg.HeartbeatInterval
				hbT.Reset(hbEvery)
			}
			if cfg.HostPerfInterval != hpEvery {
				hpEvery = cfg.HostPerfInterval
				hpT.Reset(hpEvery)
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

// onPing answers agents.<pc_id>.ping with a fresh heartbeat.
func (a *Agent) onPing(m *nats.Msg) {
	b, err := json.Marshal(a.heartbeat(time.Now()))
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
	d := a.verifier.v.Check(m.Subject, m.Header, m.Data, now)
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

// logsRefusals counts refused logs.fetch requests, for rate-limited logging.
var logsRefusals atomic.Int64

// onLogsFetch answers logs.fetch.<pc_id> with the tail of the agent log.
// While the agent enforces signatures, a request that is not signed (see
// logsRefusal) gets a one-line refusal instead.
func (a *Agent) onLogsFetch(m *nats.Msg) {
	if why := a.logsRefusal(m, time.Now()); why != "" {
		if n := logsRefusals.Add(1); n == 1 || n%100 == 0 {
			a.log.Warn("refusing logs.fetch: this agent enforces signatures", "reason", why, "refused_total", n)
		}
		_ = m.Respond([]byte("kanade-agent: logs.fetch refused: " + why))
		return
	}
	req := wire.LogsFetchRequest{TailLines: 200}
	if len(m.Data) > 0 {
		if err := json.Unmarshal(m.Data, &req); err != nil {
			_ = m.Respond([]byte("kanade-agent: bad logs.fetch request: " + err.Error()))
			return
		}
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
