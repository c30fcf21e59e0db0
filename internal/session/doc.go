// Package session observes the user's presence at the machine: active and
// idle transitions from an in-session helper process, and the session
// changes (logon, logoff, lock, unlock) the Windows service is notified of.
//
// # The helper
//
// The agent binary run with --session-agent (RunHelper; the daemon checks
// IsHelper before anything else, so the mode touches no data directory,
// network or service manager) prints one NDJSON line on stdout at once
// and then every sample period:
//
//	{"idle_ms":N}
//	{"idle_ms":null}
//
// N being the milliseconds since the last user input, null when it cannot
// be read at the moment. The period is --session-agent-interval=DURATION,
// else $KANADE_SESSION_AGENT_INTERVAL, else 30 s. The helper exits 0 when
// its stdin closes (the supervisor went away) or stdout breaks, and with
// ExitUnsupported (3) when the machine has no idle reading, saying why on
// stderr.
//
// On Windows it reads GetLastInputInfo and GetTickCount, which tell the
// last input of the caller's own session only: the service runs in
// session 0, so it launches the helper into the console session as the
// logged-on user (WTSGetActiveConsoleSessionId, WTSQueryUserToken,
// CreateEnvironmentBlock, CreateProcessAsUser on winsta0\default, in a
// kill-on-close Job Object; see internal/winproc). Run outside a service
// (in a user's session already) the agent starts it as a plain child.
//
// On Linux it reads systemd-logind's idle hint through loginctl (the
// session $XDG_SESSION_ID, else the active session of seat0): IdleHint yes
// gives the time since IdleSinceHintMonotonic; no gives 0, except on a tty
// session, where logind's timestamp is the terminal's last access. No
// active session prints null. Without loginctl, or with logind not
// answering, the helper exits ExitUnsupported.
//
// # The Source
//
// Source (an agent.ObsSource) keeps one helper running: restarted with
// backoff (2 s doubling to 60 s) when it exits, moved when the console
// session changes (checked at each helper line and at each notified
// session change, every 30 s while nobody is logged on), none while
// nobody is logged on to the console, killed when Run ends. Its lines are
// read with a 4 KiB bound, at most one per Sample/4 (a helper that floods
// blocks on its pipe); a bad or over-long line is counted (Stats.BadLines)
// and skipped. The readings may change the presence 10 times at once,
// then once per Threshold/2 (a user cannot go idle more often than once
// per Threshold); readings past that are counted (Stats.Limited) and
// skipped.
//
// Readings become ObsEvents of source "agent:idle_sampler", as upstream's
// idle sampler: kind "idle" when the idle time is at or over the threshold
// (5 min), "active" when below, emitted on transitions only; the first
// known presence is emitted too (it anchors the timeline at agent start).
// No reading for StaleAfter (75 s by default: the helper hangs or keeps
// printing null) and nobody at the console count as idle. A helper that
// reports ExitUnsupported is not restarted, and nothing is emitted. The
// event_record_id is "<kind>:<unix ms of at>", the payload null.
//
// Session changes handed to Notify call Options.OnTrigger with "logon",
// "lock" or "unlock" (the local scheduler's event triggers) and, with
// Options.SessionEvents, are recorded as ObsEvents of source
// "agent:session_change" (event_record_id "<kind>:<session id>:<unix ms>",
// payload {"session_id":N}).
package session
