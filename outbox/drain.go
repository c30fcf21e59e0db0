package outbox

import (
	"container/heap"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kanade/kanade-agent/internal/fsutil"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// flight is one publish waiting for its ack.
type flight struct {
	seg  *segment
	idx  int
	id   string
	orig []byte // the item as stored
	size int
	m    *nats.Msg // as published
	sent int64     // when, in Options.Now's Unix nanoseconds
	// A hedged item has two publishes in flight, the first and its copy
	// (hedge), each flight naming the other's message (twin).
	twin  *nats.Msg
	hedge bool
}

type result struct {
	msg *nats.Msg
	err error
}

// retry is a heap entry: an item waiting for its next attempt.
type retry struct {
	next int64
	seg  *segment
	idx  int
}

type retryHeap []retry

func (h retryHeap) Len() int { return len(h) }
func (h retryHeap) Less(i, j int) bool {
	if h[i].next != h[j].next {
		return h[i].next < h[j].next
	}
	if h[i].seg.seq != h[j].seg.seq {
		return h[i].seg.seq < h[j].seg.seq
	}
	return h[i].idx < h[j].idx
}
func (h retryHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *retryHeap) Push(x any)   { *h = append(*h, x.(retry)) }
func (h *retryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// drainer is the state of one Run. Everything in it is owned by the Run
// goroutine, except res (callbacks) which resMu guards.
type drainer[T any] struct {
	o      *Outbox[T]
	ctx    context.Context
	js     jetstream.JetStream // as handed over
	nc     *nats.Conn
	pub    jetstream.JetStream // our share of the connection's publisher (sharedpub.go)
	status chan nats.Status

	inflight map[*nats.Msg]*flight
	nBytes   int
	retries  retryHeap
	curSeq   uint64
	curIdx   int

	pausedUntil time.Time
	gback       time.Duration
	// No stream answering (see noStreamFailure): items that failed so are
	// held, and one of them at a time probes, nsBack apart, from nsNext;
	// nsProbe is the probe in flight, nsSince when the trouble began.
	nsBack    time.Duration
	nsNext    int64
	nsSince   time.Time
	nsProbe   *flight
	stalled   bool
	acksDirty bool   // some segment has ack entries to write
	subj      string // subject of the last item published (shared)
	batch     []cand // fill's, reused

	resMu sync.Mutex
	res   []result
	spare []result
	resCh chan struct{}

	// Serve's drainers end once idle for IdleLinger (serve != nil).
	serve     *serving
	idleSince time.Time

	// Hedging (Options.HedgeAfter): sent holds the publishes in the order
	// they went out (entries no longer in flight are skipped and dropped),
	// hedging is the copy in flight if any, hedgeNext when the next copy
	// may go after one failed.
	sent      []*nats.Msg
	hedging   *flight
	hedgeNext int64
}

// serving is the state of a Serve: at most one drainer runs for it at a
// time, started when items are committed.
type serving struct {
	ctx    context.Context
	active bool // a drainer runs; guarded by Outbox.mu
	ended  bool // no drainer starts any more; guarded by Outbox.mu
	wg     sync.WaitGroup
	done   chan struct{} // closed when the Serve has ended
	stopCB func() bool   // stops the context.AfterFunc
}

// Serve drains the outbox like Run, in the background, holding no
// goroutine while there is nothing to publish: it returns at once, and a
// drain goroutine runs from when items are committed (or found at open)
// until the outbox has been empty, with every ack in, for
// Options.IdleLinger. The goroutine releases its share of the
// connection's publisher when it ends, so an idle agent's outboxes cost
// the connection nothing either.
//
// Serving ends when ctx ends or Close is called; wait, the function
// returned, waits until then and for the running drain to stop as Run
// does (StopTimeout for acks in flight; unacked items stay on disk).
// Serve returns ErrClosed after Close and ErrRunning while Run or another
// Serve is active.
func (o *Outbox[T]) Serve(ctx context.Context) (wait func(), err error) {
	o.encMu.RLock()
	if o.closed {
		o.encMu.RUnlock()
		return nil, ErrClosed
	}
	if !o.running.CompareAndSwap(false, true) {
		o.encMu.RUnlock()
		return nil, ErrRunning
	}
	o.runWG.Add(1)
	o.encMu.RUnlock()
	sv := &serving{ctx: ctx, done: make(chan struct{})}
	o.mu.Lock()
	o.serve = sv
	sv.stopCB = context.AfterFunc(ctx, o.endServe) // endServe waits for mu
	o.startDrainLocked(sv)                         // items found at open, a previous Run's
	o.mu.Unlock()
	return func() { <-sv.done }, nil
}

// serveLocked starts Serve's drainer if none runs (items were committed).
// o.mu must be held.
func (o *Outbox[T]) serveLocked() {
	if sv := o.serve; sv != nil && !sv.active && !sv.ended {
		o.startDrainLocked(sv)
	}
}

func (o *Outbox[T]) startDrainLocked(sv *serving) {
	sv.active = true
	sv.wg.Add(1)
	o.drains.Add(1)
	go func() {
		defer sv.wg.Done()
		_ = o.newDrainer(sv.ctx, sv).loop()
	}()
}

// endServe ends the Serve in progress (ctx ended, or Close): no drainer
// starts any more; once the running one has stopped, Serve's wait returns.
func (o *Outbox[T]) endServe() {
	o.mu.Lock()
	sv := o.serve
	if sv == nil || sv.ended {
		o.mu.Unlock()
		return
	}
	sv.ended = true
	o.serve = nil
	o.mu.Unlock()
	sv.stopCB() // sv.stopCB was set under mu before endServe could run
	go func() {
		sv.wg.Wait()
		o.running.Store(false)
		o.runWG.Done()
		close(sv.done)
	}()
}

// idleExit reports whether Serve's drainer may end now: nothing pending
// or in flight, no ack to write, and quiet for IdleLinger. Otherwise wait
// is shortened, if needed, to the end of the linger. When it returns true
// the drainer is no longer active: a commit starts another.
func (d *drainer[T]) idleExit(wait *time.Duration) bool {
	o := d.o
	quiet := len(d.inflight) == 0 && len(d.retries) == 0 && !d.acksDirty // the drainer's own: no lock
	if quiet {
		d.resMu.Lock()
		quiet = len(d.res) == 0
		d.resMu.Unlock()
	}
	if quiet {
		o.mu.Lock()
		quiet = o.pending == 0
		o.mu.Unlock()
	}
	if !quiet {
		d.idleSince = time.Time{}
		return false
	}
	now := time.Now()
	if d.idleSince.IsZero() {
		d.idleSince = now
	}
	left := o.opts.IdleLinger - now.Sub(d.idleSince)
	if left > 0 {
		if *wait < 0 || *wait > left {
			*wait = left
		}
		return false
	}
	// Give up the publisher while still active (no other drainer can
	// start meanwhile); if items came, the loop takes a share again.
	d.gc()
	d.dropPub()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pending != 0 {
		d.idleSince = time.Time{}
		return false
	}
	d.serve.active = false
	return true
}

// Run drains the outbox to JetStream until ctx ends or Close is called,
// then waits up to StopTimeout for the acks of publishes in flight and
// returns nil (unacked items stay on disk for the next Run). It waits for a
// connection (Options.JetStream or SetJetStream) and for the connection to
// be up, resumes by itself after a reconnect, and costs nothing while idle:
// it is woken by Enqueue, by acks, by connection events and by the timer of
// the next backoff deadline, never by a polling tick. Run returns ErrClosed
// after Close and ErrRunning if another Run is active.
func (o *Outbox[T]) Run(ctx context.Context) error {
	o.encMu.RLock()
	if o.closed {
		o.encMu.RUnlock()
		return ErrClosed
	}
	o.runWG.Add(1)
	o.encMu.RUnlock()
	defer o.runWG.Done()
	if !o.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer o.running.Store(false)
	return o.newDrainer(ctx, nil).loop()
}

// newDrainer returns the state of one Run (sv nil) or of one of Serve's
// drains, with every unfinished item made pending again.
func (o *Outbox[T]) newDrainer(ctx context.Context, sv *serving) *drainer[T] {
	d := &drainer[T]{o: o, ctx: ctx, inflight: map[*nats.Msg]*flight{}, resCh: make(chan struct{}, 1), serve: sv}
	d.reset()
	return d
}

// reset makes every unfinished item pending again and puts the cursor at
// the start (a previous Run may have left items in flight or waiting).
func (d *drainer[T]) reset() {
	o := d.o
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range o.segs {
		for i, st := range s.st {
			if st != stDone {
				s.st[i] = stPending
			}
		}
	}
}

func (d *drainer[T]) loop() error {
	o := d.o
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		o.loops.Add(1)
		d.handleResults()
		d.gc()
		select {
		case <-d.ctx.Done():
			return d.stop()
		case <-o.closing:
			return d.stop()
		default:
		}
		d.ensureConn()
		wait := time.Duration(-1)
		if d.pub != nil && d.nc.Status() == nats.CONNECTED {
			now := o.opts.Now()
			if now.Before(d.pausedUntil) {
				wait = d.pausedUntil.Sub(now)
			} else if !d.stalled {
				d.fill(now)
				d.flushAcks() // stuck or corrupt items finished by fill
				wait = d.nextWait()
			}
			if hw := d.hedge(now); hw >= 0 && (wait < 0 || hw < wait) {
				wait = hw
			}
		}
		if d.serve != nil && d.idleExit(&wait) {
			return nil
		}
		if wait >= 0 {
			timer.Reset(wait)
		}
		var status chan nats.Status
		if d.pub != nil {
			status = d.status
		}
		select {
		case <-d.ctx.Done():
		case <-o.closing:
		case <-o.wake:
		case <-d.resCh:
		case <-o.jsCh:
		case <-timer.C:
		case st := <-status:
			if st == nats.CONNECTED {
				d.pausedUntil = time.Time{}
				d.nsNext = 0 // another server may have the stream's leader
				d.learnMaxPayload()
			}
		}
		if wait >= 0 && !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// nextWait returns how long until the next retry or the end of a global
// pause, or -1 if nothing is scheduled.
func (d *drainer[T]) nextWait() time.Duration {
	now := d.o.opts.Now()
	if now.Before(d.pausedUntil) {
		return d.pausedUntil.Sub(now)
	}
	if d.stalled || len(d.inflight) >= d.o.opts.Window || len(d.retries) == 0 {
		return -1
	}
	w := time.Duration(d.retries[0].next - now.UnixNano())
	if w < 0 {
		w = 0
	}
	return w
}

func (d *drainer[T]) learnMaxPayload() {
	if d.o.opts.MaxPayload == 0 && d.nc != nil {
		if mp := d.nc.MaxPayload(); mp > 0 {
			d.o.maxPayload.Store(mp)
		}
	}
}

// ensureConn takes a share of the connection's publisher (sharedpub.go)
// for the latest JetStream handed over, dropping the previous one (its
// publishes in flight are retried).
func (d *drainer[T]) ensureConn() {
	o := d.o
	o.mu.Lock()
	js := o.js
	o.mu.Unlock()
	if js == d.js && (d.pub != nil || js == nil) {
		return
	}
	d.dropPub()
	d.js = js
	if js == nil || js.Conn() == nil {
		return
	}
	nc := js.Conn()
	pub, err := acquirePub(nc, o.opts.AckTimeout, d.push)
	if err != nil {
		o.log.Error("outbox: cannot use connection", "err", err)
		return
	}
	d.nc, d.pub = nc, pub
	d.status = nc.StatusChanged(nats.CONNECTED)
	d.learnMaxPayload()
}

func (d *drainer[T]) dropPub() {
	if d.pub == nil {
		return
	}
	d.o.mu.Lock()
	for m, f := range d.inflight {
		delete(d.inflight, m)
		d.requeueLocked(f.seg, f.idx, 0)
	}
	d.nBytes, d.nsProbe = 0, nil
	clear(d.sent)
	d.sent, d.hedging = d.sent[:0], nil
	d.o.mu.Unlock()
	d.pub.CleanupPublisher()
	d.nc.RemoveStatusListener(d.status)
	d.pub, d.nc, d.status = nil, nil, nil
}

func (d *drainer[T]) push(r result) {
	d.resMu.Lock()
	d.res = append(d.res, r)
	d.resMu.Unlock()
	select {
	case d.resCh <- struct{}{}:
	default:
	}
}

// requeueLocked puts an item in the retry heap with the given next attempt
// time. o.mu must be held.
func (d *drainer[T]) requeueLocked(seg *segment, idx int, next int64) {
	seg.st[idx] = stWaiting
	if f, ok := seg.fails[int32(idx)]; ok || next != 0 {
		if seg.fails == nil {
			seg.fails = map[int32]fail{}
		}
		f.next = next
		seg.fails[int32(idx)] = f
	}
	heap.Push(&d.retries, retry{next: next, seg: seg, idx: idx})
}

func (d *drainer[T]) backoff(attempts int) time.Duration {
	b := d.o.opts.BackoffBase
	for i := 1; i < attempts && b < d.o.opts.MaxBackoff; i++ {
		b *= 2
	}
	return min(b, d.o.opts.MaxBackoff)
}

// transportFailure pauses all publishing: nothing is the item's fault.
func (d *drainer[T]) transportFailure(err error) {
	if d.o.opts.Now().Before(d.pausedUntil) {
		return
	}
	if d.gback == 0 {
		d.gback = d.o.opts.BackoffBase
	} else {
		d.gback = min(2*d.gback, min(d.o.opts.MaxBackoff, maxTransportBackoff))
	}
	d.pausedUntil = d.o.opts.Now().Add(d.gback)
	d.o.log.Debug("outbox: transport failure; pausing", "err", err, "for", d.gback)
}

// isTransport reports whether err says nothing about the item: no
// connection, no ack in time, the publisher closed, JetStream temporarily
// unavailable.
func isTransport(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code == 503 || apiErr.Code == 408
	}
	for _, t := range []error{nats.ErrDisconnected, nats.ErrConnectionClosed, nats.ErrConnectionReconnecting,
		nats.ErrConnectionDraining, nats.ErrTimeout, nats.ErrNoServers, nats.ErrStaleConnection,
		jetstream.ErrAsyncPublishTimeout, jetstream.ErrJetStreamPublisherClosed,
		context.DeadlineExceeded, context.Canceled} {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// isNoStream reports whether no stream answered for the subject: none
// captures it (not provisioned yet), or the one that does has no leader
// for the moment (a cluster electing one after a node died).
func isNoStream(err error) bool {
	return errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)
}

// No stream answering is neither the item's fault nor the connection's:
// the stream is missing (a deployment not provisioned yet: hours) or
// leaderless (a cluster electing a new leader: seconds). Such an item is
// not counted as an attempt and never goes stuck; it is held, and the
// drain probes with one held item at a time, at nsBack intervals: from
// BackoffBase doubling to 5 s for the first 2 minutes of trouble, then to
// 30 s (both at most MaxBackoff). The first held item acknowledged releases
// every held item at once. A reconnect probes at once. Items that never
// failed keep flowing meanwhile (another stream's, or the same stream's
// once it answers), so one subject without a stream blocks nothing else.
const (
	noStreamFastCap    = 5 * time.Second
	noStreamFastPeriod = 2 * time.Minute
)

// noStreamCap is the largest probe interval now.
func (d *drainer[T]) noStreamCap(now time.Time) time.Duration {
	c := noStreamFastCap
	if now.Sub(d.nsSince) >= noStreamFastPeriod {
		c = maxTransportBackoff
	}
	return max(min(c, d.o.opts.MaxBackoff), d.o.opts.BackoffBase)
}

// noStreamFailure holds an item that found no stream answering (f is its
// flight, nil when it failed before being sent). o.mu must be held.
func (d *drainer[T]) noStreamFailureLocked(seg *segment, idx int, f *flight, err error) {
	now := d.o.opts.Now()
	probe := f != nil && f == d.nsProbe
	if probe {
		d.nsProbe = nil
	}
	switch {
	case d.nsBack == 0:
		d.nsBack, d.nsSince = d.o.opts.BackoffBase, now
		d.nsNext = now.Add(d.nsBack).UnixNano()
		d.o.log.Warn("outbox: no stream answers; holding such items and probing", "err", err, "every", d.nsBack)
	case probe:
		d.nsBack = min(2*d.nsBack, d.noStreamCap(now))
		d.nsNext = now.Add(d.nsBack).UnixNano()
		d.o.log.Debug("outbox: probe found no stream", "err", err, "next_in", d.nsBack)
	}
	if seg.fails == nil {
		seg.fails = map[int32]fail{}
	}
	fl := seg.fails[int32(idx)]
	fl.noStream = true
	seg.fails[int32(idx)] = fl
	d.requeueLocked(seg, idx, max(d.nsNext, now.UnixNano()+1))
}

// holdLocked reports whether a held item (one that found no stream) must
// wait, requeueing it; otherwise it may go, as the probe when probe is
// true. o.mu must be held.
func (d *drainer[T]) holdLocked(seg *segment, idx int, nowNs int64, probeTaken bool) (hold, probe bool) {
	f, ok := seg.fails[int32(idx)]
	if !ok || !f.noStream {
		return false, false
	}
	if d.nsBack == 0 {
		return false, false // released
	}
	if d.nsProbe != nil || probeTaken || nowNs < d.nsNext {
		d.requeueLocked(seg, idx, max(d.nsNext, nowNs+int64(d.nsBack)))
		return true, false
	}
	return false, true
}

// releaseLocked ends the trouble: a held item was acknowledged, so the
// stream answers again; every held item is due now. o.mu must be held.
func (d *drainer[T]) releaseLocked(now int64) {
	if d.nsBack == 0 {
		return
	}
	d.o.log.Info("outbox: a stream answers again; releasing held items", "held_for", d.o.opts.Now().Sub(d.nsSince).Round(time.Millisecond))
	d.nsBack, d.nsNext, d.nsSince, d.nsProbe = 0, 0, time.Time{}, nil
	changed := false
	for i := range d.retries {
		r := &d.retries[i]
		if f, ok := r.seg.fails[int32(r.idx)]; ok && f.noStream && r.next > now {
			r.next, f.next = now, now
			r.seg.fails[int32(r.idx)] = f
			changed = true
		}
	}
	if changed {
		heap.Init(&d.retries)
	}
}

// isPermanent reports whether retrying can never help.
func isPermanent(err error) bool {
	return errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, ErrTooLarge)
}

type cand struct {
	seg   *segment
	idx   int
	off   int64
	n     uint32
	probe bool // a held item sent as the probe (noStreamFailure)
}

// fill publishes due retries, then fresh items in order, while the window
// has room.
func (d *drainer[T]) fill(now time.Time) {
	o := d.o
	nowNs := now.UnixNano()
	count, bytes := len(d.inflight), d.nBytes
	room := func() bool {
		return count < o.opts.Window && (bytes < o.opts.MaxInflightBytes || count == 0)
	}
	batch := d.batch[:0]
	probeTaken := false
	take := func(s *segment, i int) {
		hold, probe := d.holdLocked(s, i, nowNs, probeTaken)
		if hold {
			return
		}
		probeTaken = probeTaken || probe
		s.st[i] = stInflight
		c := cand{seg: s, idx: i, off: s.off(i), n: s.n(i), probe: probe}
		batch = append(batch, c)
		count++
		bytes += int(c.n)
	}
	o.mu.Lock()
	for room() && len(d.retries) > 0 {
		top := d.retries[0]
		if top.next > nowNs {
			break
		}
		heap.Pop(&d.retries)
		if top.seg.removed || top.seg.st[top.idx] != stWaiting {
			continue
		}
		take(top.seg, top.idx)
	}
	for room() {
		s := d.cursorSeg()
		if s == nil {
			break
		}
		if d.curIdx >= s.count() {
			if !d.advanceSeg(s) {
				break
			}
			continue
		}
		i := d.curIdx
		d.curIdx++
		if s.st[i] != stPending {
			continue
		}
		if f, ok := s.fails[int32(i)]; ok && f.next > nowNs {
			d.requeueLocked(s, i, f.next)
			continue
		}
		take(s, i)
	}
	o.mu.Unlock()
	d.publish(batch)
	clear(batch)
	d.batch = batch[:0]
}

// cursorSeg returns the segment under the cursor (the first one at or after
// curSeq). o.mu must be held.
func (d *drainer[T]) cursorSeg() *segment {
	for _, s := range d.o.segs {
		if s.seq >= d.curSeq {
			if s.seq != d.curSeq {
				d.curSeq, d.curIdx = s.seq, 0
			}
			return s
		}
	}
	return nil
}

// advanceSeg moves the cursor past s if a later segment exists.
func (d *drainer[T]) advanceSeg(s *segment) bool {
	for _, t := range d.o.segs {
		if t.seq > s.seq {
			d.curSeq, d.curIdx = t.seq, 0
			return true
		}
	}
	return false
}

// readChunk bounds one read of contiguous records. The published items
// keep their chunk alive until acknowledged: small chunks pin little more
// than the bytes in flight.
const readChunk = 64 << 10

// publish reads the candidates' records (contiguous ones with one read)
// and publishes them.
func (d *drainer[T]) publish(batch []cand) {
	for i := 0; i < len(batch); {
		c := batch[i]
		if c.seg.legacy {
			d.publishOne(c, nil)
			i++
			continue
		}
		j := i + 1
		end := c.off + int64(c.n)
		for j < len(batch) && batch[j].seg == c.seg && batch[j].off == end && end-c.off < readChunk {
			end += int64(batch[j].n)
			j++
		}
		buf, err := d.readAt(c.seg, c.off, int(end-c.off))
		for k := i; k < j; k++ {
			if err != nil {
				d.itemError(batch[k], nil, nil, fmt.Errorf("outbox: read %s: %w", c.seg.path, err))
				continue
			}
			lo := batch[k].off - c.off
			d.publishOne(batch[k], buf[lo:lo+int64(batch[k].n)])
		}
		i = j
	}
}

func (d *drainer[T]) readAt(s *segment, off int64, n int) ([]byte, error) {
	if s.rf == nil {
		f, err := os.Open(s.path)
		if err != nil {
			return nil, err
		}
		s.rf = f
	}
	buf := make([]byte, n)
	_, err := s.rf.ReadAt(buf, off)
	return buf, err
}

// publishOne publishes one item; raw is its record (nil for legacy items).
func (d *drainer[T]) publishOne(c cand, raw []byte) {
	o := d.o
	var id, subj string
	var data []byte
	if c.seg.legacy {
		b, err := os.ReadFile(c.seg.lpaths[c.idx])
		if err != nil {
			d.itemError(c, nil, nil, fmt.Errorf("outbox: read legacy item: %w", err))
			return
		}
		id = legacyID(c.seg.lpaths[c.idx])
		subj, data = c.seg.lsubj[c.idx], b
	} else {
		rec, err := decodeRecord(raw, o.maxBody())
		if err != nil {
			d.corruptAtDrain(c, raw, err)
			return
		}
		if string(rec.subj) != d.subj { // items of an outbox share few subjects
			d.subj = string(rec.subj)
		}
		id, subj, data = rec.id, d.subj, rec.data
	}
	f := &flight{seg: c.seg, idx: c.idx, id: id, orig: data, size: int(c.n)}
	if d.stalled || d.o.opts.Now().Before(d.pausedUntil) {
		d.requeue(c, 0)
		return
	}
	out := data
	if o.opts.Prepare != nil {
		var v T
		err := json.Unmarshal(data, &v)
		if err == nil {
			v, err = o.opts.Prepare(d.ctx, id, v)
		}
		if err == nil {
			out, err = encodeJSON(v)
		}
		if err != nil {
			d.itemError(c, f, nil, fmt.Errorf("outbox: prepare: %w", err))
			return
		}
	}
	if mp := d.nc.MaxPayload(); mp > 0 && int64(msgSize(id, out)) > mp {
		d.itemError(c, f, nil, fmt.Errorf("%w: %d bytes with headers, server max payload %d", ErrTooLarge, msgSize(id, out), mp))
		return
	}
	m := &nats.Msg{Subject: subj, Data: out, Header: nats.Header{jetstream.MsgIDHeader: []string{id}}}
	f.m, f.sent = m, o.opts.Now().UnixNano()
	d.inflight[m] = f
	d.nBytes += f.size
	_, err := d.pub.PublishMsgAsync(m)
	if err == nil {
		if c.probe {
			d.nsProbe = f
		}
		d.sent = append(d.sent, m)
		return
	}
	delete(d.inflight, m)
	d.nBytes -= f.size
	switch {
	case errors.Is(err, jetstream.ErrTooManyStalledMsgs):
		d.stalled = true // backpressure: wait for acks, not an attempt
		d.requeue(c, 0)
	case isTransport(err):
		d.transportFailure(err)
		d.requeue(c, 0)
	default:
		d.itemError(c, f, nil, err)
	}
}

func legacyID(path string) string {
	b := filepath.Base(path)
	return b[:len(b)-len(legacySuffix)]
}

func (d *drainer[T]) requeue(c cand, next int64) {
	d.o.mu.Lock()
	d.requeueLocked(c.seg, c.idx, next)
	d.o.mu.Unlock()
}

// itemError handles a failure that is the item's fault: back off, or move
// to stuck/ after MaxAttempts (at once for a permanent failure). f may be
// nil when the item could not even be read.
func (d *drainer[T]) itemError(c cand, f *flight, _ *nats.Msg, err error) {
	o := d.o
	o.mu.Lock()
	if isNoStream(err) {
		d.noStreamFailureLocked(c.seg, c.idx, f, err)
		o.mu.Unlock()
		return
	}
	if c.seg.fails == nil {
		c.seg.fails = map[int32]fail{}
	}
	fl := c.seg.fails[int32(c.idx)]
	if fl.attempts < 255 {
		fl.attempts++
	}
	c.seg.fails[int32(c.idx)] = fl
	attempts := int(fl.attempts)
	stuck := f != nil && (attempts >= o.opts.MaxAttempts || isPermanent(err))
	if !stuck {
		d.requeueLocked(c.seg, c.idx, o.opts.Now().Add(d.backoff(attempts)).UnixNano())
	}
	o.mu.Unlock()
	o.log.Warn("outbox: publish failed", "attempt", attempts, "err", err)
	if stuck {
		d.moveStuck(f, err)
	}
}

// moveStuck preserves an item under stuck/ (as <id>.json, the legacy
// format, so moving it back into the outbox directory re-queues it) and
// marks it done.
func (d *drainer[T]) moveStuck(f *flight, cause error) {
	o := d.o
	var err error
	if f.seg.legacy {
		err = fsutil.RenameDurable(f.seg.lpaths[f.idx], filepath.Join(o.stuckDir, filepath.Base(f.seg.lpaths[f.idx])))
	} else {
		err = fsutil.WriteFileAtomic(filepath.Join(o.stuckDir, f.id+legacySuffix), f.orig, 0o600)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		o.log.Error("outbox: cannot move item to stuck/; will retry", "id", f.id, "err", err)
		d.requeueLocked(f.seg, f.idx, o.opts.Now().Add(o.opts.MaxBackoff).UnixNano())
		return
	}
	o.log.Warn("outbox: item moved to stuck/", "id", f.id, "err", cause)
	d.doneLocked(f.seg, f.idx)
	o.stuck++
}

// corruptAtDrain handles a record that no longer reads back correctly.
func (d *drainer[T]) corruptAtDrain(c cand, raw []byte, err error) {
	d.o.saveCorrupt(c.seg.path, c.off, raw, err)
	d.o.mu.Lock()
	d.doneLocked(c.seg, c.idx)
	d.o.mu.Unlock()
}

// doneLocked marks an item finished (acked, stuck or corrupt). o.mu must
// be held.
func (d *drainer[T]) doneLocked(s *segment, idx int) {
	s.st[idx] = stDone
	delete(s.fails, int32(idx))
	s.done++
	d.o.pending--
	d.o.pendB -= int64(s.n(idx))
	if !s.legacy {
		e := ackEntry(s.seq, uint32(idx))
		s.acks = append(s.acks, e[:]...)
		d.acksDirty = true
	}
	d.o.progressLocked()
}

// handleResults applies the acks and errors delivered by the callbacks.
func (d *drainer[T]) handleResults() {
	d.resMu.Lock()
	res := d.res
	d.res = d.spare[:0]
	d.resMu.Unlock()
	if len(res) == 0 {
		d.spare = res
		return
	}
	o := d.o
	var acked, failed []*flight
	var errs []error
	var transportErr error
	var lostBefore int64 // publishes sent before this are presumed lost (hedging)
	o.mu.Lock()
	for _, r := range res {
		f := d.inflight[r.msg]
		if f == nil {
			continue // a previous publisher's, or already handled
		}
		delete(d.inflight, r.msg)
		d.nBytes -= f.size
		if f.twin != nil {
			if d.pairAnswered(f, r.err, &lostBefore) {
				continue
			}
		}
		if f == d.nsProbe && (r.err == nil || !isNoStream(r.err)) {
			d.nsProbe = nil // answered otherwise: the next probe may go
		}
		switch {
		case r.err == nil:
			if fl, ok := f.seg.fails[int32(f.idx)]; ok && fl.noStream {
				d.releaseLocked(o.opts.Now().UnixNano())
			}
			d.doneLocked(f.seg, f.idx)
			acked = append(acked, f)
		case isTransport(r.err):
			d.requeueLocked(f.seg, f.idx, 0)
			transportErr = r.err
		case isNoStream(r.err):
			d.noStreamFailureLocked(f.seg, f.idx, f, r.err)
		default:
			failed = append(failed, f)
			errs = append(errs, r.err)
		}
	}
	if lostBefore != 0 {
		d.resendBeforeLocked(lostBefore)
	}
	o.mu.Unlock()
	clear(res)
	d.spare = res[:0]
	d.stalled = false
	if len(acked) > 0 {
		d.gback = 0
	}
	if transportErr != nil {
		d.transportFailure(transportErr)
	}
	for i, f := range failed {
		d.itemError(cand{seg: f.seg, idx: f.idx}, f, nil, errs[i])
	}
	d.flushAcks()
	for _, f := range acked {
		if f.seg.legacy {
			if err := os.Remove(f.seg.lpaths[f.idx]); err != nil && !errors.Is(err, os.ErrNotExist) {
				o.log.Warn("outbox: cannot remove acked legacy item", "err", err)
			}
		}
		if o.opts.OnAck != nil {
			var v T
			if err := json.Unmarshal(f.orig, &v); err != nil {
				o.log.Warn("outbox: cannot decode acked item for OnAck", "id", f.id, "err", err)
				continue
			}
			o.opts.OnAck(f.id, v)
		}
	}
}

// flushAcks appends the pending ack entries to each segment's ack file
// (no fsync: a lost ack only means a re-publish, dropped by the server's
// duplicate window).
func (d *drainer[T]) flushAcks() {
	if !d.acksDirty {
		return
	}
	d.acksDirty = false
	d.o.mu.Lock()
	segs := append([]*segment(nil), d.o.segs...)
	d.o.mu.Unlock()
	defer d.refreshLowAt(segs)
	for _, s := range segs {
		if len(s.acks) == 0 {
			continue
		}
		if s.ackf == nil {
			f, err := os.OpenFile(ackPath(s.path), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
			if err != nil {
				d.o.log.Warn("outbox: ack file", "err", err)
				s.acks = s.acks[:0]
				continue
			}
			s.ackf = f
		}
		if _, err := s.ackf.Write(s.acks); err != nil {
			d.o.log.Warn("outbox: ack file", "err", err)
		}
		s.acks = s.acks[:0]
	}
}

// refreshLowAt reads, for each segment whose oldest unfinished record
// changed, that record's enqueue time from the file (Stats.OldestAge).
func (d *drainer[T]) refreshLowAt(segs []*segment) {
	type stale struct {
		s   *segment
		low int
		off int64
		at  int64
		ok  bool
	}
	var list []stale
	o := d.o
	o.mu.Lock()
	for _, s := range segs {
		if !s.legacy && !s.removed && s.advanceLow() && s.lowAtIdx != s.low {
			list = append(list, stale{s: s, low: s.low, off: s.off(s.low)})
		}
	}
	o.mu.Unlock()
	if len(list) == 0 {
		return
	}
	var hdr [recHeaderLen + bodyFixedLen]byte
	for i := range list {
		l := &list[i]
		if l.s.rf == nil {
			f, err := os.Open(l.s.path)
			if err != nil {
				continue
			}
			l.s.rf = f
		}
		if _, err := l.s.rf.ReadAt(hdr[:], l.off); err == nil {
			l.at, l.ok = int64(binary.LittleEndian.Uint64(hdr[recHeaderLen+4:])), true
		}
	}
	o.mu.Lock()
	for _, l := range list {
		if l.ok {
			l.s.setLowAt(l.low, l.at)
		}
	}
	o.mu.Unlock()
}

// gc deletes finished segments (every item acked, stuck or corrupt, and
// the committer no longer appending).
func (d *drainer[T]) gc() {
	o := d.o
	o.mu.Lock()
	var dead []*segment
	keep := o.segs[:0]
	for _, s := range o.segs {
		if !s.active && s.done == s.count() {
			s.removed = true
			dead = append(dead, s)
		} else {
			keep = append(keep, s)
		}
	}
	clear(o.segs[len(keep):])
	o.segs = keep
	o.mu.Unlock()
	for _, s := range dead {
		if s.rf != nil {
			_ = s.rf.Close()
		}
		if s.ackf != nil {
			_ = s.ackf.Close()
		}
		if s.legacy {
			continue
		}
		if err := os.Remove(s.path); err != nil {
			o.log.Warn("outbox: cannot remove finished segment", "err", err)
			continue
		}
		_ = os.Remove(ackPath(s.path))
	}
}

// stop waits up to StopTimeout for the acks in flight, then leaves the
// rest on disk.
func (d *drainer[T]) stop() error {
	timer := time.NewTimer(d.o.opts.StopTimeout)
	defer timer.Stop()
	for len(d.inflight) > 0 {
		d.handleResults()
		if len(d.inflight) == 0 {
			break
		}
		select {
		case <-d.resCh:
		case <-timer.C:
			d.o.log.Warn("outbox: stopping with publishes unacknowledged; they stay on disk", "n", len(d.inflight))
			goto out
		}
	}
out:
	d.handleResults()
	d.dropPub()
	d.flushAcks()
	d.gc()
	return nil
}

// Hedging. A publish in flight to a stream leader that crashes gets no
// answer at all, and waits for its ack timeout (30 s in the agent) before
// it is sent again. So when the oldest publish in flight has waited
// Options.HedgeAfter, a copy of it (same Nats-Msg-Id: the stream's
// duplicate window keeps it from being stored twice) is sent; one copy at
// a time. Whichever is answered first settles the item. When the copy is
// acknowledged before the first publish, the path to the stream works
// again while what went before it got no answer: every publish sent before
// the copy is presumed lost and sent again at once, rather than after its
// ack timeout (a publish that was not lost is then dropped as a duplicate).

// hedge sends a copy of the oldest publish in flight if it has waited
// HedgeAfter and no copy is in flight; it returns how long until that is
// due, or -1 if nothing is to be waited for.
func (d *drainer[T]) hedge(now time.Time) time.Duration {
	o := d.o
	if o.opts.HedgeAfter <= 0 || d.hedging != nil || d.stalled || now.Before(d.pausedUntil) {
		return -1
	}
	f := d.oldestSent()
	if f == nil {
		return -1
	}
	nowNs := now.UnixNano()
	due := max(f.sent+int64(o.opts.HedgeAfter), d.hedgeNext)
	if nowNs < due {
		return time.Duration(due - nowNs)
	}
	m := &nats.Msg{Subject: f.m.Subject, Data: f.m.Data, Header: nats.Header{jetstream.MsgIDHeader: []string{f.id}}}
	c := &flight{seg: f.seg, idx: f.idx, id: f.id, orig: f.orig, size: f.size, m: m, sent: nowNs, twin: f.m, hedge: true}
	f.twin = m
	d.inflight[m] = c
	d.nBytes += c.size
	d.hedging = c
	if _, err := d.pub.PublishMsgAsync(m); err != nil {
		delete(d.inflight, m)
		d.nBytes -= c.size
		f.twin, d.hedging = nil, nil
		d.hedgeNext = nowNs + int64(o.opts.HedgeAfter)
		return -1
	}
	o.log.Debug("outbox: no answer yet; sending a copy", "id", f.id, "after", time.Duration(nowNs-f.sent))
	return -1
}

// oldestSent returns the oldest first publish still in flight, dropping
// the entries of sent that are no longer in flight from its front (and
// from all of it when it has grown well past what is in flight).
func (d *drainer[T]) oldestSent() *flight {
	for len(d.sent) > 0 {
		if f := d.inflight[d.sent[0]]; f != nil {
			if len(d.sent) > 2*len(d.inflight)+64 {
				kept := d.sent[:0]
				for _, m := range d.sent {
					if d.inflight[m] != nil {
						kept = append(kept, m)
					}
				}
				clear(d.sent[len(kept):])
				d.sent = kept
			}
			return f
		}
		d.sent[0] = nil
		d.sent = d.sent[1:]
	}
	return nil
}

// pairAnswered handles the answer (err) to one of a hedged item's two
// publishes, f, already taken out of flight; the other one's answer, if
// it comes, is ignored. It returns true when the answer needs no more
// handling: a copy that failed while the first publish is still in
// flight. When the copy was acknowledged first, *lostBefore is set to
// when it was sent. o.mu must be held.
func (d *drainer[T]) pairAnswered(f *flight, err error, lostBefore *int64) bool {
	twin := d.inflight[f.twin]
	if f.hedge {
		d.hedging = nil
		if err != nil {
			if twin != nil {
				twin.twin = nil // the first publish goes on waiting
				d.hedgeNext = d.o.opts.Now().UnixNano() + int64(d.o.opts.HedgeAfter)
				return true
			}
			return false // cannot happen: a twin's answer removes both
		}
		*lostBefore = max(*lostBefore, f.sent)
	} else if twin != nil && twin.hedge {
		d.hedging = nil
	}
	if twin != nil {
		delete(d.inflight, f.twin)
		d.nBytes -= twin.size
		if twin == d.nsProbe {
			d.nsProbe = f // this answer settles the probe
		}
	}
	return false
}

// resendBeforeLocked sends again, at once, every first publish in flight
// that went out before t: a copy sent after them was acknowledged while
// they were not. o.mu must be held.
func (d *drainer[T]) resendBeforeLocked(t int64) {
	n := 0
	for m, f := range d.inflight {
		if f.hedge || f.sent >= t {
			continue
		}
		delete(d.inflight, m)
		d.nBytes -= f.size
		if f == d.nsProbe {
			d.nsProbe = nil
		}
		// No other pair is in flight: one copy at a time, and the copy
		// acknowledged took its first publish out with it.
		d.requeueLocked(f.seg, f.idx, 0)
		n++
	}
	if n > 0 {
		d.o.log.Info("outbox: a copy was acknowledged before its first publish; sending again what went before it", "n", n)
	}
}
