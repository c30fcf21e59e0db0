package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kanade/kanade-agent/signing"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
)

// verifier checks command signatures and reports outcome transitions.
type verifier struct {
	v       *signing.Verifier
	tracker signing.Tracker
}

// newVerifier loads the command keyring: Options.KeyringFile, and on
// Windows the registry value CommandKeys (which wins when present).
// Enforcement is Options.Enforcing, or on Windows the registry value
// RequireSignedCommands. A keyring that cannot be loaded leaves the
// verifier without keys: enforcing, it then refuses every command (and
// says so loudly) until a reload succeeds; it never falls back to running
// unverified commands.
func newVerifier(o Options, log *slog.Logger) *verifier {
	src := signing.Sources{KeysFile: o.KeyringFile}
	if runtime.GOOS == "windows" {
		src.Registry = signing.RegistryKey
	}
	enforce := o.Enforcing
	if on, err := src.EnforceRequested(); on {
		enforce = true
		if err != nil {
			log.Error("command signature enforcement switch unreadable or untrusted: enforcing", "err", err)
		}
	}
	return &verifier{v: signing.New(signing.Options{Source: src, Enforce: enforce, Log: log})}
}

func (v *verifier) fingerprints() []string { return v.v.Fingerprints() }

// enforcing reports whether commands that do not verify are refused. With
// no keys (none provisioned, or the keyring unreadable) every command is.
func (v *verifier) enforcing() bool { return v.v.Enforcing() }

// check verifies a message against the subject it arrived on
// (docs/protocol.md, Signing): a subject-bound signature made for another
// subject is misaddressed and refused while enforcing.
func (v *verifier) check(subj string, hdr nats.Header, body []byte, now time.Time) signing.Decision {
	return v.v.Check(subj, hdr, body, now)
}

// refreshKeys re-reads the keyring sources, so a key removed from them
// stops working (as upstream, which refreshes once per heartbeat). runTimers
// calls it every keyRefreshInterval.
func (a *Agent) refreshKeys() {
	if err := a.verifier.v.Refresh(); err != nil {
		a.log.Warn("command keyring refresh failed; keeping the keys already loaded", "err", err)
	}
}

// keyRefreshInterval is the period of refreshKeys: heartbeat_interval, at
// least minKeyRefresh.
func (a *Agent) keyRefreshInterval() time.Duration {
	return max(a.config().HeartbeatInterval, minKeyRefresh)
}

// screenCommand is the inbound screen (inbound.go): it checks a command
// message's signature against the subject it arrived on as soon as it is
// read, before it is queued, without touching the disk. A message that may
// go on is queued with its decision as the tag. One that is refused is
// counted and handed to the side worker, which stores its refusal (exit
// 123) under the refusal rate limit and then acks a replayed copy; it never
// takes room in the queue, so a flood of unsigned or forged commands cannot
// push signed ones out. It never blocks.
func (a *Agent) screenCommand(m *nats.Msg, ack func()) (bool, any) {
	if ack != nil && !a.addressed(m.Subject) {
		// As upstream: a replayed command for a group this agent just left
		// (the consumer's filters follow the groups a moment later) is
		// dropped before its signature is even looked at, so no result or
		// signature event is reported for a command that was not ours.
		a.counters.received.Add(1)
		a.log.Warn("replayed command not addressed to this agent; dropped", "subject", m.Subject)
		ack()
		return false, nil
	}
	now := time.Now()
	if signing.IsEnvelope(m.Data) {
		return a.screenEnvelope(m, ack, now)
	}
	d := a.verifier.check(m.Subject, m.Header, m.Data, now)
	if d.Allowed {
		// The outcome event (when it changed) and the audit of a verified
		// command are reported by onCommand, which decodes it anyway.
		return true, d
	}
	a.counters.received.Add(1)
	a.counters.refused.Add(1)
	a.side.offer(sideJob{m: m, ack: ack, d: d, at: now})
	return false, nil
}

// envelopeTag is the screen's tag for a verified upstream v2 command
// envelope: onCommand runs env.Command, never the message body.
type envelopeTag struct {
	d   signing.Decision
	env *signing.Envelope
}

// screenEnvelope screens a payload that is an upstream command envelope (a
// JSON object with a "kind" key), as upstream does, whether or not the
// agent enforces signatures: one whose kind is not kanade.command.v2 is
// dropped as malformed without a result or a signature event; one that
// does not verify (signature, recipient, expiry) is refused, its outcome
// reported, and no result is stored, since this agent may never have been
// its recipient; a verified one is queued with an envelopeTag.
func (a *Agent) screenEnvelope(m *nats.Msg, ack func(), now time.Time) (bool, any) {
	d, env, err := a.verifier.v.CheckEnvelope(a.opts.PcID, m.Subject, m.Header, m.Data, now)
	if err != nil {
		a.counters.received.Add(1)
		if n := a.counters.malformed.Add(1); n == 1 || n%1000 == 0 {
			a.log.Warn("dropping command envelope of an unrecognised kind", "subject", m.Subject, "err", err, "malformed_total", n)
		}
		if ack != nil {
			ack()
		}
		return false, nil
	}
	if d.Allowed && env != nil {
		return true, envelopeTag{d: d, env: env}
	}
	a.counters.received.Add(1)
	a.counters.refused.Add(1)
	a.side.offer(sideJob{m: m, ack: ack, d: d, at: now, envelope: true})
	return false, nil
}

