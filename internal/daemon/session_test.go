package daemon

import (
	"testing"

	"github.com/kanade/kanade-agent/internal/session"
)

// user-presence is on and session-events off by default; both are settings.
func TestSessionSettings(t *testing.T) {
	cfg, err := load(t, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.UserPresence || cfg.SessionEvents {
		t.Errorf("defaults: user presence %v, session events %v; want true, false", cfg.UserPresence, cfg.SessionEvents)
	}
	cfg, err = load(t, []string{"--session-events"}, map[string]string{"KANADE_USER_PRESENCE": "false"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.UserPresence || !cfg.SessionEvents {
		t.Errorf("set: user presence %v, session events %v; want false, true", cfg.UserPresence, cfg.SessionEvents)
	}
	cfg, err = load(t, nil, nil, "user_presence = false\nsession_events = true\n")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.UserPresence || !cfg.SessionEvents {
		t.Errorf("file: user presence %v, session events %v; want false, true", cfg.UserPresence, cfg.SessionEvents)
	}
}

// The session relay reaches the Source's triggers once it is set, and is
// safe when nil or unset.
func TestSessionRelay(t *testing.T) {
	var nilRelay *sessionRelay
	nilRelay.notify(session.Change{Kind: session.KindLock})
	r := &sessionRelay{}
	r.notify(session.Change{Kind: session.KindLock}) // no Source yet: dropped
	h := &triggerHook{}
	h.fire("lock") // nothing set: no-op
	got := make(chan string, 1)
	h.set(func(k string) { got <- k })
	h.fire("unlock")
	if k := <-got; k != "unlock" {
		t.Errorf("trigger %q", k)
	}
}
