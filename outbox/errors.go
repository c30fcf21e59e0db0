package outbox

import (
	"errors"
	"fmt"
	"net"
)

// ErrClosed is returned by Enqueue, Run and a second Close after Close. It
// wraps net.ErrClosed.
var ErrClosed = fmt.Errorf("outbox: closed: %w", net.ErrClosed)

// ErrTooLarge is returned by Enqueue for an item whose encoding (with the
// Nats-Msg-Id header) is larger than the maximum payload; nothing is stored.
var ErrTooLarge = errors.New("outbox: item too large")

// ErrFull is wrapped by the error of Enqueue when storing the item would
// take the bytes the outbox holds over Options.MaxBytes; nothing is stored.
// It is temporary: the outbox accepts items again as it drains. The items
// already accepted are kept.
var ErrFull = errors.New("outbox: full")

// ErrSubject is returned by Enqueue when Options.Subject fails or returns an
// invalid subject; nothing is stored.
var ErrSubject = errors.New("outbox: bad subject")

// ErrEncode is returned by Enqueue when the item cannot be encoded as JSON;
// nothing is stored.
var ErrEncode = errors.New("outbox: cannot encode item")

// ErrInvalidOptions is wrapped by the errors of Options.Validate.
var ErrInvalidOptions = errors.New("outbox: invalid options")

// ErrLocked is wrapped by New when another Outbox, in this process or
// another, has the directory open: two would corrupt each other's files.
var ErrLocked = errors.New("outbox: directory in use by another outbox")

// ErrRunning is returned by Run when another Run of the same outbox is active.
var ErrRunning = errors.New("outbox: already running")

// ErrCorrupt is wrapped by every *CorruptError.
var ErrCorrupt = errors.New("outbox: corrupt item")

// CorruptError describes unreadable bytes found in the outbox (a record
// with a bad checksum, a truncated tail, an undecodable legacy file). The
// bytes were moved to MovedTo under corrupt/ and are not delivered. It
// unwraps to ErrCorrupt and to the underlying cause.
type CorruptError struct {
	// Path is the file the bad bytes were found in.
	Path string
	// Offset is where the bad bytes start in Path (0 for a whole file).
	Offset int64
	// MovedTo is where the bad bytes were preserved ("" if that failed).
	MovedTo string
	// Err says what is wrong.
	Err error
}

// Error implements error.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("outbox: corrupt item in %s at offset %d (moved to %q): %v", e.Path, e.Offset, e.MovedTo, e.Err)
}

// Unwrap returns ErrCorrupt and the cause.
func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }
