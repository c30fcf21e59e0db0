package session

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

// Change is a session change notified by the service manager (on Windows,
// SERVICE_CONTROL_SESSIONCHANGE).
type Change struct {
	// Kind is KindLogon, KindLogoff, KindLock, KindUnlock, or "" for
	// another change (a console connect or disconnect, say) that only makes
	// the supervisor look at the console session again.
	Kind string
	// Session is the id of the session that changed.
	Session uint32
	// At is when it was notified; zero is when Notify is called.
	At time.Time
}

// changeQueue is how many notified changes wait for the Source's
// goroutine; more are dropped (and logged).
const changeQueue = 32

// Source is an agent.ObsSource of the user's presence: it keeps the idle
// helper running (in the console session when the agent is a Windows
// service), turns its readings into active/idle ObsEvents and relays
// session changes. Create it with New.
type Source struct {
	o       Options
	changes chan Change

	badLines atomic.Uint64
	starts   atomic.Uint64
	dropped  atomic.Uint64
	limited  atomic.Uint64

	// last is the latest helper reading, for Idle.
	last atomic.Pointer[reading]
}

// reading is one known idle time and when it was read.
type reading struct {
	idle time.Duration
	at   time.Time
}

// Idle returns how long the console user has given no input: the latest
// helper reading plus the time since it was read. known is false when
// there has been no reading for Options.StaleAfter (no helper, no user,
// or a machine that cannot tell), as the scheduler's idle requirement
// wants (agent.Options.Idle).
func (s *Source) Idle() (idle time.Duration, known bool) {
	r := s.last.Load()
	if r == nil {
		return 0, false
	}
	since := time.Since(r.at)
	if since > s.o.StaleAfter {
		return 0, false
	}
	return r.idle + max(since, 0), true
}

// Stats are counters of a Source.
type Stats struct {
	// BadLines counts helper output lines that were not {"idle_ms":N|null}
	// or longer than MaxLine; each is skipped.
	BadLines uint64
	// HelperStarts counts helper processes started.
	HelperStarts uint64
	// DroppedChanges counts session changes dropped because too many
	// waited for the Source.
	DroppedChanges uint64
	// Limited counts helper readings skipped because they would have
	// changed the presence more often than a user can (see Run).
	Limited uint64
}

// New returns a Source with o's defaults applied. It fails only when
// HelperPath is empty and the running binary cannot be located.
func New(o Options) (*Source, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	return &Source{o: o, changes: make(chan Change, changeQueue)}, nil
}

// Stats returns the Source's counters.
func (s *Source) Stats() Stats {
	return Stats{BadLines: s.badLines.Load(), HelperStarts: s.starts.Load(), DroppedChanges: s.dropped.Load(), Limited: s.limited.Load()}
}

// Notify hands a session change to the Source. It never blocks (it is
// called from the service manager's handler); the change is acted on by
// Run: OnTrigger for logon, lock and unlock, an ObsEvent with
// SessionEvents, and a look at the console session, which restarts the
// helper in a new session. Changes notified while Run is not running wait
// (at most 32; more are dropped).
func (s *Source) Notify(c Change) {
	if c.At.IsZero() {
		c.At = time.Now()
	}
	select {
	case s.changes <- c:
	default:
		s.dropped.Add(1)
	}
}

// msgKind is what the supervisor tells Run.
type msgKind int

const (
	msgReading     msgKind = iota // a helper line was read
	msgStarted                    // a helper was started
	msgNoUser                     // nobody is logged on to the console: no helper
	msgUnsupported                // the helper cannot read the idle time here
)

type msg struct {
	kind  msgKind
	ms    uint64
	known bool
	at    time.Time
}

