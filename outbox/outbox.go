package outbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/kanade/kanade-agent/internal/fsutil"
	"github.com/nats-io/nats.go/jetstream"
)

// Outbox is a durable file outbox of items of type T drained to JetStream.
// Enqueue, Stats, SetJetStream and Close are safe for concurrent use; Run
// runs at most once at a time.
type Outbox[T any] struct {
	opts       Options[T]
	log        *slog.Logger
	dir        string
	stuckDir   string
	corruptDir string
	maxPayload atomic.Int64

	// Enqueue side.
	encMu     sync.RWMutex
	closed    bool
	reqs      chan *request
	inEnqueue atomic.Int64 // Enqueue calls in progress (group commit hint)
	// The committer runs only while requests are queued (an idle outbox
	// holds no goroutine for it): cmu guards committing, and comWG counts
	// the committer running.
	cmu        sync.Mutex
	committing bool
	comWG      sync.WaitGroup
	activeFile *os.File // committer only
	lockF      *os.File // outbox.lock, held while open

	// Shared state, guarded by mu.
	mu      sync.Mutex
	segs    []*segment // ascending seq; the legacy pseudo-segment (seq 0) first
	active  *segment   // segment the committer appends to (nil: create on next batch)
	nextSeq uint64
	pending int
	pendB   int64 // bytes of the pending items' records (Options.MaxBytes)
	stuck   int
	corrupt int
	js      jetstream.JetStream
	// progress, if not nil, is closed (and cleared) when items are
	// finished: Flush waits on it.
	progress chan struct{}

	wake    chan struct{} // new items, segment rolled (cap 1)
	jsCh    chan struct{} // SetJetStream called (cap 1)
	closing chan struct{} // closed by Close
	running atomic.Bool
	loops   atomic.Int64 // drain loop iterations (tests: idle costs nothing)
	runWG   sync.WaitGroup
	serve   *serving     // the Serve in progress, guarded by mu
	drains  atomic.Int64 // drain goroutines started (tests)
}

type request struct {
	buf  []byte // encoded record
	at   int64
	done chan error
}

// Stats is a snapshot of an outbox's counters.
type Stats struct {
	// Name is Options.Name.
	Name string
	// Pending is the number of items not yet acknowledged (in flight included).
	Pending int
	// PendingBytes is the size of their records on disk, the total that
	// Options.MaxBytes bounds.
	PendingBytes int64
	// OldestAge is the age of the oldest pending item (0 if none). Right
	// after items are acknowledged it may, for one drain step, still be the
	// age of one of them.
	OldestAge time.Duration
	// Stuck is the number of items in stuck/.
	Stuck int
	// Corrupt is the number of files in corrupt/.
	Corrupt int
}

// New opens (creating if needed) the outbox in opts.Dir and recovers what
// it holds: stray temporary files are removed, segments are checked record
// by record (unreadable bytes go to corrupt/), acknowledged records are
// skipped, and legacy <name>.json files are picked up. It does not publish:
// call Run.
func New[T any](opts Options[T]) (*Outbox[T], error) {
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	o := &Outbox[T]{
		opts:       opts,
		log:        opts.Logger.With("outbox", opts.Name),
		dir:        opts.Dir,
		stuckDir:   filepath.Join(opts.Dir, stuckDirName),
		corruptDir: filepath.Join(opts.Dir, corruptDirNam),
		// Each Enqueue waits for its commit, so at most one request per
		// concurrent caller is queued; more callers wait their turn here
		// while the committer batches (8 KiB per outbox at 1024 entries
		// was most of an idle embedded agent's outbox memory).
		reqs:    make(chan *request, 64),
		wake:    make(chan struct{}, 1),
		jsCh:    make(chan struct{}, 1),
		closing: make(chan struct{}),
		js:      opts.JetStream,
	}
	mp := int64(opts.MaxPayload)
	if mp == 0 {
		mp = defaultMaxPayload
	}
	o.maxPayload.Store(mp)
	for _, d := range []string{o.dir, o.stuckDir, o.corruptDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("outbox: %w", err)
		}
	}
	lf, err := fsutil.LockFile(filepath.Join(o.dir, lockName))
	if errors.Is(err, fsutil.ErrLocked) {
		return nil, fmt.Errorf("%w: %w", ErrLocked, err)
	}
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	o.lockF = lf
	if err := o.recover(); err != nil {
		o.closeFiles()
		return nil, err
	}
	return o, nil
}

