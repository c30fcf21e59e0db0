package timeline

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/kanade/kanade-agent/internal/fsutil"
	"github.com/kanade/kanade-agent/wire"
)

// Defaults of Options.
const (
	// DefaultPeriod is Options.Period's default, upstream's poll cadence.
	DefaultPeriod = 5 * time.Minute
	// DefaultLookBack is Options.LookBack's default, upstream's 24 h floor.
	DefaultLookBack = 24 * time.Hour
	// DefaultPollTimeout is Options.PollTimeout's default.
	DefaultPollTimeout = 2 * time.Minute
)

// EventLog reads the Windows event log. Query returns the events of
// channel that the XPath query selects, oldest first, each rendered as
// event XML (EvtRenderEventXml), at most max of them. It must return when
// ctx ends. An EventLog that cannot work on this system returns an error
// wrapping ErrUnsupported.
type EventLog interface {
	Query(ctx context.Context, channel, query string, max int) ([]string, error)
}

// Options configures a Source. Only Dir is required.
type Options struct {
	// Dir holds the watermark files (winlog-reader-watermark.json,
	// wtmp-reader-watermark.json); the daemon passes its data directory.
	// Required.
	Dir string
	// Period is the time between polls; the first poll runs at once.
	// Default DefaultPeriod (5 min).
	Period time.Duration
	// LookBack is how far back a poll reaches: older events are never
	// emitted, so an agent stopped for longer than this misses the older
	// ones (upstream's trade). Default DefaultLookBack (24 h).
	LookBack time.Duration
	// PollTimeout bounds one poll of every reader. Default DefaultPollTimeout (2 min).
	PollTimeout time.Duration
	// Log receives the source's logs. Default slog.Default().
	Log *slog.Logger
	// EventLog reads the Windows event log. Default: the live wevtapi.dll
	// reader on Windows, none elsewhere.
	EventLog EventLog
	// NoEventLog turns the Windows event log reader off.
	NoEventLog bool
	// ResolveSID turns a Winlogon user SID into an account name for the
	// logon/logoff payload's "user". Default: on Windows,
	// LookupAccountSid, attempted for a domain SID only while the
	// machine's AD domain resolves (the SID is kept otherwise); elsewhere
	// the SID itself.
	ResolveSID func(sid string) string
	// Wtmp is the utmp-format login record file read for boot, shutdown,
	// logon and logoff. Default /var/log/wtmp on Linux, none elsewhere.
	Wtmp string
	// NoWtmp turns the wtmp reader off.
	NoWtmp bool
	// Journalctl is the journalctl program that reads sleep and resume
	// from the systemd journal. Default: journalctl in PATH on Linux, none
	// elsewhere.
	Journalctl string
	// NoJournal turns the journal reader off.
	NoJournal bool
}

func (o *Options) setDefaults() {
	if o.Period <= 0 {
		o.Period = DefaultPeriod
	}
	if o.LookBack <= 0 {
		o.LookBack = DefaultLookBack
	}
	if o.PollTimeout <= 0 {
		o.PollTimeout = DefaultPollTimeout
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.EventLog == nil && !o.NoEventLog {
		o.EventLog = defaultEventLog()
	}
	if o.ResolveSID == nil {
		o.ResolveSID = defaultResolveSID()
	}
	if o.Wtmp == "" && !o.NoWtmp {
		o.Wtmp = defaultWtmp
	}
	if o.Journalctl == "" && !o.NoJournal {
		o.Journalctl = defaultJournalctl()
	}
}

// Source produces the PC's timeline ObsEvents. It implements
// agent.ObsSource.
type Source struct {
	opts Options
	log  *slog.Logger
	now  func() time.Time
	// afterPoll, when set (tests), is called after every poll.
	afterPoll func()
}

// New returns a Source configured by o.
func New(o Options) (*Source, error) {
	if o.Dir == "" {
		return nil, ErrNoDir
	}
	o.setDefaults()
	return &Source{opts: o, log: o.Log.With("component", "timeline"), now: time.Now}, nil
}

// Emit stores one ObsEvent durably and returns nil once it is stored (the
// agent's obs outbox Enqueue). The agent passes it to Run.
type Emit = func(context.Context, wire.ObsEvent) error

// Run polls at once and then every Period until ctx ends, handing each new
// event to emit, and returns nil when ctx ends. A watermark per event log
// row (and one for wtmp) advances only once emit returned nil for an
// event, and is written to Dir (temporary file, fsync, rename) before the
// next event is emitted: an event is emitted once across restarts, and an
// event whose emit failed is tried again at the next poll. A poll that
// fails (an event log the system cannot read) is logged and the source
// keeps running. Run must not be called again before it returned.
func (s *Source) Run(ctx context.Context, emit Emit) error {
	var wl *winlogReader
	if s.opts.EventLog != nil && !s.opts.NoEventLog {
		wl = &winlogReader{s: s, path: filepath.Join(s.opts.Dir, winlogWatermarkFile)}
		wl.load()
	}
	var wt *wtmpReader
	if s.opts.Wtmp != "" && !s.opts.NoWtmp {
		wt = &wtmpReader{s: s, file: s.opts.Wtmp, path: filepath.Join(s.opts.Dir, wtmpWatermarkFile)}
		wt.load()
	}
	var jr *journalReader
	if s.opts.Journalctl != "" && !s.opts.NoJournal {
		jr = &journalReader{s: s, cmd: s.opts.Journalctl, path: filepath.Join(s.opts.Dir, journalWatermarkFile)}
		jr.load()
	}
	if wl == nil && wt == nil && jr == nil {
		s.log.Info("no timeline reader on this system")
		<-ctx.Done()
		return nil
	}
	wtmp, journal := "", ""
	if wt != nil {
		wtmp = wt.file
	}
	if jr != nil {
		journal = jr.cmd
	}
	s.log.Info("timeline source running", "event_log", wl != nil, "wtmp", wtmp, "journalctl", journal, "period", s.opts.Period, "look_back", s.opts.LookBack)
	t := time.NewTicker(s.opts.Period)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, s.opts.PollTimeout)
		if wl != nil {
			wl.poll(pctx, emit)
		}
		if wt != nil {
			wt.poll(pctx, emit)
		}
		if jr != nil {
			jr.poll(pctx, emit)
		}
		cancel()
		if s.afterPoll != nil {
			s.afterPoll()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// loadJSON reads the watermark file path into v. A missing file leaves v
// as it is and returns nil; a file that cannot be read or decoded is
// logged and v is reset by the caller (back to the look-back).
func (s *Source) loadJSON(path string, v any) bool {
	fsutil.SweepTemp(path)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		s.log.Warn("timeline watermark unreadable: reading the last "+s.opts.LookBack.String()+" again (the backend drops the events it already has)",
			"file", path, "err", err)
		return false
	}
	return true
}

// saveJSON writes v to path atomically and durably.
func (s *Source) saveJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(path, b, 0o600); err != nil {
		return fmt.Errorf("timeline: write watermark: %w", err)
	}
	return nil
}

// winlogReader reads the Windows event log rows.
type winlogReader struct {
	s    *Source
	path string
	// wm is upstream's watermark map: Row.Key() → the highest EventRecordID handled.
	wm map[string]uint64
	// unsupported is set once the event log reported ErrUnsupported, so
	// it is logged at warn level once, not every poll.
	unsupported bool
}

func (w *winlogReader) load() {
	w.wm = map[string]uint64{}
	if !w.s.loadJSON(w.path, &w.wm) || w.wm == nil { // a file holding null too
		w.wm = map[string]uint64{}
	}
}

// poll reads every row once.
func (w *winlogReader) poll(ctx context.Context, emit Emit) {
	s := w.s
	since := s.now().Add(-s.opts.LookBack)
	for _, r := range Rows {
		if ctx.Err() != nil {
			s.log.Warn("timeline: event log poll cut short", "err", context.Cause(ctx))
			return
		}
		err := w.pollRow(ctx, r, since, emit)
		if err == nil {
			w.unsupported = false
			continue
		}
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			continue // stopping, or the poll timed out: reported above
		}
		if errors.Is(err, ErrUnsupported) {
			if !w.unsupported {
				w.unsupported = true
				s.log.Warn("timeline: cannot read the Windows event log; will retry every poll", "err", err)
			}
			return
		}
		s.log.Warn("timeline: event log row failed", "row", r.Key(), "err", err)
	}
}

// pollRow queries one row and emits its new events, oldest record first.
func (w *winlogReader) pollRow(ctx context.Context, r Row, since time.Time, emit Emit) error {
	s := w.s
	key := r.Key()
	after := w.wm[key]
	docs, err := s.opts.EventLog.Query(ctx, r.Channel, r.Query(since, after), maxQueryEvents)
	if err != nil {
		return err
	}
	evs := make([]*Event, 0, len(docs))
	for _, d := range docs {
		ev, err := DecodeEventXML([]byte(d))
		if err != nil {
			s.log.Warn("timeline: event dropped", "row", key, "err", err)
			continue
		}
		if !r.matches(ev) || ev.RecordID <= after || ev.At.Before(since) {
			continue
		}
		evs = append(evs, ev)
	}
	slices.SortFunc(evs, func(a, b *Event) int { return cmp.Compare(a.RecordID, b.RecordID) })
	var prev uint64
	for _, ev := range evs {
		if ev.RecordID == prev {
			continue // the same record twice in one answer
		}
		prev = ev.RecordID
		payload, ok := shape(r, ev, s.opts.ResolveSID)
		if ok {
			obs := wire.ObsEvent{
				At:            ev.At,
				Kind:          r.Kind,
				Source:        winlogSourcePrefix + r.Channel,
				EventRecordID: fmt.Sprint(ev.RecordID),
				Payload:       payload,
			}
			if err := emit(ctx, obs); err != nil {
				return fmt.Errorf("emit record %d (tried again next poll): %w", ev.RecordID, err)
			}
		}
		w.wm[key] = ev.RecordID
		// Written after every event, so a restart does not emit it again.
		if err := s.saveJSON(w.path, w.wm); err != nil {
			s.log.Error("timeline: the events emitted since may be emitted again after a restart", "err", err)
		}
	}
	return nil
}
