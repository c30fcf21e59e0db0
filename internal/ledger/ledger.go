package ledger

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kanade/kanade-agent/internal/fsutil"
)

// File names inside the ledger directory.
const (
	logName     = "ledger.log"
	tmpName     = "ledger.log.tmp"
	lockName    = "ledger.lock"
	corruptBase = "ledger.corrupt-"
)

// Defaults and limits of Options.
const (
	// DefaultRetention is how long a finished entry is kept by default.
	DefaultRetention = 30 * 24 * time.Hour
	// MinRetention is the shortest Retention Validate accepts: the EXEC
	// stream keeps a command for 7 days and replays it to an agent that
	// was offline, so a finished entry must outlive it, with a day of
	// margin for clock skew and late replay.
	MinRetention = 8 * 24 * time.Hour
	// DefaultMaxEntries is the default cap on finished entries.
	DefaultMaxEntries = 100_000
	// DefaultCompactBytes is the default log size that triggers compaction.
	DefaultCompactBytes = 4 << 20
)

// checkInterval is how often the committer looks for finished entries past
// Retention when nothing else triggers a compaction.
const checkInterval = time.Hour

// State is the state of a ledger entry.
type State uint8

// The states of an entry, in the only order they move through.
const (
	// StateNone is the zero State: the ledger has no entry for the id.
	StateNone State = iota
	// StatePending means the id was claimed and nothing has started. It
	// lives in memory only and is lost at a restart (see doc.go).
	StatePending
	// StateLaunching means the agent is about to start, or has started, the
	// command; it is on disk before the process is spawned.
	StateLaunching
	// StateFinished means the command's result was durably enqueued.
	StateFinished
)

// String returns the lower-case name of s.
func (s State) String() string {
	switch s {
	case StateNone:
		return "none"
	case StatePending:
		return "pending"
	case StateLaunching:
		return "launching"
	case StateFinished:
		return "finished"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Entry is a copy of one ledger entry.
type Entry struct {
	// RequestID is the dedup key, the command's request_id.
	RequestID string
	// State is the entry's state.
	State State
	// Meta is the metadata given to Launching (e.g. the exec_id); nil once
	// the entry is finished.
	Meta []byte
	// At is when the entry reached State, by Options.Now.
	At time.Time
}

// Options configures Open. The zero value is usable: every field has a
// default.
type Options struct {
	// Retention is how long a finished entry is kept, measured from
	// Finished. Default DefaultRetention (30 days); at least MinRetention
	// (8 days), because the EXEC stream replays commands for 7 days and a
	// replayed command whose entry was pruned would run again.
	Retention time.Duration
	// MaxEntries caps the finished entries kept; the oldest are pruned
	// first. It bounds memory and wins over Retention, so it must exceed
	// the number of commands an agent receives in 7 days. The cap is
	// applied at compaction, which runs once the count exceeds it by an
	// eighth. Default DefaultMaxEntries (100 000). Launching entries are
	// never pruned and do not count.
	MaxEntries int
	// CompactBytes is the log size that triggers a compaction: the log is
	// rewritten when it exceeds max(CompactBytes, 2 × its size after the
	// last compaction). Default DefaultCompactBytes (4 MiB).
	CompactBytes int64
	// Now returns the current time; default time.Now. For tests.
	Now func() time.Time
	// Logger receives recovery, corruption and compaction reports; default
	// discards them.
	Logger *slog.Logger

	commitHook func(n int) // tests: called on the committer before each batch
}

// setDefaults fills the zero fields of o.
func (o *Options) setDefaults() {
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	if o.MaxEntries == 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	if o.CompactBytes == 0 {
		o.CompactBytes = DefaultCompactBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports whether o, after defaults, is usable; errors wrap
// ErrInvalidOptions.
func (o Options) Validate() error {
	o.setDefaults()
	switch {
	case o.Retention < MinRetention:
		return fmt.Errorf("%w: Retention %v is shorter than %v (EXEC replays commands for 7 days)", ErrInvalidOptions, o.Retention, MinRetention)
	case o.MaxEntries < 0:
		return fmt.Errorf("%w: MaxEntries %d is negative", ErrInvalidOptions, o.MaxEntries)
	case o.CompactBytes < 0:
		return fmt.Errorf("%w: CompactBytes %d is negative", ErrInvalidOptions, o.CompactBytes)
	}
	return nil
}

// entry is the in-memory state of one request id.
type entry struct {
	state State
	at    int64 // Unix nanoseconds of the last transition
	meta  []byte
}

// request is one record waiting for the committer.
type request struct {
	rec  []byte
	done chan error
}

// Ledger is a durable dedup ledger keyed by request id. All methods are safe
// for concurrent use. See the package documentation for what each durable
// call promises.
type Ledger struct {
	dir  string
	opts Options
	log  *slog.Logger

	lockF *os.File

	mu        sync.Mutex // guards entries, nFinished, oldestFin, closed
	entries   map[string]*entry
	nFinished int
	oldestFin int64 // at of the oldest finished entry; 0 if none
	closed    bool

	recovered []Entry
	corrupt   []string

	// The committer goroutine runs only while records are queued (an
	// idle ledger holds no goroutine): submit starts it, and it ends when
	// it finds the queue empty.
	qmu        sync.Mutex // guards queue, qclosed and committing
	queue      []request
	qclosed    bool
	committing bool
	comWG      sync.WaitGroup

	failed atomic.Pointer[error] // sticky write failure

	// Guarded by fmu, held by the committer, Compact and the periodic
	// check (and by nobody during Open).
	fmu         sync.Mutex
	fclosed     bool
	check       *time.Timer // the periodic compaction check
	f           *os.File
	logSize     int64
	compactBase int64 // log size right after the last compaction
	buf         []byte

	syncs       atomic.Int64 // fsyncs of the log, for tests and benchmarks
	compactions atomic.Int64

	testHookCommit func(n int) // called by commit before writing n records

	closeOnce sync.Once
	closeErr  error
}

// Open opens the ledger in dir, creating dir and the ledger if needed, and
// recovers its state: finished and launching entries come back, pending ones
// do not. Launching entries found are listed by Recovered. A torn or corrupt
// log never makes Open fail: the valid prefix is kept (plus intact records
// salvaged after the damage), the damaged bytes are preserved in a
// ledger.corrupt-<time> file listed by CorruptFiles, and the log is rewritten
// clean. Open fails on I/O errors, on invalid options, and with ErrLocked
// when another Ledger has dir open.
func Open(dir string, opts Options) (*Ledger, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.setDefaults()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ledger: open: %w", err)
	}
	l := &Ledger{
		dir:     dir,
		opts:    opts,
		log:     opts.Logger.With("component", "ledger", "dir", dir),
		entries: make(map[string]*entry),

		testHookCommit: opts.commitHook,
	}
	lf, err := fsutil.LockFile(filepath.Join(dir, lockName))
	if errors.Is(err, fsutil.ErrLocked) {
		return nil, fmt.Errorf("ledger: open: %w: %w", ErrLocked, err)
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: open: %w", err)
	}
	l.lockF = lf
	if err := l.load(); err != nil {
		lf.Close()
		return nil, err
	}
	l.check = time.AfterFunc(checkInterval, l.periodicCheck)
	return l, nil
}

// Claim records a pending entry for requestID if the ledger has none and
// returns ok == true and StatePending; otherwise it changes nothing and
// returns ok == false with the existing state. Of any number of concurrent
// claims of one id exactly one gets ok == true. Claim does not touch the
// disk. After a successful Claim the caller must call exactly one of
// Launching (then Finished), Finished, or Release. Errors wrap
// ErrInvalidRequestID, ErrClosed, or ErrFailed (a claim the ledger could not
// carry through to Launching is refused up front).
func (l *Ledger) Claim(requestID string) (ok bool, st State, err error) {
	if err := checkID(requestID); err != nil {
		return false, StateNone, err
	}
	if err := l.failure(); err != nil {
		return false, StateNone, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false, StateNone, ErrClosed
	}
	if e, found := l.entries[requestID]; found {
		return false, e.state, nil
	}
	l.entries[requestID] = &entry{state: StatePending, at: l.opts.Now().UnixNano()}
	return true, StatePending, nil
}

// Release forgets a pending claim, so a later Claim of requestID (in this
// run, or from the EXEC replay after a restart) succeeds again. It does
// nothing if the entry is not pending, and after Close.
func (l *Ledger) Release(requestID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.entries[requestID]; ok && e.state == StatePending {
		delete(l.entries, requestID)
	}
}

// Launching moves a pending entry to launching, with meta (at most
// MaxMetaLen bytes, e.g. the exec_id and whatever else the agent needs to
// report exit 121 after a crash; copied), and returns once the record is on
// stable storage (written and fsynced, possibly in a batch with other
// records). A nil error promises that after any crash, even a power loss,
// reopening finds the entry launching or finished, so the command never runs
// twice: call it before spawning the script, and do not spawn on error.
// Errors wrap ErrNotClaimed, ErrInvalidTransition, ErrMetaTooLarge,
// ErrClosed, or ErrFailed with the I/O error. Launching blocks for about one
// fsync and cannot be cancelled.
func (l *Ledger) Launching(requestID string, meta []byte) error {
	if err := checkID(requestID); err != nil {
		return err
	}
	if len(meta) > MaxMetaLen {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrMetaTooLarge, len(meta), MaxMetaLen)
	}
	if err := l.failure(); err != nil {
		return err
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	e, ok := l.entries[requestID]
	switch {
	case !ok:
		l.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrNotClaimed, requestID)
	case e.state != StatePending:
		st := e.state
		l.mu.Unlock()
		return fmt.Errorf("%w: %q is %v, not pending", ErrInvalidTransition, requestID, st)
	}
	at := l.opts.Now().UnixNano()
	e.state, e.at, e.meta = StateLaunching, at, slices.Clone(meta)
	l.mu.Unlock()
	return l.submit(appendRecord(nil, kindLaunching, at, requestID, meta))
}

// Finished marks the entry finished and returns once that is on stable
// storage, like Launching. Call it after the command's result (or the exit
// 121 result of a recovered entry, or a gate's skipped result) was durably
// enqueued; a crash before it returns leaves the entry launching, so the
// restart reports exit 121 again and the result outbox may hold two
// results for the request (with different result ids). Finished accepts a
// pending entry (a command refused by a gate after Claim) and a launching
// one; on a finished entry it does nothing and returns nil. Errors wrap
// ErrNotClaimed, ErrClosed, or ErrFailed.
func (l *Ledger) Finished(requestID string) error {
	if err := checkID(requestID); err != nil {
		return err
	}
	if err := l.failure(); err != nil {
		return err
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	e, ok := l.entries[requestID]
	if !ok {
		l.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrNotClaimed, requestID)
	}
	if e.state == StateFinished {
		l.mu.Unlock()
		return nil
	}
	at := l.opts.Now().UnixNano()
	e.state, e.at, e.meta = StateFinished, at, nil
	l.nFinished++
	if l.oldestFin == 0 || at < l.oldestFin {
		l.oldestFin = at
	}
	l.mu.Unlock()
	return l.submit(appendRecord(nil, kindFinished, at, requestID, nil))
}

// Lookup returns a copy of the entry for requestID, if any.
func (l *Ledger) Lookup(requestID string) (Entry, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.entries[requestID]
	if !ok {
		return Entry{}, false
	}
	return Entry{RequestID: requestID, State: e.state, Meta: slices.Clone(e.meta), At: time.Unix(0, e.at)}, true
}

// Recovered returns the entries that were launching when Open ran: commands
// whose process may or may not have run before a crash. They stay launching
// until the agent calls Finished for each, after enqueuing an ExecResult
// with exit 121. The list is fixed at Open, ordered by launch time; the
// caller may modify it.
func (l *Ledger) Recovered() []Entry {
	out := make([]Entry, len(l.recovered))
	for i, e := range l.recovered {
		out[i] = e
		out[i].Meta = slices.Clone(e.Meta)
	}
	return out
}

// CorruptFiles returns the paths of the ledger.corrupt-<time> files Open
// wrote this time, if it found a damaged log (see Open).
func (l *Ledger) CorruptFiles() []string { return slices.Clone(l.corrupt) }

// Compact prunes finished entries past Retention or beyond MaxEntries and
// rewrites the log as a snapshot of the remaining entries, atomically. The
// ledger compacts on its own when the log grows; Compact is for tests and
// maintenance. It waits for writes queued before it.
func (l *Ledger) Compact() error {
	l.fmu.Lock()
	defer l.fmu.Unlock()
	if l.fclosed {
		return ErrClosed
	}
	l.commitQueued(false)
	return l.compactNow()
}

// periodicCheck compacts when due (finished entries expire with time
// alone) and arms the next check.
func (l *Ledger) periodicCheck() {
	l.fmu.Lock()
	defer l.fmu.Unlock()
	if l.fclosed {
		return
	}
	if l.compactDue() {
		if err := l.compactNow(); err != nil {
			l.log.Warn("compaction failed", "err", err)
		}
	}
	l.check.Reset(checkInterval)
}

// Close stops the ledger: writes already submitted are committed, later
// ones fail with ErrClosed, the log file is closed and the directory lock
// released. Pending claims are dropped (they were never durable). Close is
// safe to call twice; the second call returns ErrClosed, which wraps
// net.ErrClosed.
func (l *Ledger) Close() error {
	first := false
	l.closeOnce.Do(func() {
		first = true
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		l.qmu.Lock()
		l.qclosed = true
		l.qmu.Unlock()
		l.comWG.Wait() // commits what was queued
		l.fmu.Lock()
		l.fclosed = true
		l.check.Stop()
		var errs []error
		if l.f != nil {
			errs = append(errs, l.f.Close())
		}
		l.fmu.Unlock()
		errs = append(errs, l.lockF.Close())
		if err := errors.Join(errs...); err != nil {
			l.closeErr = fmt.Errorf("ledger: close: %w", err)
		}
	})
	if !first {
		return ErrClosed
	}
	return l.closeErr
}

// checkID validates a request id.
func checkID(id string) error {
	if id == "" || len(id) > MaxRequestIDLen {
		return fmt.Errorf("%w: length %d (1..%d)", ErrInvalidRequestID, len(id), MaxRequestIDLen)
	}
	return nil
}

// failure returns the sticky write failure, if any.
func (l *Ledger) failure() error {
	if p := l.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// fail makes the ledger failed with err, unless it already is.
func (l *Ledger) fail(err error) error {
	ferr := fmt.Errorf("%w: %w", ErrFailed, err)
	if l.failed.CompareAndSwap(nil, &ferr) {
		l.log.Error("ledger failed; writes refused until reopen", "err", err)
		return ferr
	}
	return l.failure()
}

// submit queues a record for the committer and waits until it is durable.
func (l *Ledger) submit(rec []byte) error {
	done := make(chan error, 1)
	l.qmu.Lock()
	if l.qclosed {
		l.qmu.Unlock()
		return ErrClosed
	}
	l.queue = append(l.queue, request{rec: rec, done: done})
	if !l.committing {
		l.committing = true
		l.comWG.Add(1)
		go l.run()
	}
	l.qmu.Unlock()
	return <-done
}

// run is the committer goroutine: it takes every queued record at once,
// writes them with one write and one fsync (group commit), answers their
// callers, and compacts when due, until it finds the queue empty.
func (l *Ledger) run() {
	defer l.comWG.Done()
	for {
		l.fmu.Lock()
		n := l.commitQueued(true)
		if n > 0 && l.compactDue() {
			if err := l.compactNow(); err != nil {
				l.log.Warn("compaction failed", "err", err)
			}
		}
		l.fmu.Unlock()
		if n == 0 {
			return
		}
	}
}

// commitQueued commits every queued record and returns how many there
// were. With none and committer set, the committer stops: committing is
// cleared under the lock submit checks it with. l.fmu must be held.
func (l *Ledger) commitQueued(committer bool) int {
	l.qmu.Lock()
	batch := l.queue
	l.queue = nil
	if len(batch) == 0 && committer {
		l.committing = false
	}
	l.qmu.Unlock()
	if len(batch) > 0 {
		l.commit(batch)
	}
	return len(batch)
}

// commit appends the batch to the log and fsyncs it once.
func (l *Ledger) commit(batch []request) {
	if l.testHookCommit != nil {
		l.testHookCommit(len(batch))
	}
	err := l.failure()
	if err == nil {
		l.buf = l.buf[:0]
		for _, r := range batch {
			l.buf = append(l.buf, r.rec...)
		}
		if _, werr := l.f.Write(l.buf); werr != nil {
			err = l.fail(fmt.Errorf("write %s: %w", logName, werr))
		} else if serr := l.f.Sync(); serr != nil {
			err = l.fail(fmt.Errorf("fsync %s: %w", logName, serr))
		} else {
			l.syncs.Add(1)
			l.logSize += int64(len(l.buf))
		}
		if cap(l.buf) > 1<<20 {
			l.buf = nil
		}
	}
	for _, r := range batch {
		r.done <- err
	}
}

// compactDue reports whether the log or the entry count has grown enough, or
// a finished entry has expired, to make a compaction worthwhile.
func (l *Ledger) compactDue() bool {
	if l.failure() != nil {
		return false
	}
	if l.logSize > max(l.opts.CompactBytes, 2*l.compactBase) {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.nFinished > l.opts.MaxEntries+l.opts.MaxEntries/8 {
		return true
	}
	return l.oldestFin != 0 && l.oldestFin < l.opts.Now().Add(-l.opts.Retention).UnixNano()
}

// pruneLocked removes finished entries older than Retention and, beyond
// MaxEntries, the oldest finished ones; l.mu must be held. It returns how
// many it removed.
func (l *Ledger) pruneLocked() int {
	cutoff := l.opts.Now().Add(-l.opts.Retention).UnixNano()
	type fin struct {
		id string
		at int64
	}
	var keep []fin
	removed := 0
	for id, e := range l.entries {
		if e.state != StateFinished {
			continue
		}
		if e.at < cutoff {
			delete(l.entries, id)
			removed++
			continue
		}
		keep = append(keep, fin{id, e.at})
	}
	if excess := len(keep) - l.opts.MaxEntries; excess > 0 {
		slices.SortFunc(keep, func(a, b fin) int { return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.id, b.id)) })
		for _, f := range keep[:excess] {
			delete(l.entries, f.id)
		}
		keep = keep[excess:]
		removed += excess
	}
	l.nFinished = len(keep)
	l.oldestFin = 0
	for _, f := range keep {
		if l.oldestFin == 0 || f.at < l.oldestFin {
			l.oldestFin = f.at
		}
	}
	return removed
}

// snapshotLocked encodes every launching and finished entry, oldest first,
// as a complete log file; l.mu must be held.
func (l *Ledger) snapshotLocked() []byte {
	type item struct {
		id string
		e  *entry
	}
	items := make([]item, 0, len(l.entries))
	size := headerSize
	for id, e := range l.entries {
		if e.state == StateLaunching || e.state == StateFinished {
			items = append(items, item{id, e})
			size += frameSize + payloadHead + len(id) + len(e.meta)
		}
	}
	slices.SortFunc(items, func(a, b item) int { return cmp.Or(cmp.Compare(a.e.at, b.e.at), cmp.Compare(a.id, b.id)) })
	buf := make([]byte, 0, size)
	buf = append(buf, fileHeader()...)
	for _, it := range items {
		kind := kindLaunching
		if it.e.state == StateFinished {
			kind = kindFinished
		}
		buf = appendRecord(buf, kind, it.e.at, it.id, it.e.meta)
	}
	return buf
}

// compactNow prunes and rewrites the log: the snapshot goes to a tmp file
// (write, fsync, close), is renamed over the log and the directory fsynced,
// and the committer reopens the log for appending. Runs on the committer
// goroutine (or in Open before it starts).
func (l *Ledger) compactNow() error {
	if err := l.failure(); err != nil {
		return err
	}
	start := time.Now()
	l.mu.Lock()
	pruned := l.pruneLocked()
	snap := l.snapshotLocked()
	n := len(l.entries)
	l.mu.Unlock()

	tmp := filepath.Join(l.dir, tmpName)
	if err := writeFileSync(tmp, snap); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("ledger: compact: %w", err)
	}
	// Windows cannot rename over an open file: close the log first.
	if l.f != nil {
		if err := l.f.Close(); err != nil {
			l.f = nil
			os.Remove(tmp)
			return l.fail(fmt.Errorf("compact: close log: %w", err))
		}
		l.f = nil
	}
	path := filepath.Join(l.dir, logName)
	if err := fsutil.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		// The old log is intact; keep appending to it.
		if rerr := l.openAppend(); rerr != nil {
			return l.fail(fmt.Errorf("compact: reopen after failed rename: %w", rerr))
		}
		return fmt.Errorf("ledger: compact: %w", err)
	}
	if err := fsutil.SyncDir(l.dir); err != nil {
		// The rename may not be durable: records appended to the new file
		// could vanish with it at a crash. Stop writing.
		return l.fail(fmt.Errorf("compact: fsync dir: %w", err))
	}
	if err := l.openAppend(); err != nil {
		return l.fail(fmt.Errorf("compact: reopen: %w", err))
	}
	l.compactBase = l.logSize
	l.compactions.Add(1)
	l.log.Info("ledger compacted", "entries", n, "pruned", pruned, "bytes", len(snap), "took", time.Since(start))
	return nil
}

// openAppend opens the log for appending and sets logSize. O_APPEND is not
// used: on Windows it opens the file without GENERIC_WRITE, which
// FlushFileBuffers requires.
func (l *Ledger) openAppend() error {
	f, err := os.OpenFile(filepath.Join(l.dir, logName), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	end, err := f.Seek(0, 2)
	if err != nil {
		f.Close()
		return err
	}
	l.f, l.logSize = f, end
	return nil
}

// writeFileSync creates (or truncates) path, writes data, fsyncs and closes.
func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