// SetJetStream hands the outbox a JetStream connection (or a new one after
// the previous was closed). Run uses the latest; a Run waiting for a
// connection starts publishing.
func (o *Outbox[T]) SetJetStream(js jetstream.JetStream) {
	o.mu.Lock()
	o.js = js
	o.mu.Unlock()
	select {
	case o.jsCh <- struct{}{}:
	default:
	}
}

// Enqueue stores v durably and returns its id (a UUIDv7, time ordered),
// which is also its Nats-Msg-Id.
//
// A nil error means the item's bytes and the directory entry of the file
// holding them have been fsynced (fdatasync on Linux): the item survives a
// process crash, kill -9 and power loss (given a disk that honours flushes),
// and will be published until JetStream acknowledges it, or moved to stuck/.
// Concurrent calls share fsyncs (group commit).
//
// ErrTooLarge, ErrSubject, ErrEncode and ErrClosed mean nothing was stored;
// so does an error wrapping ErrFull (the outbox holds Options.MaxBytes: try
// again once it has drained).
// Any other error (a write or fsync failure, such as a full disk, wrapped
// so errors.Is finds the cause; or ctx ending first) means the item is not
// promised: it may or may not be delivered, but a partly written item is
// never delivered.
func (o *Outbox[T]) Enqueue(ctx context.Context, v T) (string, error) {
	o.inEnqueue.Add(1)
	defer o.inEnqueue.Add(-1)
	data, err := encodeJSON(v)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrEncode, err)
	}
	subj, err := o.opts.Subject(v)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrSubject, err)
	}
	if err := checkSubject(subj); err != nil {
		return "", fmt.Errorf("%w: %q: %w", ErrSubject, subj, err)
	}
	uid, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("outbox: id: %w", err)
	}
	id := uid.String()
	if o.opts.Prepare == nil {
		if size, limit := msgSize(id, data), o.maxPayload.Load(); int64(size) > limit {
			return "", fmt.Errorf("%w: %d bytes with headers, max payload %d", ErrTooLarge, size, limit)
		}
	}
	if len(data) > o.opts.MaxItemBytes {
		return "", fmt.Errorf("%w: %d bytes, MaxItemBytes %d", ErrTooLarge, len(data), o.opts.MaxItemBytes)
	}
	at := o.opts.Now().UnixNano()
	r := &request{buf: encodeRecord(nil, id, subj, at, data), at: at, done: make(chan error, 1)}

	o.encMu.RLock()
	if o.closed {
		o.encMu.RUnlock()
		return "", ErrClosed
	}
	select {
	case o.reqs <- r:
	case <-ctx.Done():
		o.encMu.RUnlock()
		return "", ctx.Err()
	}
	o.startCommitter() // under encMu: Close waits for it
	o.encMu.RUnlock()
	select {
	case err := <-r.done:
		if err != nil {
			return "", err
		}
		return id, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// msgSize is the size the server checks against max_payload: the
// Nats-Msg-Id header block plus the data.
func msgSize(id string, data []byte) int {
	return len("NATS/1.0\r\n"+jetstream.MsgIDHeader+": \r\n\r\n") + len(id) + len(data)
}

func checkSubject(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > 1<<15 {
		return errors.New("too long")
	}
	for _, tok := range strings.Split(s, ".") {
		if tok == "" || tok == "*" || tok == ">" {
			return errors.New("empty token or wildcard")
		}
		if strings.ContainsAny(tok, " \t\r\n") {
			return errors.New("whitespace")
		}
	}
	return nil
}

// startCommitter starts the committer unless it runs. Every request is
// queued before its sender calls this, and the committer stops only when
// it finds the queue empty under cmu, so no request is left unanswered.
func (o *Outbox[T]) startCommitter() {
	o.cmu.Lock()
	defer o.cmu.Unlock()
	if !o.committing {
		o.committing = true
		o.comWG.Add(1)
		go o.committer()
	}
}

// nextRequest returns the next queued request, or ok == false when the
// queue is empty (the committer then stops) or closed.
func (o *Outbox[T]) nextRequest() (r *request, ok bool) {
	select {
	case r, ok = <-o.reqs:
		return r, ok
	default:
	}
	o.cmu.Lock()
	defer o.cmu.Unlock()
	select {
	case r, ok = <-o.reqs:
		return r, ok
	default:
		o.committing = false
		return nil, false
	}
}

// committer appends batches of records to the active segment with one
// write and one fdatasync per batch (group commit). It runs while requests
// are queued (startCommitter).
func (o *Outbox[T]) committer() {
	defer o.comWG.Done()
	var (
		batch []*request
		buf   []byte
	)
	const (
		maxBatchBytes = 4 << 20
		gatherWait    = 200 * time.Microsecond
	)
	for {
		r, ok := o.nextRequest()
		if !ok {
			return
		}
		batch = append(batch[:0], r)
		size := len(r.buf)
		// Take what is queued; while other Enqueue calls are still encoding
		// their items, give them a moment (bounded) to join this batch: one
		// fsync for all of them.
		var deadline time.Time
	more:
		for size < maxBatchBytes {
			select {
			case r2, ok := <-o.reqs:
				if !ok {
					break more
				}
				batch = append(batch, r2)
				size += len(r2.buf)
				continue
			default:
			}
			if int64(len(batch)) >= o.inEnqueue.Load() {
				break
			}
			now := time.Now()
			if deadline.IsZero() {
				deadline = now.Add(gatherWait)
			} else if now.After(deadline) {
				break
			}
			runtime.Gosched()
		}
		batch = o.admit(batch)
		if len(batch) == 0 {
			continue
		}
		buf = buf[:0]
		for _, r := range batch {
			buf = append(buf, r.buf...)
		}
		err := o.commit(batch, buf)
		for _, r := range batch {
			r.done <- err
		}
		if cap(buf) > maxBatchBytes*2 {
			buf = nil
		}
	}
}

// admit refuses, with ErrFull, the requests of batch that would take the
// pending bytes over MaxBytes, in order, and returns the others (reusing
// batch). The first request is admitted into an empty outbox whatever its
// size. Committer only: it alone adds pending bytes, so what it admits fits.
func (o *Outbox[T]) admit(batch []*request) []*request {
	o.mu.Lock()
	held := o.pendB
	o.mu.Unlock()
	limit := o.opts.MaxBytes
	kept := batch[:0]
	for _, r := range batch {
		n := int64(len(r.buf))
		if held > 0 && held+n > limit {
			r.done <- fmt.Errorf("%w: %s holds %d bytes of pending items, the item needs %d more, MaxBytes is %d", ErrFull, o.opts.Name, held, n, limit)
			continue
		}
		held += n
		kept = append(kept, r)
	}
	clear(batch[len(kept):])
	return kept
}

// commit writes buf (the records of batch) and fsyncs it. On error the
// segment is cut back to its last committed size or abandoned.
func (o *Outbox[T]) commit(batch []*request, buf []byte) error {
	seg, f, err := o.activeSegment()
	if err != nil {
		return fmt.Errorf("outbox: create segment: %w", err)
	}
	n, werr := o.opts.writeFile(f, buf)
	if werr == nil && n != len(buf) {
		werr = errors.New("short write")
	}
	var serr error
	if werr == nil {
		serr = fsutil.SyncData(f)
	}
	if err := errors.Join(werr, serr); err != nil {
		// Cut the partial batch off. If that fails, or the fsync failed (the
		// page cache state is then unknown), abandon the segment: its tail
		// is found unreadable at the next open and moved to corrupt/; its
		// committed records stay valid.
		if terr := f.Truncate(seg.size); terr != nil || serr != nil {
			o.abandonActive()
		}
		o.log.Warn("outbox: enqueue failed", "err", err)
		return fmt.Errorf("outbox: write %s: %w", seg.path, err)
	}
	o.mu.Lock()
	off := seg.size
	for _, r := range batch {
		seg.add(off, uint32(len(r.buf)), r.at)
		off += int64(len(r.buf))
	}
	o.pendB += off - seg.size
	seg.size = off
	o.pending += len(batch)
	roll := seg.size >= o.opts.SegmentBytes
	if roll {
		seg.active = false
		o.active = nil
	}
	o.serveLocked()
	o.mu.Unlock()
	if roll {
		_ = f.Close()
		o.activeFile = nil
	}
	o.signal()
	return nil
}

func (o *Outbox[T]) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// activeSegment returns the segment to append to, creating it (header
// written, directory fsynced) when there is none. Committer only.
func (o *Outbox[T]) activeSegment() (*segment, *os.File, error) {
	o.mu.Lock()
	seg := o.active
	o.mu.Unlock()
	if seg != nil && o.activeFile != nil {
		return seg, o.activeFile, nil
	}
	o.mu.Lock()
	o.nextSeq++
	seq := o.nextSeq
	o.mu.Unlock()
	path := filepath.Join(o.dir, segName(seq))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*segment, *os.File, error) {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, nil, err
	}
	if _, err := o.opts.writeFile(f, []byte(segMagic)); err != nil {
		return fail(err)
	}
	if err := fsutil.SyncDir(o.dir); err != nil {
		return fail(err)
	}
	seg = newSegment(seq, path)
	seg.size, seg.active = int64(segHeaderLen), true
	o.mu.Lock()
	o.segs = append(o.segs, seg)
	o.active = seg
	o.mu.Unlock()
	o.activeFile = f
	return seg, f, nil
}

