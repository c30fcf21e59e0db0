package agent

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/kanade/kanade-agent/internal/hostperf"
	"github.com/kanade/kanade-agent/internal/ledger"
	"github.com/kanade/kanade-agent/internal/privdir"
	"github.com/kanade/kanade-agent/internal/update"
	"github.com/kanade/kanade-agent/outbox"
	"github.com/kanade/kanade-agent/scheduler"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// ErrClosed is returned by Run when the agent already ran; it wraps net.ErrClosed.
var ErrClosed = fmt.Errorf("agent: already run: %w", net.ErrClosed)

// ErrStoppedBeforeReady is returned by WaitReady when Run returned nil (its
// ctx ended) before the agent was ready.
var ErrStoppedBeforeReady = errors.New("agent: stopped before it was ready")

// Agent is a kanade agent: it receives commands over NATS, runs them and
// reports their results through durable outboxes, publishes heartbeats, host
// performance and inventory, and follows its configuration live. Create it
// with New and start it with Run; an Agent runs once.
type Agent struct {
	opts     Options
	log      *slog.Logger
	hostname string
	stageDir string
	ready    chan struct{}
	done     chan struct{} // closed when Run returned (not by a second Run)
	runErr   error         // Run's error, set before done is closed
	infraUp  atomic.Bool   // set once the streams and buckets were found
	started  atomic.Bool
	opened   atomic.Bool // set once the stores are open (Stats may read them)

	nc    *nats.Conn
	js    jetstream.JetStream
	connW *connWatch // the own connection's state, followed by its handlers (conn.go)

	kv         *kvState
	cfgMu      sync.Mutex
	cfg        wire.Config
	cfgChanged chan struct{} // signalled (non-blocking) when cfg changes
	ppChanged  chan struct{} // wakes a running runProcPerf at a config change
	procPerf   procPerfRunner
	grpChanged chan struct{} // signalled when the effective groups change
	kickCh     chan struct{} // signalled on (re)connect
	connected  broadcast     // fired on every (re)connect, for retries waiting on it
	replayUp   chan struct{} // closed once the EXEC consumer runs, or the first infra check failed
	replayOnce sync.Once

	limit    *limiter
	ledger   *ledgerBox
	results  *outbox.Outbox[wire.ExecResult]
	events   *outbox.Outbox[wire.EventStarted]
	obs      *outbox.Outbox[wire.ObsEvent]
	invBox   *outbox.Outbox[wire.InventoryReport]
	inv      inventoryReporter
	verifier *verifier
	upd      *update.Updater // nil unless Options.SelfUpdate
	self     *hostperf.Self
	host     *hostperf.Host

	execCtx    context.Context
	execCancel context.CancelCauseFunc
	execWG     sync.WaitGroup
	stopMu     sync.RWMutex // guards stopping and execWG.Add against the final Wait
	claimMu    sync.Mutex   // makes ledger claim + limiter reservation one step
	stopping   bool
	inflight   atomic.Int64  // commands claimed and not finished
	idle       chan struct{} // signalled when inflight drops to zero

	acks        ackSet
	emitMu      sync.Mutex  // serializes emit watermark updates (emit.go)
	checks      *checkCache // latest health-check results (check.go)
	refusals    recentSet   // result_ids of refusals stored lately
	refusalRate *rateLimit  // bounds the refusals stored (signature.go)
	in          *inbound    // the one ordered queue of command messages
	requests    *requestQueue
	side        *sideWorker
	subsMu      sync.Mutex
	groupSubs   map[string]*nats.Subscription

	counters struct {
		received, malformed, duplicate, refused, results atomic.Int64
		refusalsDropped, killsRefused, requestsDropped   atomic.Int64
	}
	// pingLimit and logsLimit bound the ping and logs.fetch requests answered.
	pingLimit, logsLimit *rateLimit
	// tails are the live job tails; jobTailLimit bounds the requests answered.
	tails        tailRegistry
	jobTailLimit *rateLimit

	// sched is the local scheduler; nil with Options.DisableScheduler (schedule.go).
	sched atomic.Pointer[scheduler.Scheduler]
}

