package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/kanade/kanade-agent/internal/ledger"
	"github.com/kanade/kanade-agent/internal/runner"
	"github.com/kanade/kanade-agent/signing"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
)

// Causes of a cancelled execution, told apart with context.Cause.
var (
	errRemoteKill = errors.New("agent: killed by remote signal")
	errShutdown   = errors.New("agent: shutting down")
	errDeadline   = errors.New("agent: deadline passed")
)

// launchMeta is stored with a launching ledger entry, so that a restart can
// report exit 121 for the command with the right ids.
type launchMeta struct {
	RequestID  string    `json:"request_id"`
	ManifestID string    `json:"manifest_id,omitempty"`
	ExecID     string    `json:"exec_id,omitempty"`
	ResultID   string    `json:"result_id"`
	StartedAt  time.Time `json:"started_at"`
	// ParentResultID is set for a finalize hook (finalize.go).
	ParentResultID string `json:"parent_result_id,omitempty"`
}

// onCommand is the handler of every command message, live or replayed,
// that the screen (screenCommand) let through: its signature verified, or
// the agent does not enforce. It decodes the command and claims the
// request id, then hands the command to its own goroutine; it never blocks
// on the script. It returns once the claim is durable, so a replayed
// message can be acked after it.
//
// Nothing from the network can make it panic or stop the agent: JSON that
// does not decode is logged and counted; a command with an unusable
// request_id is logged; any other malformed command is answered with a
// skipped result (exit 122) that names the problem. Refusals do not use up
// the dedup entry, so a forged or broken copy cannot block the real one;
// their result_id is derived from the request, so repeats are idempotent.
//
// A verified upstream v2 envelope comes with an envelopeTag: its command
// runs with the envelope's start deadline as deadline_at. A message that
// is an envelope without that tag is dropped, never decoded as a bare
// command.
//
// ack, when not nil, acknowledges the EXEC replay message that carried the
// command. It is called at once when the message needs no further work, and
// otherwise only once the command is durably launching or its result is
// stored: a crash before that leaves the message unacked, so the replay
// delivers it again and the command is not lost.
func (a *Agent) onCommand(m *nats.Msg, ack func(), tag any) {
	a.counters.received.Add(1)
	done := true
	if ack != nil {
		defer func() {
			if done {
				ack()
			}
		}()
	}
	subj, data := m.Subject, m.Data
	var cmd *wire.Command
	var err error
	et, isEnv := tag.(envelopeTag)
	switch {
	case isEnv:
		// A verified upstream v2 envelope (screenEnvelope): run the wrapped
		// command, which must not start after the envelope's start
		// deadline (the earlier of expires_at and the command's
		// deadline_at); the deadline gate (exit 125) applies it.
		// The wrapped command is decoded as a bare one is (wire.Unmarshal,
		// upstream's serde rules), from the verified bytes.
		if cmd, err = decodeEnvelopeCommand(data); err == nil {
			deadline := et.env.StartDeadline
			cmd.DeadlineAt = &deadline
		}
	case signing.IsEnvelope(data):
		// Only the screen may pass an envelope on; never decode one as a
		// bare command.
		err = errors.New("agent: command envelope not screened")
	default:
		cmd, err = decodeCommand(data)
	}
	if err != nil {
		if n := a.counters.malformed.Add(1); n == 1 || n%1000 == 0 {
			a.log.Warn("dropping command that does not decode", "subject", subj, "bytes", len(data), "err", err, "malformed_total", n)
		}
		return
	}
	if err := subject.ValidToken("request_id", cmd.RequestID); err != nil {
		a.counters.malformed.Add(1)
		a.log.Warn("dropping command without a usable request_id", "subject", subj, "err", err)
		return
	}
	if d, ok := tag.(signing.Decision); ok {
		a.reportSignature(d, cmd.RequestID, time.Now())
	} else if isEnv {
		a.reportSignature(et.d, cmd.RequestID, time.Now())
	}
	if cmd.Script != "" {
		// As upstream, an inline script wins over a script_object.
		cmd.ScriptObject, cmd.ScriptObjectSHA256 = "", ""
	}
	err = cmd.Validate()
	if err == nil && cmd.ExecID != "" {
		err = subject.ValidToken("exec_id", cmd.ExecID)
	}
	if err != nil {
		a.counters.malformed.Add(1)
		a.log.Warn("refusing malformed command", "subject", subj, "request_id", cmd.RequestID, "err", err)
		cmd.ExecID = ""
		now := time.Now()
		r := a.newResult(cmd, refusalID(cmd.RequestID, a.opts.PcID, "malformed"), now)
		r.ExitCode, r.Skipped, r.FinishedAt = wire.ExitUnsupported, true, now
		r.Stderr = "kanade-agent: refused malformed command: " + err.Error()
		a.store(r)
		return
	}
	done = a.claimAndStart(cmd, ack)
}

