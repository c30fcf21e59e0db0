//go:build windows

package timeline

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
)

// TestLiveEventLog runs the real wevtapi.dll path: EvtQuery on System
// with the boot row's XPath, then EvtNext, EvtRender and EvtClose.
//
// Under Wine (8.0, as CI runs it) wevtapi.dll exports EvtQuery, EvtNext,
// EvtRender, EvtClose and EvtCancel, but EvtQuery is a stub: it returns
// no handle and sets no error (GetLastError is 0). Wine has no event log
// behind it, so nothing past EvtQuery can run there. The test then checks
// that this is reported as ErrUnsupported, with a message naming
// EvtQuery, and that a Source over the live reader logs it once and keeps
// polling. On Windows the query must succeed and every event returned must
// decode and map to the row.
func TestLiveEventLog(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	row := Rows[4] // Kernel-General 12: boot, in System (readable without admin rights)
	docs, err := LiveEventLog{}.Query(ctx, row.Channel, row.Query(time.Now().Add(-DefaultLookBack), 0), 1000)
	if natstest.UnderWine() {
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "EvtQuery") {
			t.Fatalf("under Wine: Query = %d docs, %v; want ErrUnsupported from EvtQuery", len(docs), err)
		}
		var buf natstest.Buffer
		s, err := New(Options{Dir: natstest.TempDir(t), NoWtmp: true, NoJournal: true, Log: testLog(t, &buf), Period: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		polled := make(chan struct{}, 100)
		s.afterPoll = func() { polled <- struct{}{} }
		c := &collector{}
		runPolls(t, s, c.emit, 3, polled)
		if n := strings.Count(buf.String(), "cannot read the Windows event log"); n != 1 || !strings.Contains(buf.String(), "EvtQuery") {
			t.Errorf("reported %d times, want once, naming EvtQuery:\n%s", n, buf.String())
		}
		if len(c.evs) != 0 {
			t.Errorf("emitted %d events", len(c.evs))
		}
		return
	}
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	t.Logf("%d boot events in the last 24 h", len(docs))
	for _, d := range docs {
		ev, err := DecodeEventXML([]byte(d))
		if err != nil {
			t.Fatalf("%v\n%s", err, d)
		}
		if r, _, ok := MapEvent(ev, nil); !ok || r != row {
			t.Errorf("event not mapped to %s:\n%s", row.Key(), d)
		}
	}
	// A query Windows refuses is an error, not ErrUnsupported.
	if _, err := (LiveEventLog{}).Query(ctx, "System", "*[", 10); err == nil || errors.Is(err, ErrUnsupported) {
		t.Errorf("invalid query: %v", err)
	}
}

// TestLiveEventLogCancelled: a ctx that has ended stops Query at once.
func TestLiveEventLogCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (LiveEventLog{}).Query(ctx, "System", Rows[4].Query(time.Now(), 0), 10); !errors.Is(err, context.Canceled) {
		t.Fatalf("Query: %v, want context.Canceled", err)
	}
}