func (o *Outbox[T]) abandonActive() {
	o.mu.Lock()
	if o.active != nil {
		o.active.active = false
		o.active = nil
	}
	o.mu.Unlock()
	if o.activeFile != nil {
		_ = o.activeFile.Close()
		o.activeFile = nil
	}
	o.signal()
}

// Stats returns the outbox's counters. It is cheap (no disk access).
func (o *Outbox[T]) Stats() Stats {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := Stats{Name: o.opts.Name, Pending: o.pending, PendingBytes: o.pendB, Stuck: o.stuck, Corrupt: o.corrupt}
	for _, seg := range o.segs {
		if at, ok := seg.oldestAt(); ok {
			s.OldestAge = o.opts.Now().Sub(time.Unix(0, at))
			if s.OldestAge < 0 {
				s.OldestAge = 0
			}
			break
		}
	}
	return s
}

// Close stops Run (waiting up to StopTimeout for in-flight acks; unacked
// items stay on disk), lets Enqueue calls already accepted finish, and
// closes the files. Later Enqueue and Run calls return ErrClosed. The
// second Close returns ErrClosed, which wraps net.ErrClosed.
func (o *Outbox[T]) Close() error {
	o.encMu.Lock()
	if o.closed {
		o.encMu.Unlock()
		return ErrClosed
	}
	o.closed = true
	close(o.reqs)
	close(o.closing)
	o.encMu.Unlock()
	o.comWG.Wait() // every request queued was answered
	o.endServe()
	o.runWG.Wait()
	o.closeFiles()
	return nil
}

