package daemon

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/session"
)

// sessionHelperMode runs the in-session idle helper (kanade-agent
// --session-agent, see package session) when args ask for it, before any
// other flag parsing: the helper reads no config, touches no data
// directory, network or service manager. ok is false for any other
// command line.
func sessionHelperMode(ctx context.Context, args []string, sy *system, stdout, stderr io.Writer) (code int, ok bool) {
	if !session.IsHelper(args) {
		return 0, false
	}
	return session.RunHelper(ctx, args, sy.getenv, os.Stdin, stdout, stderr), true
}

// sessionRelay carries the service manager's session change notifications
// (service_windows.go) to the session Source of the running agent. A nil
// relay, or one without a Source yet, drops them.
type sessionRelay struct {
	mu  sync.Mutex
	src *session.Source
}

func (r *sessionRelay) notify(c session.Change) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.src != nil {
		r.src.Notify(c)
	}
}

func (r *sessionRelay) set(src *session.Source) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.src = src
}

// triggerHook forwards the session triggers (logon, lock, unlock) to a
// function set once the agent exists.
type triggerHook struct {
	fn atomic.Pointer[func(kind string)]
}

func (h *triggerHook) set(fn func(kind string)) { h.fn.Store(&fn) }

func (h *triggerHook) fire(kind string) {
	if fn := h.fn.Load(); fn != nil && *fn != nil {
		(*fn)(kind)
	}
}

// sessionSources returns the session Source for cfg: the idle helper and
// its active/idle events unless user-presence is off, and the relay of the
// service's session changes to trig (and to the timeline with
// session-events). The Source is registered with cfg's relay. idle is the
// Source's idle reading for the scheduler's idle requirement (nil when
// user presence is off).
func sessionSources(cfg *Config, log *slog.Logger, trig *triggerHook) (srcs []agent.ObsSource, idle func() (time.Duration, bool)) {
	src, err := session.New(session.Options{
		Log:           log,
		OnTrigger:     trig.fire,
		SessionEvents: cfg.SessionEvents,
		NoHelper:      !cfg.UserPresence,
	})
	if err != nil {
		log.Error("user presence: no session source", "err", err)
		return nil, nil
	}
	cfg.sessions.set(src)
	if cfg.UserPresence {
		idle = src.Idle
	}
	return []agent.ObsSource{src}, idle
}
