package ledger

import (
	"errors"
	"fmt"
	"net"
)

// ErrClosed is returned by every method called after Close, and by the
// second call of Close. It wraps net.ErrClosed, so errors.Is(err,
// net.ErrClosed) holds as well.
var ErrClosed = fmt.Errorf("ledger: closed: %w", net.ErrClosed)

// ErrInvalidOptions is wrapped by Open when Options.Validate refuses the
// options.
var ErrInvalidOptions = errors.New("ledger: invalid options")

// ErrInvalidRequestID is wrapped when a request id is empty or longer than
// MaxRequestIDLen bytes.
var ErrInvalidRequestID = errors.New("ledger: invalid request id")

// ErrMetaTooLarge is wrapped by Launching when meta is longer than MaxMetaLen
// bytes.
var ErrMetaTooLarge = errors.New("ledger: metadata too large")

// ErrNotClaimed is wrapped by Launching and Finished when the request id has
// no entry: it was never claimed, or its claim was released.
var ErrNotClaimed = errors.New("ledger: request id not claimed")

// ErrInvalidTransition is wrapped by Launching when the entry is not pending
// (Launching twice, or Launching after Finished).
var ErrInvalidTransition = errors.New("ledger: invalid state transition")

// ErrFailed is wrapped, together with the underlying I/O error, by every
// write after a write, fsync or compaction step failed in a way that leaves
// the log file in an unknown state. The ledger stays failed until it is
// closed and reopened (a failed fsync cannot be retried safely: the kernel
// may have dropped the dirty pages). Reopening recovers the valid prefix.
var ErrFailed = errors.New("ledger: failed")

// ErrLocked is wrapped by Open when another Ledger (in this process or
// another) holds the directory's lock file.
var ErrLocked = errors.New("ledger: directory locked by another ledger")