func (o *Outbox[T]) closeFiles() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range o.segs {
		if s.rf != nil {
			_ = s.rf.Close()
			s.rf = nil
		}
		if s.ackf != nil {
			_ = s.ackf.Close()
			s.ackf = nil
		}
	}
	if o.activeFile != nil {
		_ = o.activeFile.Close()
		o.activeFile = nil
	}
	if o.lockF != nil {
		_ = o.lockF.Close() // releases the directory
		o.lockF = nil
	}
}

// recover loads the directory's state. See doc.go, "Recovery".
func (o *Outbox[T]) recover() error {
	// Sweep temporary files and count stuck/ and corrupt/.
	for _, d := range []string{o.dir, o.stuckDir, o.corruptDir} {
		ents, err := os.ReadDir(d)
		if err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		for _, e := range ents {
			name := e.Name()
			switch {
			case strings.HasSuffix(name, tmpSuffix):
				if err := os.Remove(filepath.Join(d, name)); err != nil {
					return fmt.Errorf("outbox: sweep: %w", err)
				}
			case d == o.stuckDir && e.Type().IsRegular():
				o.stuck++
			case d == o.corruptDir && e.Type().IsRegular():
				o.corrupt++
			}
		}
	}
	ents, err := os.ReadDir(o.dir)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	var legacy []fs.DirEntry
	segSeqs := map[uint64]bool{}
	var seqs []uint64
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() {
			continue
		}
		if seq, ok := parseSegName(name); ok {
			seqs = append(seqs, seq)
			segSeqs[seq] = true
		} else if strings.HasSuffix(name, legacySuffix) {
			legacy = append(legacy, e)
		}
	}
	// Orphan ack files (their segment was deleted): remove.
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ackSuffix) {
			if seq, ok := parseSegName(strings.TrimSuffix(name, ackSuffix) + segSuffix); ok && !segSeqs[seq] {
				_ = os.Remove(filepath.Join(o.dir, name))
			}
		}
	}
	if err := o.loadLegacy(legacy); err != nil {
		return err
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	var buf []byte // reused: one segment's bytes at a time
	for _, seq := range seqs {
		if buf, err = o.loadSegment(seq, buf); err != nil {
			return err
		}
		o.nextSeq = seq
	}
	return nil
}