// envelopeRequestID is the request_id of the command inside an envelope
// payload, for the signature report of a refused envelope; "" when there is
// none that is usable.
func envelopeRequestID(payload []byte) string {
	var env struct {
		Command struct {
			RequestID string `json:"request_id"`
		} `json:"command"`
	}
	if json.Unmarshal(payload, &env) != nil || subject.ValidToken("request_id", env.Command.RequestID) != nil {
		return ""
	}
	return env.Command.RequestID
}

// sideJob is a refused message the screen hands off: its signature outcome
// is reported and, for a bare command, its refusal stored.
type sideJob struct {
	m        *nats.Msg
	ack      func() // a replayed message's ack, or nil
	d        signing.Decision
	at       time.Time
	envelope bool // a refused command envelope: reported, no result stored
}

// sideWorker runs the screen's side jobs in order, off the path of
// incoming messages, on a goroutine started when a job arrives and ended
// when none is left, so an idle agent holds no goroutine and no buffer for
// it. At most sideQueueLen jobs wait; jobs that do not fit are dropped and
// counted; the refusal rate limit bounds what reaches the disk.
type sideWorker struct {
	mu      sync.Mutex
	queue   []sideJob
	running bool          // a worker goroutine runs
	do      func(sideJob) // nil until start, and after stop
	wg      sync.WaitGroup
	dropped atomic.Int64
	// envelopesRefused counts refused command envelopes, to thin their log.
	envelopesRefused atomic.Int64
}

const sideQueueLen = 256

func newSideWorker() *sideWorker { return &sideWorker{} }

// start makes the worker run do for each job offered from now on.
func (w *sideWorker) start(do func(sideJob)) {
	w.mu.Lock()
	w.do = do
	w.mu.Unlock()
}

// stop ends the worker: jobs still waiting are dropped (a replayed
// message's ack is not called, so JetStream delivers it again), a job in
// progress is waited for.
func (w *sideWorker) stop() {
	w.mu.Lock()
	w.do = nil
	clear(w.queue)
	w.queue = nil
	w.mu.Unlock()
	w.wg.Wait()
}

// offer queues j without blocking; a job that does not fit is dropped,
// counted, and its message acked (a refusal is a final decision). A job
// offered while the worker is stopped is dropped unacked.
func (w *sideWorker) offer(j sideJob) {
	w.mu.Lock()
	if w.do == nil {
		w.mu.Unlock()
		return
	}
	if len(w.queue) >= sideQueueLen {
		w.mu.Unlock()
		w.dropped.Add(1)
		if j.ack != nil {
			j.ack()
		}
		return
	}
	w.queue = append(w.queue, j)
	if !w.running {
		w.running = true
		w.wg.Add(1)
		go w.loop()
	}
	w.mu.Unlock()
}

// loop runs the queued jobs in order until none is left or the worker stops.
func (w *sideWorker) loop() {
	defer w.wg.Done()
	for {
		w.mu.Lock()
		if len(w.queue) == 0 || w.do == nil {
			w.running = false
			w.queue = nil // let the backing array go after a burst
			w.mu.Unlock()
			return
		}
		j, do := w.queue[0], w.do
		w.queue[0] = sideJob{}
		w.queue = w.queue[1:]
		w.mu.Unlock()
		do(j)
	}
}

func (a *Agent) sideJob(j sideJob) {
	if j.ack != nil {
		defer j.ack()
	}
	if j.envelope {
		// As upstream: a refused envelope is reported and logged, and no
		// result is published under this agent's pc_id.
		rid := envelopeRequestID(j.m.Data)
		a.reportSignature(j.d, rid, j.at)
		if n := a.side.envelopesRefused.Add(1); n == 1 || n%1000 == 0 {
			a.log.Warn("REFUSED command envelope", "request_id", rid, "subject", j.m.Subject,
				"outcome", j.d.Outcome.Kind(), "kid", j.d.Kid, "reason", j.d.Reason, "refused_total", n)
		}
		return
	}
	cmd, decErr := decodeCommand(j.m.Data)
	rid := ""
	if decErr == nil && subject.ValidToken("request_id", cmd.RequestID) == nil {
		rid = cmd.RequestID
	}
	a.reportSignature(j.d, rid, j.at)
	if rid == "" {
		a.counters.malformed.Add(1)
		a.log.Debug("refused command has no usable request_id; no result stored", "subject", j.m.Subject, "outcome", j.d.Outcome)
		return
	}
	if cmd.ExecID != "" && subject.ValidToken("exec_id", cmd.ExecID) != nil {
		cmd.ExecID = ""
	}
	r := a.newResult(cmd, signing.RefusalResultID(cmd.RequestID, a.opts.PcID), j.at)
	// As upstream: a signature refusal is exit 123 with skipped false.
	r.ExitCode, r.FinishedAt = wire.ExitRefused, j.at
	r.Stderr = fmt.Sprintf("refused: command signature %s: %s", j.d.Outcome, j.d.Reason)
	if a.verifier.v.Keyring().Len() == 0 {
		r.Stderr += "; this agent enforces signatures but holds no command keys (the keyring is empty or unreadable)"
	}
	if adv := j.d.Outcome.Advice(); adv != "" {
		r.Stderr += ". " + adv
	}
	if a.store(r) {
		a.log.Warn("REFUSED command: signature", "request_id", cmd.RequestID, "subject", j.m.Subject,
			"outcome", j.d.Outcome.Kind(), "kid", j.d.Kid, "reason", j.d.Reason)
	}
}

