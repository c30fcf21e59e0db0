//go:build windows

package daemon

import (
	"context"
	"log/slog"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"

	"github.com/kanade/kanade-agent/internal/session"
	"github.com/kanade/kanade-agent/wire"
)

// A session change request from the service manager reaches the session
// Source through the handler: lock in session 3 fires the lock trigger and,
// with session events, records it.
func TestServiceSessionChange(t *testing.T) {
	trig := make(chan string, 4)
	evs := make(chan wire.ObsEvent, 4)
	src, err := session.New(session.Options{NoHelper: true, SessionEvents: true, Log: slog.New(slog.DiscardHandler),
		OnTrigger: func(k string) { trig <- k }})
	if err != nil {
		t.Fatal(err)
	}
	relay := &sessionRelay{}
	relay.set(src)
	var got string
	h := &handler{ctx: context.Background(), sessions: relay, run: func(ctx context.Context) int {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go src.Run(ctx, func(_ context.Context, ev wire.ObsEvent) error { evs <- ev; return nil })
		select {
		case got = <-trig:
		case <-time.After(10 * time.Second):
		}
		return 0
	}}
	n := windows.WTSSESSION_NOTIFICATION{Size: uint32(unsafe.Sizeof(windows.WTSSESSION_NOTIFICATION{})), SessionID: 3}
	execute(t, h, svc.ChangeRequest{Cmd: svc.SessionChange, EventType: windows.WTS_SESSION_LOCK, EventData: uintptr(unsafe.Pointer(&n))})
	if got != session.KindLock {
		t.Fatalf("trigger %q, want lock", got)
	}
	select {
	case ev := <-evs:
		if ev.Kind != session.KindLock || ev.Source != session.SourceSessionChange || string(ev.Payload) != `{"session_id":3}` {
			t.Errorf("event %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no session event")
	}
}
