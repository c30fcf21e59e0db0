package inventory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
)

// Reporter defaults.
const (
	// DefaultInterval is the default time between full runs (the protocol's
	// inventory_interval default).
	DefaultInterval = 6 * time.Hour
	// DefaultCheckInterval is the default time between change checks.
	DefaultCheckInterval = 15 * time.Minute
	// DefaultCollectTimeout is the default time allowed to one category.
	DefaultCollectTimeout = 2 * time.Minute
	// maxSplay and maxStartSplay cap the default splays.
	maxSplay      = 30 * time.Minute
	maxStartSplay = time.Minute
)

// Options configures a Reporter. PcID and Enqueue are required; every other
// field has a default.
type Options struct {
	// PcID is the agent's pc id, put in every report. Required, a valid
	// subject token.
	PcID string
	// Collector collects the data. Default NewCollector(CollectorOptions{}).
	Collector Collector
	// Enqueue hands a report to the agent's durable outbox; the agent
	// publishes it on subject.Inventory(PcID, Category) and calls Acked
	// once JetStream has acknowledged it. A nil error must mean the report
	// is durably queued. Enqueue is called from Run's goroutine only, one
	// report at a time. Required.
	Enqueue func(ctx context.Context, r wire.InventoryReport) error
	// Interval is the time between full runs, which send every category
	// whatever its hash. Default DefaultInterval; SetInterval changes it
	// live.
	Interval time.Duration
	// CheckInterval is the time between change checks, which collect every
	// category and send only those whose hash differs from the last one
	// sent or acknowledged. Default DefaultCheckInterval; never more than
	// Interval.
	CheckInterval time.Duration
	// Splay is the largest random delay added to each interval between
	// full runs, drawn afresh for each one, so a fleet started together
	// drifts apart. Default (0) min(Interval/10, 30m), following
	// SetInterval; negative for none.
	Splay time.Duration
	// StartSplay is the largest random delay before the first run, so a
	// fleet that boots together does not report at once. Default
	// min(Interval/10, 1m); negative for none.
	StartSplay time.Duration
	// CollectTimeout bounds the collection of one category. A collector
	// that has not returned by then is abandoned (its category is skipped
	// this time and logged) and not called again for that category until
	// it returns. Default DefaultCollectTimeout.
	CollectTimeout time.Duration
	// StateFile is where acknowledged hashes are kept across restarts
	// (JSON, written atomically). Empty: in memory only.
	StateFile string
	// SkipAckedAtStart, when set, makes the first run after a start send
	// only the categories whose hash differs from the acknowledged one in
	// StateFile or whose acknowledgement is older than Interval. Default
	// false: as the protocol says, every category is published on start.
	SkipAckedAtStart bool
	// Logger receives collection, enqueue and state-file errors. Default
	// slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.Collector == nil {
		o.Collector = NewCollector(CollectorOptions{})
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = DefaultCheckInterval
	}
	if o.StartSplay == 0 {
		o.StartSplay = min(o.Interval/10, maxStartSplay)
	}
	if o.CollectTimeout <= 0 {
		o.CollectTimeout = DefaultCollectTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Validate reports whether the options can make a Reporter.
func (o *Options) Validate() error {
	if _, err := subject.Inventory(o.PcID, wire.CategoryHW); err != nil {
		return fmt.Errorf("inventory: invalid PcID: %w", err)
	}
	if o.Enqueue == nil {
		return errors.New("inventory: Options.Enqueue is nil")
	}
	return nil
}

// Reporter publishes the inventory: every category at start, then every
// Interval (plus a random splay) a full run of every category, and between
// full runs a change check every CheckInterval that sends only the
// categories whose hash changed. A category is compared with the last report
// of it that was enqueued or acknowledged, so an unchanged category is not
// sent between full runs and a change is sent once, even while the outbox
// is offline. A failed Enqueue is retried at the next check.
//
// Collection happens on Run's goroutine, each category under CollectTimeout;
// SetInterval and Acked never wait for it. All methods are safe for
// concurrent use.
type Reporter struct {
	opts Options
	g    guard
	wake chan struct{}
	now  func() time.Time

	running atomic.Bool

	mu        sync.Mutex
	interval  time.Duration
	splay     time.Duration // drawn for the current interval
	lastFull  time.Time
	lastCheck time.Time
	known     map[string]string // category → hash last enqueued or acknowledged
	acked     map[string]ackedCategory
	loaded    bool

	fileMu sync.Mutex // serializes state-file writes
}

// New returns a Reporter for opts, after applying defaults and Validate.
func New(opts Options) (*Reporter, error) {
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Reporter{
		opts:     opts,
		wake:     make(chan struct{}, 1),
		now:      time.Now,
		interval: opts.Interval,
		known:    map[string]string{},
		acked:    map[string]ackedCategory{},
	}, nil
}

// SetInterval changes the time between full runs, live; d <= 0 restores
// DefaultInterval. The next full run is rescheduled from the last one (at
// once if that is already past). It does not block.
func (r *Reporter) SetInterval(d time.Duration) {
	if d <= 0 {
		d = DefaultInterval
	}
	r.mu.Lock()
	if d == r.interval {
		r.mu.Unlock()
		return
	}
	r.interval = d
	r.splay = r.drawSplay()
	r.mu.Unlock()
	r.poke()
}

// Interval returns the current time between full runs.
func (r *Reporter) Interval() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.interval
}