// decodeCommand decodes a command message's JSON as upstream's serde does
// (wire.Unmarshal: exact-case keys, so {"script":"a","SCRIPT":"b"} runs a;
// a repeated field makes the message undecodable, dropped without a result
// as upstream); it does not validate and never panics.
func decodeCommand(data []byte) (cmd *wire.Command, err error) {
	defer func() {
		if p := recover(); p != nil { // a decoder bug, not input: report it as bad input
			cmd, err = nil, fmt.Errorf("agent: decoding command: %v", p)
		}
	}()
	var c wire.Command
	if err := wire.Unmarshal(data, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// decodeEnvelopeCommand decodes the "command" of an envelope payload as
// decodeCommand does.
func decodeEnvelopeCommand(data []byte) (*wire.Command, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, err
	}
	raw, ok := obj["command"]
	if !ok {
		return nil, errors.New("agent: envelope has no command")
	}
	return decodeCommand(raw)
}

// minKeyRefresh bounds how often the keyring sources are re-read.
const minKeyRefresh = 5 * time.Second

// startIntake starts the command intake, which runs until stopIntake: the
// inbound queue, whose screen checks signatures as messages arrive, with
// onCommand as its handler, and the screen's side worker. Both run their
// goroutines only while they have work. (The keyring is refreshed by
// runTimers.)
func (a *Agent) startIntake() {
	a.in.screen = a.screenCommand
	a.side.start(a.sideJob)
	a.in.start(func(m *nats.Msg, ack func(), tag any) { a.onCommand(m, ack, tag) })
}

// stopIntake stops the intake, waiting for a command being handled.
func (a *Agent) stopIntake() {
	a.in.stop()
	a.side.stop()
	a.requests.stop()
}

// Bounds on numbers from the network, so no arithmetic overflows and no
// command retries forever.
const (
	maxWaitSecs = 30 * 24 * 3600 // jitter and retry backoff: 30 days
	maxRetries  = 100
)

// clampSecs turns seconds from a command into a duration of at most
// maxWaitSecs.
func clampSecs(n int64) time.Duration {
	return time.Duration(min(max(n, 0), maxWaitSecs)) * time.Second
}

// refusalID is the deterministic result_id of a refusal.
func refusalID(requestID, pcID, why string) string {
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte(requestID+"|"+pcID+"|"+why)).String()
}

// refuseUnclaimed records a result for a command that was not claimed, with
// a result_id derived from the request and the reason, so repeats are
// idempotent for the backend.
func (a *Agent) refuseUnclaimed(cmd *wire.Command, why, note string) {
	now := time.Now()
	r := a.newResult(cmd, refusalID(cmd.RequestID, a.opts.PcID, why), now)
	r.ExitCode, r.Skipped, r.FinishedAt, r.Stderr = wire.ExitKilled, true, now, note
	a.store(r)
	a.scheduleDone(cmd.RequestID, r.ExitCode)
}