// New validates opts and returns an Agent that has not started yet. Nothing
// is opened or connected before Run.
func New(opts Options) (*Agent, error) {
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	host := heartbeatHostname()
	a := &Agent{
		opts:       opts,
		log:        opts.Logger.With("pc_id", opts.PcID),
		hostname:   host,
		stageDir:   filepath.Join(opts.DataDir, "staging"),
		checks:     newCheckCache(opts.DataDir),
		ready:      make(chan struct{}),
		done:       make(chan struct{}),
		kv:         newKVState(),
		cfg:        *opts.Defaults,
		cfgChanged: make(chan struct{}, 1),
		ppChanged:  make(chan struct{}, 1),
		grpChanged: make(chan struct{}, 1),
		kickCh:     make(chan struct{}, 1),
		idle:       make(chan struct{}, 1),
		replayUp:   make(chan struct{}),
		limit:      newLimiter(opts.Defaults.MaxLocalConcurrent),
		groupSubs:  map[string]*nats.Subscription{},
	}
	a.in = newInbound(inboundMaxBytes, a.dropInbound)
	a.side = newSideWorker()
	a.procPerf.a = a
	a.requests = &requestQueue{dropped: &a.counters.requestsDropped}
	a.pingLimit, a.logsLimit = newRateLimit(pingBurst, pingEvery), newRateLimit(logsBurst, logsEvery)
	a.jobTailLimit = newRateLimit(jobTailBurst, jobTailEvery)
	a.refusalRate = newRateLimit(refusalBurst, refusalEvery)
	return a, nil
}

// PcID returns the agent's pc id.
func (a *Agent) PcID() string { return a.opts.PcID }

// Ready is closed once the agent has opened its stores, connected to NATS
// and subscribed to its command subjects: a command published after that is
// received. Tests and host programs wait on it instead of sleeping. It is
// never closed if Run fails or stops first: use WaitReady to wait for
// either.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// Config returns the effective configuration now in force.
func (a *Agent) Config() wire.Config { return a.config() }

func (a *Agent) config() wire.Config {
	a.cfgMu.Lock()
	defer a.cfgMu.Unlock()
	return a.cfg
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (a *Agent) kick() { signal(a.kickCh) }

// broadcast wakes every waiter at once: wait returns a channel that the
// next fire closes.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

func (b *broadcast) fire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}

// configChanged recomputes the effective configuration and applies it.
func (a *Agent) configChanged() {
	cfg, problems := a.kv.effectiveConfig(*a.opts.Defaults, a.opts.PcID)
	for _, p := range problems {
		a.log.Warn("ignoring config field", "err", p)
	}
	a.cfgMu.Lock()
	old := a.cfg
	a.cfg = cfg
	a.cfgMu.Unlock()
	if old != cfg {
		a.log.Info("effective config changed", "max_local_concurrent", cfg.MaxLocalConcurrent,
			"heartbeat_interval", cfg.HeartbeatInterval, "host_perf_interval", cfg.HostPerfInterval,
			"inventory_interval", cfg.InventoryInterval, "target_version", cfg.TargetVersion)
		a.limit.setLimit(cfg.MaxLocalConcurrent)
		signal(a.cfgChanged)
		a.procPerf.kick()
		if a.inv != nil {
			a.inv.SetInterval(cfg.InventoryInterval)
		}
		if a.upd != nil {
			a.upd.Offer(cfg)
		}
	}
}

// groupsChanged re-subscribes the group command subjects and recomputes the
// config, whose group scopes depend on them.
func (a *Agent) groupsChanged() {
	a.syncGroupSubs()
	signal(a.grpChanged)
	a.configChanged()
}

// Run runs the agent until ctx ends, then stops it: running scripts are
// killed and their results recorded, the outboxes get a last chance to
// drain (bounded by Options.ShutdownTimeout, and only once the protocol's
// streams were found) and are closed. Run returns nil after a clean stop,
// or ErrRestart (after the same clean stop) when a self-update installed a
// new binary. It starts even when no server is reachable and waits for one
// forever. Every startup step (opening the stores, dialling, reporting the
// commands found mid-launch, the startup event) honours ctx: a ctx that
// ends during startup makes Run return nil promptly, leaving what it did
// not do yet on disk for the next start. Run may be called once; WaitReady
// tells its early failure from readiness.
func (a *Agent) Run(ctx context.Context) (err error) {
	if !a.started.CompareAndSwap(false, true) {
		return ErrClosed
	}
	defer func() {
		a.runErr = err
		close(a.done)
	}()
	return a.run(ctx)
}