// Run supervises the helper and emits active/idle transitions (and session
// events) until ctx ends, then kills the helper and returns nil. It
// implements agent.ObsSource.
//
// The first known presence is emitted (it anchors the timeline at agent
// start), then each change: idle when a reading is at or over Threshold,
// when no reading came for StaleAfter, or when nobody is logged on to the
// console; active when a reading falls back below Threshold. On a machine
// without an idle reading (ExitUnsupported) nothing is emitted.
//
// A user goes idle at most once per Threshold, so the helper's readings
// may change the presence at most transitionBurst times at once and then
// once per Threshold/2; a reading past that (a misbehaving helper) is
// skipped and counted (Stats.Limited), and the next one is looked at anew.
func (s *Source) Run(ctx context.Context, emit func(context.Context, wire.ObsEvent) error) error {
	ctx, cancel := context.WithCancel(ctx)
	msgs := make(chan msg, 16)
	wake := make(chan struct{}, 1)
	var wg sync.WaitGroup
	if !s.o.NoHelper {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.supervise(ctx, msgs, wake)
		}()
	}
	defer func() {
		cancel()
		wg.Wait()
	}()

	tr := tracker{threshold: s.o.Threshold}
	// No reading for StaleAfter since the last one, or since a helper
	// started while none was awaited, counts as idle. A helper restarted
	// does not push the deadline: one that keeps crashing before it prints
	// goes stale.
	stale := time.NewTimer(time.Hour)
	stale.Stop()
	defer stale.Stop()
	armed := false
	arm := func(on bool) {
		armed = on
		if on {
			stale.Reset(s.o.StaleAfter)
		} else {
			stale.Stop()
		}
	}
	bucket := newBucket(transitionBurst, s.o.Threshold/2)
	transition := func(p presence, at time.Time) {
		if !tr.step(p) {
			return
		}
		s.record(ctx, emit, p, at)
	}
	fromHelper := func(p presence, at time.Time) {
		if p == tr.state || p == unknown {
			return
		}
		if !bucket.take(at) {
			if s.limited.Add(1) == 1 {
				s.o.Log.Warn("session helper: presence changes faster than a user can; readings skipped", "kind", p.kind())
			}
			return
		}
		transition(p, at)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-msgs:
			switch m.kind {
			case msgReading:
				if m.known {
					s.last.Store(&reading{idle: time.Duration(m.ms) * time.Millisecond, at: m.at})
					arm(true)
					fromHelper(tr.classify(m.ms), m.at)
				}
			case msgStarted:
				if !armed {
					arm(true)
				}
			case msgNoUser, msgUnsupported:
				s.last.Store(nil)
				arm(false)
				if m.kind == msgNoUser {
					transition(idle, m.at)
				}
			}
		case <-stale.C:
			armed = false
			transition(idle, time.Now())
		case c := <-s.changes:
			s.change(ctx, c, emit)
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}
}

// record emits the ObsEvent of a presence change (best effort, as upstream:
// a failure is logged).
func (s *Source) record(ctx context.Context, emit func(context.Context, wire.ObsEvent) error, p presence, at time.Time) {
	ev := presenceEvent(p, at)
	s.o.Log.Info("user presence", "kind", ev.Kind)
	if err := emit(ctx, ev); err != nil && ctx.Err() == nil {
		s.o.Log.Warn("session: cannot record a presence change", "kind", ev.Kind, "err", err)
	}
}

// transitionBurst is how many presence changes the helper's readings may
// make at once (see Run).
const transitionBurst = 10

// bucket is a token bucket: n tokens at most, one more every per.
type bucket struct {
	n, max int
	per    time.Duration
	last   time.Time
}

func newBucket(size int, per time.Duration) *bucket {
	return &bucket{n: size, max: size, per: max(per, time.Millisecond)}
}

// take takes a token at now and reports whether there was one.
func (b *bucket) take(now time.Time) bool {
	if b.last.IsZero() {
		b.last = now
	}
	if add := int(now.Sub(b.last) / b.per); add > 0 {
		b.n = min(b.max, b.n+add)
		b.last = b.last.Add(time.Duration(add) * b.per)
	}
	if b.n == b.max {
		b.last = now
	}
	if b.n == 0 {
		return false
	}
	b.n--
	return true
}

// change relays one session change.
func (s *Source) change(ctx context.Context, c Change, emit func(context.Context, wire.ObsEvent) error) {
	switch c.Kind {
	case KindLogon, KindLogoff, KindLock, KindUnlock:
	default:
		return
	}
	s.o.Log.Info("session change", "kind", c.Kind, "session", c.Session)
	if s.o.SessionEvents {
		if err := emit(ctx, sessionEvent(c)); err != nil && ctx.Err() == nil {
			s.o.Log.Warn("session: cannot record a session change", "kind", c.Kind, "err", err)
		}
	}
	if s.o.OnTrigger != nil && c.Kind != KindLogoff {
		s.o.OnTrigger(c.Kind)
	}
}

// sessionEvent is the ObsEvent of a session change: event_record_id
// "<kind>:<session>:<unix ms>", payload {"session_id": N}.
func sessionEvent(c Change) wire.ObsEvent {
	at := c.At.UTC().Truncate(time.Millisecond)
	sid := uitoa(uint64(c.Session))
	return wire.ObsEvent{
		At:            at,
		Kind:          c.Kind,
		Source:        SourceSessionChange,
		EventRecordID: c.Kind + ":" + sid + ":" + itoa(at.UnixMilli()),
		Payload:       []byte(`{"session_id":` + sid + `}`),
	}
}