func (o *Outbox[T]) maxBody() int { return bodyFixedLen + 255 + 1<<16 + o.opts.MaxItemBytes }

// loadSegment reads and checks one segment and applies its ack file. buf
// is reused to read the segment; the (possibly grown) buffer is returned.
func (o *Outbox[T]) loadSegment(seq uint64, buf []byte) ([]byte, error) {
	path := filepath.Join(o.dir, segName(seq))
	b, err := readFileInto(path, buf)
	if err != nil {
		return buf, fmt.Errorf("outbox: %w", err)
	}
	buf = b
	if len(b) < segHeaderLen || string(b[:segHeaderLen]) != segMagic {
		if string(b) == segMagic[:len(b)] { // created, never written: no items
			_ = os.Remove(path)
			_ = os.Remove(ackPath(path))
			return buf, nil
		}
		o.moveCorruptFile(path, 0, errBadBody)
		return buf, nil
	}
	seg := newSegment(seq, path)
	maxBody := o.maxBody()
	off := segHeaderLen
	for off < len(b) {
		n, at, err := checkRecord(b[off:], maxBody)
		if err == nil {
			seg.add(int64(off), uint32(n), at)
			off += n
			continue
		}
		next := resync(b, off+1, maxBody)
		if next == len(b) {
			// Bad tail: preserve it, then cut the segment back.
			o.saveCorrupt(path, int64(off), b[off:], err)
			if terr := os.Truncate(path, int64(off)); terr != nil {
				return buf, fmt.Errorf("outbox: truncate %s: %w", path, terr)
			}
			b = b[:off]
			break
		}
		o.saveCorrupt(path, int64(off), b[off:next], err)
		off = next
	}
	seg.size = int64(len(b))
	if ab, err := os.ReadFile(ackPath(path)); err == nil {
		forAcks(seq, ab, func(ord uint32) {
			if int(ord) < seg.count() && seg.st[ord] != stDone {
				seg.st[ord] = stDone
				seg.done++
			}
		})
	}
	if seg.done == seg.count() {
		_ = os.Remove(path)
		_ = os.Remove(ackPath(path))
		return buf, nil
	}
	seg.compact()
	if seg.advanceLow() { // the records before it were acked: learn its time
		if _, at, err := checkRecord(b[seg.off(seg.low):], maxBody); err == nil {
			seg.setLowAt(seg.low, at)
		}
	}
	o.pending += seg.count() - seg.done
	for i, st := range seg.st {
		if st != stDone {
			o.pendB += int64(seg.n(i))
		}
	}
	o.segs = append(o.segs, seg)
	return buf, nil
}