// WaitReady waits until the agent is ready (as Ready), Run returned first,
// or ctx ends. It returns nil once the agent is ready (also after Run
// returned, if it was ready before), Run's error when Run failed before
// being ready (a data directory locked by another agent, unreadable TLS
// files, a refused data directory, a closed Options.Conn...),
// ErrStoppedBeforeReady when Run returned nil before being ready (its ctx
// ended), or ctx.Err(). It may be called before Run starts, from any
// number of goroutines.
func (a *Agent) WaitReady(ctx context.Context) error {
	select {
	case <-a.ready:
		return nil
	default:
	}
	select {
	case <-a.ready:
		return nil
	case <-a.done:
		select {
		case <-a.ready:
			return nil
		default:
		}
		if a.runErr != nil {
			return a.runErr
		}
		return ErrStoppedBeforeReady
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startupEnded reports whether ctx ended during startup, logging it once.
func (a *Agent) startupEnded(ctx context.Context, step string) bool {
	if ctx.Err() == nil {
		return false
	}
	a.log.Info("stopped during startup", "step", step)
	return true
}

func (a *Agent) run(ctx context.Context) error {
	if a.startupEnded(ctx, "open") {
		return nil
	}
	if err := a.open(ctx); err != nil {
		if a.startupEnded(ctx, "open") {
			return nil
		}
		return err
	}
	a.opened.Store(true)
	defer a.closeStores()

	nc, owned, err := a.connect(ctx)
	if err != nil {
		if a.startupEnded(ctx, "connect") {
			return nil
		}
		return err
	}
	a.nc = nc
	if owned {
		defer nc.Close()
	}
	conn := a.watchConn(nc, owned)
	defer conn.stop()
	a.js, err = a.newJetStream(nc)
	if err != nil {
		return fmt.Errorf("agent: jetstream: %w", err)
	}

	a.execCtx, a.execCancel = context.WithCancelCause(context.WithoutCancel(ctx))
	// Until the main loop takes over, a ctx that ends also ends the result
	// retries of the recovery (a full disk would hold them forever).
	stopEarly := context.AfterFunc(ctx, func() { a.execCancel(errShutdown) })
	defer a.execCancel(errShutdown)
	a.emitStartup(ctx)
	if a.startupEnded(ctx, "startup event") {
		return nil
	}
	a.recover(ctx)
	if a.startupEnded(ctx, "recovery") {
		return nil
	}
	a.openUpdater()
	if a.upd != nil {
		a.recordUpdateEvents(ctx)
	}
	if !stopEarly() || a.startupEnded(ctx, "self-update events") {
		return nil
	}
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	var restartErr error

	a.startIntake()
	defer a.stopIntake()
	if err := a.subscribeCore(); err != nil {
		a.unsubscribeAll()
		return err
	}

	g, gctx := errgroup.WithContext(runCtx)
	drainCtx, stopDrain := context.WithCancel(context.WithoutCancel(ctx))
	var drainWaits []func()
	for _, serve := range a.drainers() {
		wait, err := serve(drainCtx)
		if err != nil {
			a.log.Error("outbox drain not started", "err", err)
			continue
		}
		drainWaits = append(drainWaits, wait)
	}
	var watchers sync.WaitGroup
	if run := a.startScheduler(); run != nil {
		g.Go(func() error { return run(gctx) })
		a.watchNetwork(gctx)
	}
	g.Go(func() error {
		if err := a.waitInfra(gctx); err != nil {
			return nil
		}
		a.watchState(gctx, &watchers)
		a.runConsumer(gctx)
		return nil
	})
	g.Go(func() error { return a.runTimers(gctx, conn.closed) })
	a.procPerf.start(gctx)
	if a.inv != nil {
		g.Go(func() error { return ignoreCanceled(a.inv.Run(gctx)) })
	}
	for _, src := range a.opts.ObsSources {
		g.Go(func() error {
			err := src.Run(gctx, a.emitObs)
			if err != nil && gctx.Err() == nil {
				a.log.Error("obs source stopped", "err", err)
			}
			return nil
		})
	}
	if a.upd != nil {
		g.Go(func() error {
			a.runUpdater(gctx, func(err error) { restartErr = err; stopRun() })
			return nil
		})
	}
	a.markReady(gctx)

	// A child that fails (the connection watch, when a caller closes its
	// connection) stops the agent rather than leave it half alive; its
	// error is Run's.
	select {
	case <-runCtx.Done():
	case <-gctx.Done():
	}
	a.log.Info("stopping: killing running scripts and flushing outboxes")
	a.stopMu.Lock()
	a.stopping = true // no command is accepted from here on
	a.stopMu.Unlock()
	a.execCancel(errShutdown)
	childErr := g.Wait()
	a.procPerf.wait()
	watchers.Wait()
	a.execWG.Wait()
	a.unsubscribeAll()
	// Give the drains a bounded last chance to deliver what the stop produced.
	a.finalFlush(a.opts.ShutdownTimeout)
	stopDrain()
	for _, wait := range drainWaits {
		wait()
	}
	if restartErr == nil && childErr != nil {
		return fmt.Errorf("agent: %w", childErr)
	}
	return restartErr
}

func ignoreCanceled(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// markReady closes Ready once the connection is up, the core
// subscriptions are registered with the server, and the EXEC replay
// consumer runs (or the server lacks the streams, which the agent waits for).
func (a *Agent) markReady(ctx context.Context) {
	go func() {
		select {
		case <-a.replayUp:
		case <-ctx.Done():
			return
		}
		for ctx.Err() == nil {
			if a.nc.IsConnected() && a.nc.FlushTimeout(2*time.Second) == nil {
				close(a.ready)
				return
			}
			select {
			case <-ctx.Done():
			case <-a.kickCh:
			case <-time.After(time.Second):
			}
		}
	}()
}

// emitObs stores an ObsEvent from a host source, stamped with this pc id.
func (a *Agent) emitObs(ctx context.Context, ev wire.ObsEvent) error {
	ev.PcID = a.opts.PcID
	if ev.At.IsZero() {
		ev.At = time.Now().UTC()
	}
	if err := ev.Validate(); err != nil {
		return err
	}
	_, err := a.obs.Enqueue(ctx, ev)
	return err
}

// emitStartup records agent_online through the obs outbox, as upstream's
// startup event does: source agent:startup, event_record_id
// "startup_<uuid>" (32 hex digits, fresh for every start, so no two starts
// are deduplicated into one), and the payload
// {"agent_version": ..., "boot_time": ...}, boot_time being the machine's
// boot time in seconds since the Unix epoch, or null when the system cannot
// tell. With it the backend tells a reboot (boot after the last heartbeat)
// from an agent stop (boot before it). Failing to record it never stops the
// agent from starting.
func (a *Agent) emitStartup(ctx context.Context) {
	ev := a.startupEvent(time.Now().UTC())
	if err := a.emitObs(ctx, ev); err != nil {
		a.log.Error("cannot record agent_online", "err", err)
	}
}

// startupPayload is the payload of the agent_online event.
type startupPayload struct {
	AgentVersion string `json:"agent_version"`
	BootTime     *int64 `json:"boot_time"`
}

// startupEvent builds the agent_online event of a start at now.
func (a *Agent) startupEvent(now time.Time) wire.ObsEvent {
	p := startupPayload{AgentVersion: a.opts.Version}
	if bt, err := hostperf.BootTime(); err != nil {
		a.log.Warn("cannot tell the boot time; agent_online carries boot_time null", "err", err)
	} else if secs := bt.Unix(); secs > 0 {
		p.BootTime = &secs
	}
	payload, _ := wire.Marshal(p) // cannot fail: a string and an integer
	id := uuid.New()
	return wire.ObsEvent{
		At: now, Kind: wire.KindAgentOnline, Source: wire.SourceStartup,
		EventRecordID: "startup_" + hex.EncodeToString(id[:]), Payload: payload,
	}
}

// subscribeCore subscribes the fixed subjects: commands.all,
// commands.pc.<pc_id>, the ping and the log fetch.
func (a *Agent) subscribeCore() error {
	pc, _ := subject.CommandsPC(a.opts.PcID)
	ping, _ := subject.Ping(a.opts.PcID)
	logs, _ := subject.LogsFetch(a.opts.PcID)
	tail, _ := subject.JobTail(a.opts.PcID)
	subs := []struct {
		subj string
		h    nats.MsgHandler // nil: a command subject, into the ordered queue
	}{
		{subject.CommandsAll, nil},
		{pc, nil},
		{ping, a.onPing},
		{logs, a.onLogsFetch},
		{tail, a.onJobTail},
	}
	for _, s := range subs {
		var sub *nats.Subscription
		var err error
		if s.h == nil {
			sub, err = a.in.subscribe(a.nc, s.subj)
		} else {
			sub, err = a.in.subscribeTo(a.nc, s.subj, a.requests.route(s.h))
		}
		if err != nil {
			return fmt.Errorf("agent: subscribe %s: %w", s.subj, err)
		}
		a.subsMu.Lock()
		a.groupSubs["\x00"+s.subj] = sub
		a.subsMu.Unlock()
	}
	return nil
}

// dropInbound logs command messages dropped because too many bytes of
// commands wait to be claimed: the first, then every thousandth.
func (a *Agent) dropInbound(m *nats.Msg, replayed bool, n int64) {
	if n == 1 || n%1000 == 0 {
		a.log.Warn("dropping command message: too many commands waiting to be claimed",
			"subject", m.Subject, "bytes", len(m.Data), "replayed", replayed, "dropped_total", n)
	}
}

// syncGroupSubs makes the commands.group.<g> subscriptions match the
// effective groups.
func (a *Agent) syncGroupSubs() {
	want := map[string]bool{}
	for _, g := range a.kv.effectiveGroups() {
		if s, err := subject.CommandsGroup(g); err == nil {
			want[s] = true
		}
	}
	a.subsMu.Lock()
	defer a.subsMu.Unlock()
	for subj, sub := range a.groupSubs {
		if subj[0] != 0 && !want[subj] {
			_ = sub.Unsubscribe()
			delete(a.groupSubs, subj)
			a.log.Info("left group", "subject", subj)
		}
	}
	for subj := range want {
		if _, ok := a.groupSubs[subj]; ok {
			continue
		}
		sub, err := a.in.subscribe(a.nc, subj)
		if err != nil {
			a.log.Error("cannot subscribe group subject", "subject", subj, "err", err)
			continue
		}
		a.groupSubs[subj] = sub
		a.log.Info("joined group", "subject", subj)
	}
}

func (a *Agent) unsubscribeAll() {
	a.subsMu.Lock()
	defer a.subsMu.Unlock()
	for k, sub := range a.groupSubs {
		_ = sub.Unsubscribe()
		delete(a.groupSubs, k)
	}
}

// open creates the data directories and opens the ledger and outboxes,
// returning ctx.Err() between steps once ctx ended (what it opened is
// closed again).
// The data directory and the staging directory are made private to the
// agent's account with privdir.Ensure (created so, or an existing one
// checked and its access reset when wider): one that another account owns
// or can write is refused with an error wrapping privdir.ErrUnsafe, since
// scripts run as root or SYSTEM from files staged there.
func (a *Agent) open(ctx context.Context) error {
	for _, d := range []string{a.opts.DataDir, a.stageDir} {
		out, err := privdir.Ensure(d)
		if err != nil {
			return fmt.Errorf("agent: %w", err)
		}
		if out == privdir.Reset {
			a.log.Warn("directory access was wider than the agent's account: reset", "dir", d)
		}
	}
	a.sweepJobTemps()
	var err error
	// The ledger's lock is the first the agent takes. A predecessor killed
	// a moment ago (a crash, a SIGKILL, TerminateProcess) may still hold
	// it through a child it was starting: between fork and exec the child
	// has a copy of every descriptor, the lock's included. Wait for that
	// briefly; a running agent on the same directory still fails within
	// lockWait.
	deadline := time.Now().Add(lockWait)
	for logged := false; ; {
		a.ledger, err = openLedgerBox(filepath.Join(a.opts.DataDir, "ledger"), ledger.Options{Logger: a.log})
		if err == nil || !errors.Is(err, ledger.ErrLocked) || !time.Now().Before(deadline) {
			break
		}
		if !logged {
			a.log.Warn("data directory locked; waiting for its previous holder to exit", "err", err, "for_at_most", lockWait)
			logged = true
		}
		if !sleepCtx(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if err := ctx.Err(); err != nil {
		a.ledger.Close()
		return err
	}
	if err := a.openOutboxes(ctx); err != nil {
		a.closeStores()
		return err
	}
	a.verifier = newVerifier(a.opts, a.log)
	a.self = &hostperf.Self{}
	a.host = &hostperf.Host{}
	return nil
}

// lockWait is how long the agent waits for its data directory's lock
// (see open).
const lockWait = 2 * time.Second

// Stats is a snapshot of an agent's counters since it started.
type Stats struct {
	// Received counts command messages, live and replayed (duplicates included).
	Received int64
	// Malformed counts commands that did not decode or broke the protocol.
	Malformed int64
	// Duplicates counts commands already in the dedup ledger.
	Duplicates int64
	// Refused counts commands refused without running (signature, full queue, ledger).
	Refused int64
	// Dropped counts command messages dropped unread because more than
	// 64 MiB of commands were waiting to be claimed.
	Dropped int64
	// RefusalsDropped counts refusal results not stored because refusals
	// came faster than the refusal rate limit (a burst of 100, then one
	// every 500 ms): their commands were refused all the same.
	RefusalsDropped int64
	// KillsRefused counts kill.<exec_id> messages ignored because the
	// agent enforces signatures and they were not signed for that subject.
	KillsRefused int64
	// RequestsDropped counts agents.<pc_id>.ping and logs.fetch.<pc_id>
	// requests left unanswered because they came faster than their rate
	// limit (pings: a burst of 20, then 10 a second; log fetches: a burst of
	// 10, then one a second) or while 256 were already waiting.
	RequestsDropped int64
	// Results counts results stored in the results outbox.
	Results int64
	// Running and Queued are the commands holding and waiting for a limiter slot.
	Running, Queued int
	// Outbox is the state of each outbox, as in the heartbeat.
	Outbox map[string]wire.OutboxStats
}

// requestSubsDropped is how many ping and logs.fetch requests nats.go
// dropped because more than 256 were waiting for their handler.
func (a *Agent) requestSubsDropped() int64 {
	ping, _ := subject.Ping(a.opts.PcID)
	logs, _ := subject.LogsFetch(a.opts.PcID)
	tail, _ := subject.JobTail(a.opts.PcID)
	var n int64
	a.subsMu.Lock()
	defer a.subsMu.Unlock()
	for _, subj := range []string{ping, logs, tail} {
		if sub := a.groupSubs["\x00"+subj]; sub != nil {
			if d, err := sub.Dropped(); err == nil {
				n += int64(d)
			}
		}
	}
	return n
}

// Stats returns the agent's counters. It is cheap and safe to call at any
// time, also before Run (then the outboxes are not listed).
func (a *Agent) Stats() Stats {
	running, queued := a.limit.stats()
	s := Stats{
		Received: a.counters.received.Load(), Malformed: a.counters.malformed.Load(),
		Duplicates: a.counters.duplicate.Load(), Refused: a.counters.refused.Load(),
		Results: a.counters.results.Load(), Dropped: a.in.dropped.Load(), Running: running, Queued: queued,
		RefusalsDropped: a.counters.refusalsDropped.Load() + a.side.dropped.Load(),
		KillsRefused:    a.counters.killsRefused.Load(),
		RequestsDropped: a.counters.requestsDropped.Load() + a.requestSubsDropped(),
	}
	if a.opened.Load() {
		s.Outbox = a.outboxStats()
	}
	return s
}
