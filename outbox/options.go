package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of Options.
const (
	DefaultWindow           = 4096              // In-flight publishes.
	DefaultMaxInflightBytes = 16 << 20          // In-flight bytes.
	DefaultBackoffBase      = time.Second       // First per-item backoff.
	DefaultMaxBackoff       = 300 * time.Second // Largest per-item backoff.
	DefaultMaxAttempts      = 10                // Item failures before stuck/.
	DefaultAckTimeout       = 30 * time.Second  // Wait for one PubAck.
	DefaultStopTimeout      = 5 * time.Second   // Wait for in-flight acks when Run ends.
	DefaultIdleLinger       = 10 * time.Second  // Serve: an empty outbox's drain goroutine lingers.
	DefaultHedgeAfter       = 5 * time.Second   // Unanswered publish: send a copy.
	DefaultSegmentBytes     = 8 << 20           // Segment size before rolling.
	DefaultMaxItemBytes     = 64 << 20          // Hard limit on one encoded item.
	DefaultMaxBytes         = 1 << 30           // Bound on the pending items' bytes.
	defaultMaxPayload       = 1 << 20           // NATS default, until the server says.
	maxTransportBackoff     = 30 * time.Second  // Cap of the global (transport) backoff.
)

// Options configures an Outbox. Dir and Subject are required; every other
// field has a default, applied by New.
type Options[T any] struct {
	// Dir is the outbox directory, created if missing (with stuck/ and
	// corrupt/ inside). One Outbox per directory and per process.
	Dir string
	// Name names the outbox in logs and Stats; default the base name of Dir.
	Name string
	// Subject returns the subject an item is published on. It is called once,
	// at Enqueue (an error refuses the item with ErrSubject), and for legacy
	// files when they are opened.
	Subject func(v T) (string, error)
	// JetStream is the connection to publish with. It may be nil: Run then
	// waits until SetJetStream hands one over.
	JetStream jetstream.JetStream
	// MaxPayload is the largest message, headers included, that Enqueue
	// accepts when Prepare is nil. Default: the connected server's
	// max_payload, 1 MiB until a connection has been seen.
	MaxPayload int
	// MaxItemBytes is the largest encoded item Enqueue accepts when Prepare
	// is set (Prepare may shrink it before publishing); default 64 MiB.
	MaxItemBytes int
	// MaxBytes bounds the bytes of the items the outbox holds (accepted,
	// not yet acknowledged, moved to stuck/ or found corrupt), counted as
	// their encoded records on disk. Enqueue refuses an item that would
	// take the total over it with ErrFull; an item is always accepted into
	// an empty outbox, so no item is refused forever. Items already
	// accepted are never dropped to make room. Default DefaultMaxBytes
	// (1 GiB).
	MaxBytes int64
	// Window is the number of publishes in flight (sent, not yet acked);
	// default 4096.
	Window int
	// MaxInflightBytes bounds the bytes in flight; default 16 MiB. One item
	// is always allowed.
	MaxInflightBytes int
	// BackoffBase is the first backoff of a failing item; it doubles per
	// failure up to MaxBackoff. Defaults 1 s and 300 s.
	BackoffBase time.Duration
	// MaxBackoff is the largest per-item backoff; default 300 s.
	MaxBackoff time.Duration
	// MaxAttempts is the number of item failures after which an item moves
	// to stuck/; default 10. Transport failures do not count.
	MaxAttempts int
	// AckTimeout is how long one publish waits for its PubAck before it
	// counts as a transport failure; default 30 s.
	AckTimeout time.Duration
	// StopTimeout is how long the end of Run (ctx done or Close) waits for
	// the acks of publishes in flight; default 5 s. Unacked items stay on disk.
	StopTimeout time.Duration
	// HedgeAfter is how long the oldest publish in flight waits for its
	// ack before a copy of it is sent (same Nats-Msg-Id), one copy at a
	// time; a copy acknowledged first has what was sent before it sent
	// again at once instead of after AckTimeout (see drain.go, Hedging).
	// Default 5 s; negative turns hedging off.
	HedgeAfter time.Duration
	// IdleLinger is how long Serve's drain goroutine stays once the outbox
	// is empty and every ack is in, before it ends (with its share of the
	// connection's publisher); default 10 s. Run ignores it.
	IdleLinger time.Duration
	// SegmentBytes is the size at which the active segment file is closed
	// and a new one started; default 8 MiB.
	SegmentBytes int64
	// Logger receives warnings (corrupt items, stuck items, I/O errors);
	// default slog.Default().
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// OnAck, if set, is called on the drain goroutine after an item has been
	// acknowledged by JetStream and removed from the outbox, with the item as
	// enqueued (not as prepared). It must not block.
	OnAck func(id string, v T)
	// Prepare, if set, is called on the drain goroutine before each publish
	// attempt of an item and may return a transformed item to publish (e.g.
	// with large output offloaded to an object store). An error counts as a
	// failed attempt of that item. The stored item is never changed.
	Prepare func(ctx context.Context, id string, v T) (T, error)

	// writeFile, if set, replaces (*os.File).Write for segment appends
	// (fault injection in tests).
	writeFile func(f *os.File, b []byte) (int, error)
}

func (o *Options[T]) setDefaults() {
	if o.Name == "" && o.Dir != "" {
		o.Name = filepath.Base(o.Dir)
	}
	if o.MaxItemBytes == 0 {
		o.MaxItemBytes = DefaultMaxItemBytes
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Window == 0 {
		o.Window = DefaultWindow
	}
	if o.MaxInflightBytes == 0 {
		o.MaxInflightBytes = DefaultMaxInflightBytes
	}
	if o.BackoffBase == 0 {
		o.BackoffBase = DefaultBackoffBase
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.AckTimeout == 0 {
		o.AckTimeout = DefaultAckTimeout
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = DefaultStopTimeout
	}
	if o.SegmentBytes == 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.IdleLinger == 0 {
		o.IdleLinger = DefaultIdleLinger
	}
	if o.HedgeAfter == 0 {
		o.HedgeAfter = DefaultHedgeAfter
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.writeFile == nil {
		o.writeFile = (*os.File).Write
	}
}

// Validate reports the first invalid field, as an error wrapping
// ErrInvalidOptions. New calls it after applying the defaults.
func (o *Options[T]) Validate() error {
	var err error
	switch {
	case o.Dir == "":
		err = errors.New("Dir is empty")
	case o.Subject == nil:
		err = errors.New("Subject is nil")
	case o.MaxPayload < 0:
		err = errors.New("MaxPayload is negative")
	case o.MaxItemBytes < 0 || o.MaxItemBytes > 1<<30:
		err = errors.New("MaxItemBytes out of range (0..1 GiB)")
	case o.MaxBytes < 0:
		err = errors.New("MaxBytes is negative")
	case o.Window < 0, o.MaxInflightBytes < 0, o.MaxAttempts < 0:
		err = errors.New("Window, MaxInflightBytes and MaxAttempts must not be negative")
	case o.BackoffBase < 0 || o.MaxBackoff < o.BackoffBase:
		err = errors.New("need 0 <= BackoffBase <= MaxBackoff")
	case o.AckTimeout < 0 || o.StopTimeout < 0 || o.SegmentBytes < 0 || o.IdleLinger < 0:
		err = errors.New("AckTimeout, StopTimeout, SegmentBytes and IdleLinger must not be negative")
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	return nil
}