// store enqueues a refusal: a result that is not tied to a ledger entry,
// whose result_id is derived from the request and the reason. The live and
// the replayed copy of a command are refused alike, and an unacked replay
// comes back every ack wait, so a result_id among the last recentRefusals
// stored is not stored again. Past the refusal rate limit (refusalBurst,
// then one per refusalEvery) a refusal is not stored but counted, so a
// flood of bad commands cannot fill the disk. It reports whether r was
// stored now.
func (a *Agent) store(r wire.ExecResult) bool {
	if !a.refusals.add(r.ResultID) {
		a.log.Debug("refusal already stored", "request_id", r.RequestID, "result_id", r.ResultID)
		return false
	}
	if !a.refusalRate.allow(time.Now()) {
		a.refusals.remove(r.ResultID)
		if n := a.counters.refusalsDropped.Add(1); n == 1 || n%1000 == 0 {
			a.log.Warn("refusal not stored: too many refusals", "request_id", r.RequestID, "exit_code", r.ExitCode, "dropped_total", n)
		}
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := a.results.Enqueue(ctx, r); err != nil {
		a.refusals.remove(r.ResultID)
		a.log.Error("cannot store result", "request_id", r.RequestID, "exit_code", r.ExitCode, "err", err)
		return false
	}
	a.counters.results.Add(1)
	return true
}

// recentRefusals bounds the refusal result_ids an agent remembers.
const recentRefusals = 4096

// recentSet is a bounded set of strings that forgets the oldest first.
type recentSet struct {
	mu   sync.Mutex
	m    map[string]bool
	ring []string
	next int
}

// add adds s and reports whether it was new.
func (r *recentSet) add(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m[s] {
		return false
	}
	if r.m == nil {
		r.m = map[string]bool{}
		r.ring = make([]string, recentRefusals)
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.m, old)
	}
	r.ring[r.next] = s
	r.next = (r.next + 1) % len(r.ring)
	r.m[s] = true
	return true
}

// remove forgets s. Its old slot still names it, so a later add of s may be
// forgotten early when that slot is reused: harmless, a refusal stored
// twice is idempotent for the backend.
func (r *recentSet) remove(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, s)
}

// claimAndStart records cmd in the dedup ledger and starts it when it is
// new. It reports whether the caller may ack the carrying replay message
// now; if not, ack is fired when the command launches or finishes.
//
// A command is refused, without using up its dedup entry, when the ledger
// fails or when Options.MaxQueued commands are already waiting or running:
// a flood of commands cannot exhaust the agent's memory, and the refused
// replay message is left unacked, so JetStream delivers it again later.
func (a *Agent) claimAndStart(cmd *wire.Command, ack func()) (ackNow bool) {
	a.stopMu.RLock()
	defer a.stopMu.RUnlock()
	if a.stopping {
		// Unclaimed and unacked: the EXEC replay delivers it after the restart.
		a.log.Info("not accepting a command while stopping", "request_id", cmd.RequestID)
		return false
	}
	if n := a.inflight.Load(); n >= int64(a.opts.MaxQueued) {
		a.counters.refused.Add(1)
		a.log.Warn("refusing command: too many commands waiting or running", "request_id", cmd.RequestID, "inflight", n)
		a.refuseUnclaimed(cmd, "queue-full", fmt.Sprintf("kanade-agent: refused: %d commands are already waiting or running (max_queued)", n))
		return false
	}
	// The claim and the limiter reservation are one step, so the queue
	// order is the claim order. Commands arrive in order on the one inbound
	// goroutine (inbound.go); the lock keeps the step whole for any caller.
	a.claimMu.Lock()
	defer a.claimMu.Unlock()
	ok, st, err := a.ledger.Claim(cmd.RequestID)
	if err != nil {
		a.log.Error("dedup ledger failed; command not run", "request_id", cmd.RequestID, "err", err)
		a.refuseUnclaimed(cmd, "ledger", "kanade-agent: refused: cannot record the command in the dedup ledger: "+err.Error())
		return false
	}
	if !ok {
		a.counters.duplicate.Add(1)
		if st == ledger.StatePending && ack != nil {
			a.acks.add(cmd.RequestID, ack)
			return false
		}
		return true
	}
	if ack != nil {
		a.acks.add(cmd.RequestID, ack)
	}
	// Reserve the limiter place in arrival order (FIFO), before the
	// command's own goroutine starts; a command with jitter queues after it.
	var slot *waiter
	if !cmd.BypassLocalLimit && cmd.JitterSecs <= 0 {
		slot = a.limit.reserve()
	}
	// kill.<exec_id> is honoured from the moment the command is accepted:
	// while it waits for gates, jitter and the queue, and while it runs.
	ctx, cancel := context.WithCancelCause(a.execCtx)
	var killSub *nats.Subscription
	if cmd.ExecID != "" {
		ks, _ := subject.Kill(cmd.ExecID)
		kill := func(m *nats.Msg) {
			if a.killAllowed(m) {
				cancel(errRemoteKill)
			}
		}
		if killSub, err = a.nc.Subscribe(ks, kill); err != nil {
			a.log.Warn("cannot subscribe to kill subject", "subject", ks, "err", err)
		}
	}
	a.startExec(&execution{cmd: cmd, slot: slot, ctx: ctx, cancel: cancel, killSub: killSub})
	return false
}

