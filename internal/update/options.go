package update

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/kanade/kanade-agent/signing"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of Options.
const (
	// DefaultAttempts is the number of download attempts of one update.
	DefaultAttempts = 3
	// DefaultAttemptBackoff is the pause after the first failed download
	// attempt; it doubles after each further failure.
	DefaultAttemptBackoff = time.Second
	// DefaultDownloadTimeout bounds one download attempt.
	DefaultDownloadTimeout = 10 * time.Minute
	// DefaultRetryInterval is how long Run waits before it tries a failed
	// update again; it doubles after each further failure up to
	// DefaultMaxRetryInterval.
	DefaultRetryInterval = 5 * time.Minute
	// DefaultMaxRetryInterval caps Run's retry interval.
	DefaultMaxRetryInterval = time.Hour
	// DefaultMaxSize is the largest release accepted, in bytes.
	DefaultMaxSize = 512 << 20
)

// Options configures an Updater. Zero fields take the documented default.
type Options struct {
	// Exe is the path of the running binary. Default: os.Executable().
	// Staging files, <exe>.new, <exe>.old and <exe>.last-good live beside it
	// (on Linux os.Executable resolves symlinks: the real file is swapped).
	Exe string
	// StateDir holds the state file (attempt record, quarantine list, boot
	// sentinel, pending events; see doc.go). Required, absolute; the agent
	// passes <data-dir>/update. Boot must be given the same directory.
	StateDir string
	// CurrentVersion is the version of the running binary. Required.
	CurrentVersion string
	// JetStream reaches the agent_releases object store. Required.
	JetStream jetstream.JetStream
	// Keyring is the release keyring. When it is not nil (even empty) or
	// RequireSignature is set, every release must carry a valid signature
	// by one of its keys (see VerifyRelease), and an empty or nil keyring
	// then refuses every release (ErrNoReleaseKeys). Nil with
	// RequireSignature unset: signatures are not checked (the SHA-256
	// digest always is).
	Keyring *signing.Keyring
	// RequireSignature requires a valid release signature even when
	// Keyring is nil. The agent sets it when it enforces command
	// signatures: an agent that refuses unsigned commands must not install
	// an unsigned binary.
	RequireSignature bool
	// AllowDowngrade lets the updater install a release whose version is
	// lower than CurrentVersion, or cannot be ordered against it, without
	// the release's signed allow-downgrade flag. Off by default: a signed
	// old (vulnerable) release is not installed over a newer one.
	AllowDowngrade bool
	// Logger receives the updater's logs. Default: slog.Default().
	Logger *slog.Logger
	// Now returns the current time. Default: time.Now.
	Now func() time.Time
	// Rand returns a uniform random number in [0, n) for n > 0; it draws
	// the jitter delay. Default: math/rand/v2.Int64N.
	Rand func(n int64) int64
	// Attempts is the number of download attempts. Default DefaultAttempts (3).
	Attempts int
	// AttemptBackoff is the pause after the first failed attempt, doubled
	// after each further one. Default DefaultAttemptBackoff (1 s).
	AttemptBackoff time.Duration
	// DownloadTimeout bounds one download attempt (nats.go would otherwise
	// bound a whole object Get by its 5 s default API timeout). Default
	// DefaultDownloadTimeout (10 min).
	DownloadTimeout time.Duration
	// RetryInterval is Run's first pause after a failed update, doubled
	// after each further failure up to MaxRetryInterval. Default
	// DefaultRetryInterval (5 min).
	RetryInterval time.Duration
	// MaxRetryInterval caps RetryInterval's doubling. Default
	// DefaultMaxRetryInterval (1 h).
	MaxRetryInterval time.Duration
	// MaxSize is the largest release accepted, in bytes. Default
	// DefaultMaxSize (512 MiB).
	MaxSize int64
}

func (o *Options) setDefaults() {
	if o.Exe == "" {
		if exe, err := os.Executable(); err == nil {
			o.Exe = exe
		}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Int64N
	}
	if o.Attempts <= 0 {
		o.Attempts = DefaultAttempts
	}
	if o.AttemptBackoff <= 0 {
		o.AttemptBackoff = DefaultAttemptBackoff
	}
	if o.DownloadTimeout <= 0 {
		o.DownloadTimeout = DefaultDownloadTimeout
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = DefaultRetryInterval
	}
	if o.MaxRetryInterval <= 0 {
		o.MaxRetryInterval = DefaultMaxRetryInterval
	}
	if o.MaxRetryInterval < o.RetryInterval {
		o.MaxRetryInterval = o.RetryInterval
	}
	if o.MaxSize <= 0 {
		o.MaxSize = DefaultMaxSize
	}
}

// Validate reports the first problem with o after defaults are applied.
func (o *Options) Validate() error {
	switch {
	case o.Exe == "":
		return fmt.Errorf("%w: Exe is empty and os.Executable failed", ErrInvalidOptions)
	case !filepath.IsAbs(o.Exe):
		return fmt.Errorf("%w: Exe %q is not an absolute path", ErrInvalidOptions, o.Exe)
	case o.StateDir == "":
		return fmt.Errorf("%w: StateDir is required", ErrInvalidOptions)
	case !filepath.IsAbs(o.StateDir):
		return fmt.Errorf("%w: StateDir %q is not an absolute path", ErrInvalidOptions, o.StateDir)
	case o.CurrentVersion == "":
		return fmt.Errorf("%w: CurrentVersion is required", ErrInvalidOptions)
	case o.JetStream == nil:
		return fmt.Errorf("%w: JetStream is required", ErrInvalidOptions)
	}
	return nil
}