// readFileInto reads the file at path into buf (grown if too small).
func readFileInto(path string, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return buf, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return buf, err
	}
	size := fi.Size() + 1 // +1: see a file that grew
	if int64(cap(buf)) < size {
		buf = make([]byte, 0, size)
	}
	b := buf[:0]
	for {
		n, err := f.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// saveCorrupt preserves bad bytes under corrupt/ and logs a *CorruptError.
func (o *Outbox[T]) saveCorrupt(path string, off int64, b []byte, cause error) {
	dst := filepath.Join(o.corruptDir, fmt.Sprintf("%s-%d.bin", filepath.Base(path), off))
	cerr := &CorruptError{Path: path, Offset: off, MovedTo: dst, Err: cause}
	if err := fsutil.WriteFileAtomic(dst, b, 0o600); err != nil {
		cerr.MovedTo = ""
		o.log.Error("outbox: cannot preserve corrupt bytes", "err", cerr, "write_err", err)
	} else {
		o.log.Warn("outbox: corrupt item moved", "err", cerr)
	}
	o.mu.Lock()
	o.corrupt++
	o.mu.Unlock()
}

// moveCorruptFile moves a whole file to corrupt/ and logs a *CorruptError.
func (o *Outbox[T]) moveCorruptFile(path string, off int64, cause error) {
	dst := filepath.Join(o.corruptDir, filepath.Base(path))
	cerr := &CorruptError{Path: path, Offset: off, MovedTo: dst, Err: cause}
	if err := fsutil.RenameDurable(path, dst); err != nil {
		cerr.MovedTo = ""
		o.log.Error("outbox: cannot move corrupt file", "err", cerr, "move_err", err)
		return
	}
	o.log.Warn("outbox: corrupt item moved", "err", cerr)
	o.mu.Lock()
	o.corrupt++
	o.mu.Unlock()
}

// loadLegacy picks up <name>.json files of the previous agent, oldest first.
func (o *Outbox[T]) loadLegacy(ents []fs.DirEntry) error {
	type lf struct {
		path string
		mod  time.Time
	}
	var files []lf
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			continue
		}
		files = append(files, lf{filepath.Join(o.dir, e.Name()), info.ModTime()})
	}
	sort.Slice(files, func(i, j int) bool {
		if !files[i].mod.Equal(files[j].mod) {
			return files[i].mod.Before(files[j].mod)
		}
		return files[i].path < files[j].path
	})
	seg := newSegment(0, "")
	seg.legacy = true
	for _, f := range files {
		b, err := os.ReadFile(f.path)
		if err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		var v T
		if err := json.Unmarshal(b, &v); err != nil {
			o.moveCorruptFile(f.path, 0, err)
			continue
		}
		subj, err := o.opts.Subject(v)
		if err == nil {
			err = checkSubject(subj)
		}
		if err != nil {
			o.log.Warn("outbox: legacy item has no valid subject; moved to stuck/", "path", f.path, "err", err)
			if merr := fsutil.RenameDurable(f.path, filepath.Join(o.stuckDir, filepath.Base(f.path))); merr == nil {
				o.stuck++
			}
			continue
		}
		seg.add(seg.end, uint32(len(b)), f.mod.UnixNano())
		o.pendB += int64(len(b))
		seg.lpaths = append(seg.lpaths, f.path)
		seg.lsubj = append(seg.lsubj, subj)
	}
	if seg.count() > 0 {
		o.segs = append(o.segs, seg)
		o.pending += seg.count()
	}
	return nil
}

// encodeJSON is json.Marshal without HTML escaping: '<', '>' and '&' are
// written as themselves, as upstream's serde_json writes them (see
// docs/protocol.md), not as \u003c escapes; what a wire type's MarshalJSON
// returns is published byte for byte.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