// killArmTimeout bounds how long a command waits for the server to confirm
// its kill subscription: only a broken connection makes it wait that long.
const killArmTimeout = 2 * time.Second

// execution is one accepted command on its way through the pipeline.
type execution struct {
	cmd     *wire.Command
	slot    *waiter                 // limiter place reserved at arrival, or nil
	ctx     context.Context         // ends on kill.<exec_id> or shutdown
	cancel  context.CancelCauseFunc // cancels ctx with a cause
	killSub *nats.Subscription      // kill.<exec_id>, or nil
}

// ackSet holds the acks of replay messages whose command is not yet
// durably launching or finished.
type ackSet struct {
	mu sync.Mutex
	m  map[string][]func()
}

func (s *ackSet) add(id string, f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]func(){}
	}
	s.m[id] = append(s.m[id], f)
}

// fire calls and forgets the acks held for id.
func (s *ackSet) fire(id string) {
	s.mu.Lock()
	fs := s.m[id]
	delete(s.m, id)
	s.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

// startExec runs cmd on its own goroutine, tracked for shutdown.
func (a *Agent) startExec(x *execution) {
	cmd := x.cmd
	a.execWG.Add(1)
	a.inflight.Add(1)
	go func() {
		defer a.execWG.Done()
		defer func() {
			if a.inflight.Add(-1) == 0 {
				signal(a.idle)
			}
		}()
		defer x.cancel(nil)
		if x.killSub != nil {
			defer x.killSub.Unsubscribe()
		}
		defer func() {
			if p := recover(); p != nil {
				// A bug, not input: report it rather than leave the
				// command without a result.
				a.log.Error("command handler panicked", "request_id", cmd.RequestID, "panic", p)
				now := time.Now()
				r := a.newResult(cmd, uuid.NewString(), now)
				r.ExitCode, r.FinishedAt = wire.ExitKilled, now
				r.Stderr = fmt.Sprintf("kanade-agent: internal error: %v", p)
				a.finish(context.Background(), cmd, r)
			}
		}()
		a.execute(x)
	}()
}

// execute takes one claimed command through gates, jitter, the limiter and
// the run, and records its result.
func (a *Agent) execute(x *execution) {
	cmd, slot, ctx := x.cmd, x.slot, x.ctx
	received := time.Now()
	resultID := uuid.NewString()
	held := false // whether this command holds a limiter slot
	defer func() {
		switch {
		case held:
			a.limit.release()
		case slot != nil:
			a.limit.cancel(slot)
		}
	}()

	if x.killSub != nil && a.nc.IsConnected() {
		// The SUB for kill.<exec_id> was only buffered at the claim: make
		// sure the server has it before anything (events.started, the
		// script) can prompt an operator to send a kill, as upstream.
		// Offline (a local schedule's fire) there is nobody to send one:
		// the subscription reaches the server with the reconnect.
		if err := a.nc.FlushTimeout(killArmTimeout); err != nil {
			a.log.Warn("kill subscription not confirmed by the server; a kill sent now may be missed",
				"exec_id", cmd.ExecID, "err", err)
		}
	}
	skip := func(code int32, note string) {
		r := a.newResult(cmd, resultID, received)
		r.ExitCode, r.Skipped, r.Stderr, r.FinishedAt = code, true, note, time.Now()
		a.finish(ctx, cmd, r)
	}
	if code, note := a.gates(ctx, cmd, received); code != 0 {
		skip(code, note)
		return
	}
	if err := runner.Supported(cmd.Shell, cmd.EffectiveRunAs()); err != nil {
		skip(wire.ExitUnsupported, "kanade-agent: "+err.Error())
		return
	}

	// deadline_at applies until the script starts: waitCtx bounds the
	// jitter and the queue, ctx (kill and shutdown) the whole run.
	waitCtx := ctx
	if cmd.DeadlineAt != nil {
		var dcancel context.CancelFunc
		waitCtx, dcancel = context.WithDeadlineCause(ctx, *cmd.DeadlineAt, errDeadline)
		defer dcancel()
	}
	stopped := func() (int32, string, bool) {
		switch cause := context.Cause(waitCtx); {
		case cause == nil:
			return 0, "", false
		case errors.Is(cause, errRemoteKill):
			return wire.ExitKilled, runner.KillNote(cmd.ExecID), true
		case errors.Is(cause, errDeadline):
			return wire.ExitDeadline, "deadline passed before start (deadline_at " + cmd.DeadlineAt.Format(time.RFC3339) + ")", true
		default:
			return wire.ExitKilled, "killed: agent shutting down", true
		}
	}

	if cmd.JitterSecs > 0 {
		d := time.Duration(rand.Int64N(int64(clampSecs(cmd.JitterSecs)) + 1))
		sleepCtx(waitCtx, d)
	}
	if code, note, ok := stopped(); ok {
		skip(code, note)
		return
	}
	if !cmd.BypassLocalLimit {
		if slot == nil {
			slot = a.limit.reserve()
		}
		err := a.limit.wait(waitCtx, slot)
		slot = nil
		if err != nil {
			code, note, _ := stopped()
			skip(code, note)
			return
		}
		held = true
	}
	if code, note, ok := stopped(); ok {
		skip(code, note)
		return
	}

	script := cmd.Script
	if script == "" && cmd.ScriptObject != "" { // script wins when both are set
		s, err := a.fetchScript(ctx, cmd)
		if err != nil {
			r := a.newResult(cmd, resultID, received)
			r.ExitCode, r.Stderr, r.FinishedAt = wire.ExitKilled, "kanade-agent: "+err.Error(), time.Now()
			a.finish(ctx, cmd, r)
			return
		}
		script = s
	}

	started := time.Now()
	meta, _ := json.Marshal(launchMeta{RequestID: cmd.RequestID, ManifestID: cmd.ID, ExecID: cmd.ExecID, ResultID: resultID, StartedAt: started})
	if err := a.ledger.Launching(cmd.RequestID, meta); err != nil {
		// Without a durable launching mark a crash could run it twice: refuse.
		a.log.Error("dedup ledger failed; command not run", "request_id", cmd.RequestID, "err", err)
		r := a.newResult(cmd, resultID, started)
		r.ExitCode, r.Stderr, r.FinishedAt = wire.ExitKilled, "kanade-agent: cannot record launch: "+err.Error(), time.Now()
		a.finish(ctx, cmd, r)
		return
	}
	a.acks.fire(cmd.RequestID)
	if cmd.ExecID != "" {
		// As upstream, manifest_id (the command's id, adhoc-run included)
		// and version are always set.
		ev := wire.EventStarted{ExecID: cmd.ExecID, PcID: a.opts.PcID, ResultID: resultID,
			RequestID: cmd.RequestID, StartedAt: started, ManifestID: cmd.ID, Version: cmd.Version}
		if _, err := a.events.Enqueue(context.WithoutCancel(ctx), ev); err != nil {
			a.log.Error("cannot record started event", "exec_id", cmd.ExecID, "err", err)
		}
	}

	spec := runner.Spec{
		Shell: cmd.Shell, Script: script, Cwd: cmd.Cwd, Timeout: cmd.EffectiveTimeout(),
		MaxOutput: a.opts.MaxOutput, StageDir: a.stageDir, KillGrace: a.opts.KillGrace, RunAs: cmd.EffectiveRunAs(),
		Env: a.emitEnv(cmd),
	}
	tail := a.tails.start(resultID) // job.tail.<pc_id> (jobtail.go)
	spec.Tap = tail.tap
	attempts := 1
	if cmd.Retry != nil {
		attempts += min(cmd.Retry.Max, maxRetries)
	}
	var res runner.Result
	var notes []string
	for i := 1; i <= attempts && ctx.Err() == nil; i++ {
		res = runner.Run(ctx, spec)
		if res.ExitCode == 0 && !res.TimedOut || res.Killed || ctx.Err() != nil || i == attempts {
			break
		}
		if errors.Is(res.Err, runner.ErrUnsupported) {
			break
		}
		notes = append(notes, fmt.Sprintf("kanade-agent: attempt %d of %d exited %d; retrying", i, attempts, res.ExitCode))
		if cmd.Retry.BackoffSecs > 0 && !sleepCtx(ctx, clampSecs(cmd.Retry.BackoffSecs)) {
			break
		}
	}

	a.tails.finish(tail)
	if held { // the slot bounds running scripts, not the storing of results
		a.limit.release()
		held = false
	}
	if ctx.Err() != nil && !res.Killed { // stopped between attempts
		res.Killed, res.ExitCode = true, wire.ExitKilled
	}
	r := a.newResult(cmd, resultID, started)
	r.ExitCode = res.ExitCode
	r.Stdout = lossy(res.Stdout)
	r.Stderr = lossy(res.Stderr)
	r.StdoutTruncated, r.StderrTruncated = res.StdoutTruncated, res.StderrTruncated
	switch {
	case res.TimedOut:
		r.ExitCode = wire.ExitKilled
		notes = append(notes, runner.TimeoutNote(spec.Timeout))
	case res.Killed:
		r.ExitCode = wire.ExitKilled
		if errors.Is(context.Cause(ctx), errRemoteKill) {
			notes = append(notes, runner.KillNote(cmd.ExecID))
		} else {
			notes = append(notes, "killed: agent shutting down")
		}
	case res.Err != nil:
		notes = append(notes, "kanade-agent: "+res.Err.Error())
	}
	if res.StdoutTruncated {
		notes = append(notes, fmt.Sprintf("kanade-agent: stdout truncated: kept %d of %d bytes", len(res.Stdout), res.StdoutBytes))
	}
	if res.StderrTruncated {
		notes = append(notes, fmt.Sprintf("kanade-agent: stderr truncated: kept %d of %d bytes", len(res.Stderr), res.StderrBytes))
	}
	a.completeRun(ctx, cmd, r, res.Stdout, notes)
}

// gates applies staleness, version pin, revocation and deadline in that
// order, as upstream; a non-zero code means the command is skipped.
//
// The staleness mode decides only how fresh the gate state must be, never
// whether the version pin and the revocation apply: unchecked and cached
// use the cached state as it is (asking the buckets once when it was never
// read), strict refuses with 127 when the state is older than
// max_cache_age and the buckets cannot be read now. max_cache_age "0s"
// means the state must be live now (the gate watches connected and caught
// up) or read from the buckets now; a max_cache_age that does not parse
// counts as "0s", failing closed as upstream.
func (a *Agent) gates(ctx context.Context, cmd *wire.Command, now time.Time) (int32, string) {
	named := cmd.ID != "" && cmd.ID != wire.AdhocID
	current, hasCurrent, status, age, synced := a.kv.gate(cmd.ID, now)
	switch cmd.StalenessMode() {
	case wire.StalenessStrict:
		maxAge := strictMaxAge(cmd.Staleness)
		if !synced || age > maxAge {
			key := cmd.ID
			if !named {
				key = wire.AdhocID // any key proves the buckets are readable now
			}
			var err error
			current, hasCurrent, status, err = a.fetchGate(ctx, key)
			if err != nil {
				return wire.ExitStale, fmt.Sprintf("kanade-agent: skipped: staleness policy (mode=strict): gate state older than max_cache_age %s and the buckets are unreachable: %v", maxAge, err)
			}
		}
	default:
		if named && !synced {
			// Never read the buckets yet: ask them once; unreachable means
			// no cached state, which cached and unchecked accept.
			if c, h, s, err := a.fetchGate(ctx, cmd.ID); err == nil {
				current, hasCurrent, status = c, h, s
			}
		}
	}
	if named {
		// A local scheduler's fire skips the version pin (schedule.go).
		if hasCurrent && current != cmd.Version && !a.scheduled(cmd.RequestID) {
			return wire.ExitVersionPin, fmt.Sprintf("kanade-agent: skipped: version pin: script_current[%s] is %q, command has %q", cmd.ID, current, cmd.Version)
		}
		if status == wire.ScriptRevoked {
			return wire.ExitRevoked, fmt.Sprintf("kanade-agent: skipped: script %s is revoked", cmd.ID)
		}
	}
	// As upstream, deadline_at is the last instant a command may start:
	// only now > deadline_at skips.
	if cmd.DeadlineAt != nil && now.After(*cmd.DeadlineAt) {
		return wire.ExitDeadline, "kanade-agent: skipped: deadline_at " + cmd.DeadlineAt.Format(time.RFC3339) + " has passed"
	}
	return 0, ""
}

// strictMaxAge is the max_cache_age of a strict staleness policy; one
// that is missing or does not parse is zero (fail closed, as upstream).
func strictMaxAge(s *wire.Staleness) time.Duration {
	if s == nil {
		return 0
	}
	d, err := s.MaxAge()
	if err != nil || d < 0 {
		return 0
	}
	return d
}

// fetchScript returns a script_object's text: from the script cache when
// it holds the command's SHA-256 (no object store read, so it works with
// the broker down), else downloaded, checked against the SHA-256 and cached.
func (a *Agent) fetchScript(ctx context.Context, cmd *wire.Command) (string, error) {
	if s, ok := a.cachedScript(cmd.ScriptObjectSHA256); ok {
		return s, nil
	}
	return a.downloadScript(ctx, cmd.ScriptObject, cmd.ScriptObjectSHA256)
}

// downloadScript downloads a script_object, checks its SHA-256 and caches it.
func (a *Agent) downloadScript(ctx context.Context, name, sha string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	store, err := a.js.ObjectStore(ctx, subject.ObjectScripts)
	if err != nil {
		return "", fmt.Errorf("script_object %s: %w", name, err)
	}
	obj, err := store.Get(ctx, name)
	if err != nil {
		return "", fmt.Errorf("script_object %s: %w", name, err)
	}
	defer obj.Close()
	var buf bytes.Buffer
	h := sha256.New()
	const maxScript = 64 << 20
	n, err := buf.ReadFrom(ioLimit(obj, maxScript+1, h))
	if err != nil {
		return "", fmt.Errorf("script_object %s: %w", name, err)
	}
	if n > maxScript {
		return "", fmt.Errorf("script_object %s is over %d bytes", name, maxScript)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha {
		return "", fmt.Errorf("script_object %s: %w: sha256 %s does not match script_object_sha256 %s", name, errScriptMismatch, got, sha)
	}
	a.cacheScript(sha, buf.Bytes())
	return buf.String(), nil
}

// newResult starts an ExecResult for cmd. As upstream, manifest_id is the
// command's id on every result, refusals and skips included.
func (a *Agent) newResult(cmd *wire.Command, resultID string, started time.Time) wire.ExecResult {
	return wire.ExecResult{ResultID: resultID, RequestID: cmd.RequestID, ExecID: cmd.ExecID,
		PcID: a.opts.PcID, StartedAt: started, ManifestID: cmd.ID}
}

// finish stores r durably in the results outbox, then marks the request
// finished in the ledger. It runs even while the agent shuts down. When the
// result cannot be stored (a full disk), it keeps it in memory and tries
// again with backoff until it is stored or the agent stops; a command that
// launched and whose result was never stored stays launching in the ledger
// and is reported with exit 121 at the next start.
func (a *Agent) finish(ctx context.Context, cmd *wire.Command, r wire.ExecResult) {
	var b backoff
	for {
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		_, err := a.results.Enqueue(ectx, r)
		cancel()
		if err == nil {
			break
		}
		stopping := a.execCtx.Err() != nil
		a.log.Error("cannot store result", "request_id", r.RequestID, "exit_code", r.ExitCode, "err", err, "giving_up", stopping)
		if stopping || !sleepCtx(a.execCtx, min(b.next(), 30*time.Second)) {
			// A command that never launched may run again from the replay.
			a.ledger.Release(cmd.RequestID)
			a.scheduleDone(cmd.RequestID, wire.ExitKilled)
			return
		}
	}
	a.counters.results.Add(1)
	if afterResultStored != nil {
		afterResultStored()
	}
	if err := a.ledger.Finished(cmd.RequestID); err != nil {
		a.log.Error("cannot mark command finished", "request_id", cmd.RequestID, "err", err)
	}
	a.acks.fire(cmd.RequestID)
	a.scheduleDone(cmd.RequestID, r.ExitCode)
	a.log.Info("command finished", "request_id", r.RequestID, "exec_id", r.ExecID, "exit_code", r.ExitCode,
		"skipped", r.Skipped, "duration", r.FinishedAt.Sub(r.StartedAt).Round(time.Millisecond))
}

// afterResultStored, when set (by tests), runs between storing a result
// and recording its command finished: a crash there is the one recovery
// must not report as 121.
var afterResultStored func()

func lossy(b []byte) string { return strings.ToValidUTF8(string(b), "\uFFFD") }

func appendNotes(s string, notes []string) string {
	if len(notes) == 0 {
		return s
	}
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s + strings.Join(notes, "\n")
}
