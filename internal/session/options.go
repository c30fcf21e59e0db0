package session

import (
	"fmt"
	"log/slog"
	"os"
	"time"
)

// Defaults of Options, upstream's (crates/kanade-agent/src/idle_sampler.rs).
const (
	// DefaultSample is how often the helper reads the idle time and prints it.
	DefaultSample = 30 * time.Second
	// DefaultThreshold is the idle time from which the user counts as idle.
	DefaultThreshold = 5 * time.Minute
)

// Helper command line and output (see the package documentation).
const (
	// HelperFlag selects the helper mode of the agent binary.
	HelperFlag = "--session-agent"
	// IntervalFlag sets the helper's sample period (a Go duration).
	IntervalFlag = "--session-agent-interval"
	// IntervalEnv sets the helper's sample period when IntervalFlag is absent.
	IntervalEnv = "KANADE_SESSION_AGENT_INTERVAL"
	// MaxLine is the longest helper output line read; a longer one is
	// discarded and counted as bad.
	MaxLine = 4096
	// ExitUnsupported is the helper's exit code when the machine offers no
	// idle reading (ErrUnsupported). The supervisor does not restart it.
	ExitUnsupported = 3
)

// Source of the ObsEvents of this package (kinds KindActive, KindIdle and,
// with Options.SessionEvents, the session kinds).
const (
	// SourceIdle is the source of active and idle, upstream's.
	SourceIdle = "agent:idle_sampler"
	// SourceSessionChange is the source of logon, logoff, lock and unlock
	// when Options.SessionEvents is set (ours: upstream takes those from
	// the event log only).
	SourceSessionChange = "agent:session_change"
)

// ObsEvent kinds.
const (
	KindActive = "active" // Input resumed: idle time fell below the threshold.
	KindIdle   = "idle"   // No input for the threshold or longer, or nobody at the console.
	KindLogon  = "logon"  // A user logged on to a session.
	KindLogoff = "logoff" // A user logged off a session.
	KindLock   = "lock"   // A session was locked.
	KindUnlock = "unlock" // A session was unlocked.
)

// Supervisor timing (upstream's session_supervisor.rs).
const (
	backoffMin = 2 * time.Second
	backoffMax = 60 * time.Second
	// pollInterval is how often the console session is checked while no
	// user is logged on (service mode); session-change notifications wake
	// the check earlier.
	pollInterval = 30 * time.Second
	// stopTimeout bounds the wait for a killed helper to exit.
	stopTimeout = 5 * time.Second
)

// Options configure a Source. The zero value is usable.
type Options struct {
	// HelperPath is the agent binary run with HelperFlag. Default: os.Executable().
	HelperPath string
	// Sample is the helper's sample period. Default DefaultSample (30 s).
	Sample time.Duration
	// Threshold is the idle time from which the user counts as idle.
	// Default DefaultThreshold (5 min).
	Threshold time.Duration
	// StaleAfter is how long without a reading the user counts as idle
	// (the helper is gone or cannot read the idle time). Default 2.5 × Sample.
	StaleAfter time.Duration
	// Log receives the source's logs. Default: slog.Default().
	Log *slog.Logger
	// OnTrigger, when set, is called with "logon", "lock" or "unlock" for
	// each such session change notified to the Source (the local
	// scheduler's event triggers). It is called from the Source's own
	// goroutine, never from Notify's caller, and must not block for long.
	OnTrigger func(kind string)
	// SessionEvents also records each notified logon, logoff, lock and
	// unlock as an ObsEvent (source SourceSessionChange). Off by default:
	// upstream records those from the Windows event log only, and both
	// would put every logon twice on the timeline.
	SessionEvents bool
	// NoHelper runs no helper and records no active/idle: the Source only
	// relays session changes (OnTrigger, SessionEvents).
	NoHelper bool

	// launch overrides how the helper is started (tests).
	launch launcher
	// backoffMin and backoffMax override the restart delays (tests).
	backoffMin, backoffMax time.Duration
}

func (o *Options) setDefaults() error {
	if o.HelperPath == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("session: locate the agent binary: %w", err)
		}
		o.HelperPath = exe
	}
	if o.Sample <= 0 {
		o.Sample = DefaultSample
	}
	if o.Threshold <= 0 {
		o.Threshold = DefaultThreshold
	}
	if o.StaleAfter <= 0 {
		o.StaleAfter = o.Sample * 5 / 2
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.backoffMin <= 0 {
		o.backoffMin = backoffMin
	}
	if o.backoffMax <= 0 {
		o.backoffMax = max(backoffMax, o.backoffMin)
	}
	return nil
}