// Acked records that JetStream acknowledged rep; the agent calls it from
// the outbox's on-ack hook. The hash is kept in memory and written to
// StateFile (a small fsynced write; it never waits for a collection). An
// acknowledgement older than the one recorded for the category, or for
// another pc id, is ignored.
func (r *Reporter) Acked(rep wire.InventoryReport) {
	if rep.PcID != r.opts.PcID || rep.Hash == "" {
		return
	}
	r.mu.Lock()
	if cur, ok := r.acked[rep.Category]; ok && rep.At.Before(cur.At) {
		r.mu.Unlock()
		return
	}
	r.acked[rep.Category] = ackedCategory{Hash: rep.Hash, At: rep.At, AckedAt: r.now().UTC()}
	if r.known[rep.Category] == "" {
		r.known[rep.Category] = rep.Hash
	}
	r.mu.Unlock()
	r.persist()
}

// AckedHashes returns the last acknowledged hash of each category.
func (r *Reporter) AckedHashes() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]string, len(r.acked))
	for k, v := range r.acked {
		out[k] = v.Hash
	}
	return out
}

func (r *Reporter) persist() {
	if r.opts.StateFile == "" {
		return
	}
	r.fileMu.Lock()
	defer r.fileMu.Unlock()
	r.mu.Lock()
	snap := make(map[string]ackedCategory, len(r.acked))
	for k, v := range r.acked {
		snap[k] = v
	}
	r.mu.Unlock()
	if err := saveState(r.opts.StateFile, snap); err != nil {
		r.opts.Logger.Warn("inventory: cannot save state", "err", err)
	}
}

func (r *Reporter) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// drawSplay draws the random splay of the next interval; r.mu held.
func (r *Reporter) drawSplay() time.Duration {
	limit := r.opts.Splay
	if limit == 0 {
		limit = min(r.interval/10, maxSplay)
	}
	if limit <= 0 {
		return 0
	}
	return rand.N(limit + 1)
}

func (r *Reporter) checkEvery() time.Duration {
	return min(r.opts.CheckInterval, r.interval)
}

// Run publishes the inventory until ctx ends, then returns nil. It returns
// ErrRunning if the Reporter is already running.
func (r *Reporter) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer r.running.Store(false)

	r.mu.Lock()
	if !r.loaded {
		r.loaded = true
		acked, err := loadState(r.opts.StateFile)
		if err != nil {
			r.opts.Logger.Warn("inventory: state file", "err", err)
		}
		for k, v := range acked {
			if _, ok := r.acked[k]; !ok {
				r.acked[k] = v
			}
			if r.known[k] == "" {
				r.known[k] = v.Hash
			}
		}
	}
	r.mu.Unlock()

	if r.opts.StartSplay > 0 {
		t := time.NewTimer(rand.N(r.opts.StartSplay + 1))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
	r.runOnce(ctx, true, true)
	for {
		r.mu.Lock()
		nextFull := r.lastFull.Add(r.interval + r.splay)
		nextCheck := r.lastCheck.Add(r.checkEvery())
		r.mu.Unlock()
		next := nextCheck
		if nextFull.Before(next) {
			next = nextFull
		}
		t := time.NewTimer(max(0, next.Sub(r.now())))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-r.wake:
			t.Stop()
			continue // recompute: the interval changed
		case <-t.C:
		}
		now := r.now()
		switch {
		case !now.Before(nextFull):
			r.runOnce(ctx, true, false)
		case !now.Before(nextCheck):
			r.runOnce(ctx, false, false)
		}
	}
}

// runOnce collects every category and enqueues those to send: all of them
// on a full run, the changed ones on a check.
func (r *Reporter) runOnce(ctx context.Context, full, start bool) {
	began := r.now()
	for _, cat := range wire.Categories {
		if ctx.Err() != nil {
			return
		}
		rep, err := guardDo(ctx, &r.g, cat, r.opts.CollectTimeout, func(ctx context.Context) (wire.InventoryReport, error) {
			return CollectCategory(ctx, r.opts.Collector, r.opts.PcID, cat)
		})
		if err != nil {
			if ctx.Err() == nil {
				r.opts.Logger.Warn("inventory: collection failed", "category", cat, "err", err)
			}
			continue
		}
		r.mu.Lock()
		known := r.known[cat]
		acked, hasAck := r.acked[cat]
		interval := r.interval
		r.mu.Unlock()
		send := full || rep.Hash != known
		if start && r.opts.SkipAckedAtStart && hasAck && acked.Hash == rep.Hash && r.now().Sub(acked.AckedAt) < interval {
			send = false
		}
		if !send {
			continue
		}
		if err := r.opts.Enqueue(ctx, rep); err != nil {
			if ctx.Err() == nil {
				r.opts.Logger.Warn("inventory: enqueue failed", "category", cat, "err", err)
			}
			continue
		}
		r.mu.Lock()
		r.known[cat] = rep.Hash
		r.mu.Unlock()
	}
	r.mu.Lock()
	if full {
		r.lastFull = began
		r.splay = r.drawSplay()
	}
	r.lastCheck = began
	r.mu.Unlock()
}