// errRateLimited is returned by an emit that the refusal rate limit stopped.
var errRateLimited = errors.New("agent: over the refusal rate limit")

// reportSignature emits the command_signature_<outcome> event when the
// outcome changed, and the command_signature_audit event for every use of
// an audit_every_use key. Events caused by messages that are not verified
// (anyone can send those) count against the refusal rate limit.
func (a *Agent) reportSignature(d signing.Decision, requestID string, at time.Time) {
	at = at.UTC()
	limited := d.Outcome != signing.OutcomeVerified
	emit := func(ev wire.ObsEvent, recordID string) error {
		if limited && !a.refusalRate.allow(time.Now()) {
			a.side.dropped.Add(1)
			return errRateLimited
		}
		ev.EventRecordID = recordID
		return a.emitObs(context.Background(), ev)
	}
	err := a.verifier.tracker.Report(d, requestID, at, func(ev wire.ObsEvent) error {
		return emit(ev, signing.RecordID(ev.Kind, ev.At))
	})
	if err != nil && !errors.Is(err, errRateLimited) {
		a.log.Error("cannot record signature outcome", "err", err)
	}
	if d.Audit {
		a.log.Warn("command signed by an audited key", "kid", d.Kid, "label", d.Label, "request_id", requestID,
			"outcome", d.Outcome.Kind(), "subject", d.Subject)
		if err := emit(signing.AuditEvent(d, requestID, at), signing.AuditRecordID(requestID, at)); err != nil && !errors.Is(err, errRateLimited) {
			a.log.Error("cannot record audited key use", "err", err)
		}
	}
}

// rateLimit is a token bucket: burst tokens, one more every every.
type rateLimit struct {
	mu     sync.Mutex
	burst  float64
	every  time.Duration
	tokens float64
	last   time.Time
}

func newRateLimit(burst int, every time.Duration) *rateLimit {
	return &rateLimit{burst: float64(burst), every: every, tokens: float64(burst)}
}

// allow takes a token if there is one.
func (r *rateLimit) allow(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.last.IsZero() && now.After(r.last) {
		r.tokens = min(r.burst, r.tokens+float64(now.Sub(r.last))/float64(r.every))
	}
	if r.last.IsZero() || now.After(r.last) {
		r.last = now
	}
	if r.tokens < 1 {
		return false
	}
	r.tokens--
	return true
}

// Bounds on what refusals write to disk: a burst of refusalBurst, then one
// every refusalEvery. A refusal past them is not stored (its command still
// does not run) and is counted in Stats.RefusalsDropped.
const (
	refusalBurst = 100
	refusalEvery = 500 * time.Millisecond
)

// killAllowed decides whether a message on kill.<exec_id> may kill: always
// while the agent does not enforce signatures (as upstream, whose backend
// sends kills unsigned); while it enforces, only a kill signed by a
// keyring key for this very subject (docs/protocol.md, Signing), so a
// local user or a stolen token cannot stop verified work.
func (a *Agent) killAllowed(m *nats.Msg) bool {
	if !a.verifier.enforcing() {
		return true
	}
	d := a.verifier.check(m.Subject, m.Header, m.Data, time.Now())
	// Bound to this kill subject only: an upstream-form signature covers
	// the (empty) body alone and would kill any execution.
	if d.Allowed && d.Outcome == signing.OutcomeVerified && d.Bound {
		return true
	}
	if d.Outcome == signing.OutcomeVerified {
		d.Reason = "a kill must be signed in the subject-bound form"
	}
	if n := a.counters.killsRefused.Add(1); n == 1 || n%1000 == 0 {
		a.log.Warn("ignoring kill: not signed by a keyring key for its subject while enforcing", "subject", m.Subject,
			"outcome", d.Outcome.Kind(), "reason", d.Reason, "refused_total", n)
	}
	return false
}

// addressed reports whether subj is one of the agent's command subjects now.
func (a *Agent) addressed(subj string) bool {
	for _, f := range a.commandFilters() {
		if f == subj {
			return true
		}
	}
	return false
}
