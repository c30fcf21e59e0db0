package agent

import (
	"context"
	"sync"
)

// limiter is a FIFO counting semaphore whose limit can change while waiters
// queue. Waiters are served strictly in arrival order: a later arrival never
// overtakes an earlier one, even when the limit grows.
type limiter struct {
	mu      sync.Mutex
	limit   int
	running int
	queue   []*waiter
}

type waiter struct {
	ready chan struct{}
	done  bool // granted or abandoned
}

func newLimiter(n int) *limiter {
	if n < 1 {
		n = 1
	}
	return &limiter{limit: n}
}

// acquire waits for a slot in FIFO order; it returns ctx's error, holding no
// slot, if ctx ends first.
func (l *limiter) acquire(ctx context.Context) error {
	return l.wait(ctx, l.reserve())
}

// reserve takes a place in the queue now, without waiting: the place
// decides the order in which wait is served, so a caller can reserve in
// arrival order and wait later on another goroutine. A reservation must be
// passed to wait or to cancel.
func (l *limiter) reserve() *waiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := &waiter{ready: make(chan struct{})}
	if len(l.queue) == 0 && l.running < l.limit {
		l.running++
		w.done = true
		close(w.ready)
		return w
	}
	l.queue = append(l.queue, w)
	return w
}

// cancel gives up a reservation that will not be waited for.
func (l *limiter) cancel(w *waiter) {
	ctx, c := context.WithCancel(context.Background())
	c()
	if l.wait(ctx, w) == nil {
		l.release()
	}
}

// wait waits for reservation w to be granted; it returns ctx's error,
// holding no slot, if ctx ends first.
func (l *limiter) wait(ctx context.Context, w *waiter) error {
	select {
	case <-w.ready:
		return nil
	default:
	}
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		defer l.mu.Unlock()
		select {
		case <-w.ready:
			// Granted just as ctx ended: hand the slot on.
			l.running--
			l.grant()
		default:
			w.done = true
			for i, q := range l.queue {
				if q == w {
					l.queue = append(l.queue[:i], l.queue[i+1:]...)
					break
				}
			}
		}
		return ctx.Err()
	}
}

// release returns a slot taken by acquire.
func (l *limiter) release() {
	l.mu.Lock()
	l.running--
	l.grant()
	l.mu.Unlock()
}

// setLimit changes the limit; a larger limit admits queued waiters at once,
// a smaller one lets running holders finish.
func (l *limiter) setLimit(n int) {
	if n < 1 {
		n = 1
	}
	l.mu.Lock()
	l.limit = n
	l.grant()
	l.mu.Unlock()
}

// stats returns the number of holders and waiters.
func (l *limiter) stats() (running, queued int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.running, len(l.queue)
}

// grant admits queued waiters while slots are free. l.mu must be held.
func (l *limiter) grant() {
	for len(l.queue) > 0 && l.running < l.limit {
		w := l.queue[0]
		l.queue = l.queue[1:]
		w.done = true
		l.running++
		close(w.ready)
	}
}
