package agent

import (
	"context"
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
	// requested is Options.Enforcing: the operator asked for enforcement.
	requested bool
	// broken is set when enforcement was asked for but the keyring could
	// not be loaded: every command is refused rather than silently run
	// unverified.
	broken error
	// emptyWarned is set while the refusal of every command because the
	// keyring is empty has been logged, so the log says it once per
	// change, not once per command.
	emptyWarned atomic.Bool
	log         *slog.Logger
}

func newVerifier(o Options, log *slog.Logger) *verifier {
	lo := signing.LoadOptions{File: o.KeyringFile}
	if runtime.GOOS == "windows" {
		lo.Registry = signing.RegistryPath
	}
	k, err := signing.Load(lo)
	if err != nil {
		if o.Enforcing {
			log.Error("COMMAND KEYRING UNREADABLE WHILE ENFORCING: every command is refused (exit 123) until it is fixed", "err", err)
			return &verifier{v: signing.NewVerifier(nil, true), requested: true, broken: err, log: log}
		}
		log.Error("command keyring unreadable; not enforcing", "err", err)
		k = nil
	}
	for _, kid := range k.Conflicts() {
		log.Warn("command key defined in both file and registry; the file's wins", "kid", kid)
	}
	v := &verifier{v: signing.NewVerifier(k, o.Enforcing), requested: o.Enforcing, log: log}
	if o.Enforcing && k.Len() == 0 {
		v.emptyWarned.Store(true)
		log.Error("ENFORCING SIGNATURES WITH AN EMPTY COMMAND KEYRING: every command is refused (exit 123) until keys are provisioned",
			"keyring_file", o.KeyringFile)
	}
	return v
}

func (v *verifier) fingerprints() []string { return v.v.Keyring().Fingerprints() }

// enforcing reports whether commands that do not verify are refused: the
// operator asked for it. With a keyring that is empty or unreadable every
// command is refused, so the agent enforces then too.
func (v *verifier) enforcing() bool { return v.requested || v.broken != nil || v.v.Enforcing() }

// check verifies a message that arrived on subj and decides whether it may
// go on. While enforcing was asked for and the keyring is unreadable or
// empty, nothing may: an enforcing agent never falls back to running
// unverified commands (docs/protocol.md, Signing).
func (v *verifier) check(subj string, hdr nats.Header, body []byte, now time.Time) signing.Decision {
	d := v.v.Check(hdr, body, now)
	switch {
	case v.broken != nil:
		d.Allowed, d.Enforcing = false, true
		d.Reason = "the agent's command keyring could not be loaded"
	case v.requested && v.v.Keyring().Len() == 0:
		d.Allowed, d.Enforcing = false, true
		d.Reason = "the agent enforces signatures but its command keyring is empty"
		if !v.emptyWarned.Swap(true) {
			v.log.Error("ENFORCING SIGNATURES WITH AN EMPTY COMMAND KEYRING: every command is refused (exit 123) until keys are provisioned")
		}
	default:
		v.emptyWarned.Store(false)
	}
	return d
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
	d := a.verifier.check(m.Subject, m.Header, m.Data, now)
	if d.Allowed {
		if a.verifier.tracker.Last() != d.Outcome {
			a.side.offer(sideJob{m: m, d: d, at: now})
		}
		return true, d
	}
	a.counters.received.Add(1)
	a.counters.refused.Add(1)
	a.side.offer(sideJob{m: m, ack: ack, d: d, at: now, refuse: true})
	return false, nil
}

// sideJob is work the screen hands off: reporting a signature outcome that
// changed, and for a refused message, storing its refusal.
type sideJob struct {
	m      *nats.Msg
	ack    func() // a replayed message's ack, or nil
	d      signing.Decision
	at     time.Time
	refuse bool
}

// sideWorker runs the screen's side jobs on one goroutine, off the path
// of incoming messages. Jobs that do not fit its bounded channel are
// dropped and counted; the refusal rate limit bounds what reaches the disk.
type sideWorker struct {
	ch      chan sideJob
	dropped atomic.Int64
}

const sideQueueLen = 256

func newSideWorker() *sideWorker { return &sideWorker{ch: make(chan sideJob, sideQueueLen)} }

// offer queues j without blocking; a job that does not fit is dropped,
// counted, and its message acked (a refusal is a final decision).
func (w *sideWorker) offer(j sideJob) {
	select {
	case w.ch <- j:
	default:
		if j.refuse {
			w.dropped.Add(1)
		}
		if j.ack != nil {
			j.ack()
		}
	}
}

// runSide handles side jobs until ctx ends.
func (a *Agent) runSide(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-a.side.ch:
			a.sideJob(j)
		}
	}
}

func (a *Agent) sideJob(j sideJob) {
	if j.ack != nil {
		defer j.ack()
	}
	cmd, decErr := decodeCommand(j.m.Data)
	rid := ""
	if decErr == nil && subject.ValidToken("request_id", cmd.RequestID) == nil {
		rid = cmd.RequestID
	}
	if ev, changed := a.verifier.tracker.Transition(j.d, rid, j.at.UTC()); changed {
		if !a.refusalRate.allow(time.Now()) {
			a.side.dropped.Add(1)
		} else if err := a.emitObs(context.Background(), ev); err != nil {
			a.log.Error("cannot record signature outcome", "err", err)
		}
	}
	if !j.refuse {
		return
	}
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
	if a.store(r) {
		a.log.Warn("refused command: signature", "request_id", cmd.RequestID, "subject", j.m.Subject,
			"outcome", j.d.Outcome, "kid", j.d.Kid, "reason", j.d.Reason)
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
	if d.Allowed && d.Outcome == signing.OutcomeVerified {
		return true
	}
	if n := a.counters.killsRefused.Add(1); n == 1 || n%1000 == 0 {
		a.log.Warn("ignoring kill: not signed by a keyring key while enforcing", "subject", m.Subject,
			"outcome", d.Outcome, "reason", d.Reason, "refused_total", n)
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
