package outbox

import "context"

// drainAll waits until ob holds nothing pending.
func drainAll[T any](ctx context.Context, ob *Outbox[T]) error { return ob.Flush(ctx) }
