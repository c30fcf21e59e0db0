package outbox

import "context"

// Flush waits until every item whose Enqueue returned before the call is
// finished, and returns nil; or returns ctx.Err() when ctx ends first, or
// ErrClosed when the outbox is or gets closed. An item is finished when
// JetStream has acknowledged it, or when it was moved to stuck/ (after
// MaxAttempts item failures, or a permanent one) or to corrupt/ (it no
// longer reads back): those two are never delivered by this outbox, so
// Flush does not wait for them; Stats.Stuck and Stats.Corrupt count them
// (compare them before and after Flush to learn whether any item of the
// flushed ones failed).
//
// Items enqueued during Flush may be finished too but are not waited for.
// Flush does not publish by itself: Run must be running (with a
// connection) for it to return nil. It costs nothing while it waits: it is
// woken by the drain when items are finished, it does not poll.
func (o *Outbox[T]) Flush(ctx context.Context) error {
	o.encMu.RLock()
	closed := o.closed
	o.encMu.RUnlock()
	if closed {
		return ErrClosed
	}
	o.mu.Lock()
	var mark position
	if n := len(o.segs); n > 0 {
		last := o.segs[n-1]
		mark = position{seq: last.seq, idx: last.count()}
	}
	o.mu.Unlock()
	for {
		o.mu.Lock()
		if o.finishedLocked(mark) {
			o.mu.Unlock()
			return nil
		}
		if o.progress == nil {
			o.progress = make(chan struct{})
		}
		ch := o.progress
		o.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-o.closing:
			return ErrClosed
		}
	}
}

// position is the place of an item: its segment and its index there.
type position struct {
	seq uint64
	idx int
}

// finishedLocked reports whether every item before mark is finished.
// o.mu must be held.
func (o *Outbox[T]) finishedLocked(mark position) bool {
	for _, s := range o.segs {
		if s.seq > mark.seq {
			return true
		}
		if s.advanceLow() {
			return s.seq == mark.seq && s.low >= mark.idx
		}
	}
	return true
}

// progressLocked wakes the Flush calls waiting: items were finished.
// o.mu must be held.
func (o *Outbox[T]) progressLocked() {
	if o.progress != nil {
		close(o.progress)
		o.progress = nil
	}
}
