package outbox

import (
	"context"
	"time"
)

// drainAll waits until ob holds nothing pending (old code: polls Stats).
func drainAll[T any](ctx context.Context, ob *Outbox[T]) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for ob.Stats().Pending != 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
