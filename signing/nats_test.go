package signing

import (
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/nats-io/nats.go"
)

// TestBoundOverNATS sends a bound command to PC-A through a real server,
// then replays the very message (headers and body as received) to PC-B:
// PC-A's verifier accepts it, PC-B's sees it misaddressed and, enforcing,
// refuses it. An unbound signature of the same body runs on both.
func TestBoundOverNATS(t *testing.T) {
	srv := natstest.RunBareServer(t)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	inbox := make(chan *nats.Msg, 8)
	sub, err := nc.ChanSubscribe("commands.pc.*", inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	recv := func() *nats.Msg {
		t.Helper()
		select {
		case m := <-inbox:
			return m
		case <-time.After(20 * time.Second):
			t.Fatal("no message")
			return nil
		}
	}

	pub, priv := testKey(1)
	v := NewVerifier(mustKeyring(t, entry("backend-1", pub)), true)
	body := []byte(`{"id":"adhoc-run","request_id":"r1","script":"id"}`)
	hdr, err := Sign(priv, "backend-1", subjA, time.Now(), body)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.PublishMsg(&nats.Msg{Subject: subjA, Header: hdr, Data: body}); err != nil {
		t.Fatal(err)
	}
	m := recv()
	if d := v.Check(m.Subject, m.Header, m.Data, time.Now()); d.Outcome != OutcomeVerified || !d.Allowed {
		t.Fatalf("on its own subject: %+v", d)
	}
	if err := nc.PublishMsg(&nats.Msg{Subject: subjB, Header: m.Header, Data: m.Data}); err != nil {
		t.Fatal(err)
	}
	m = recv()
	if d := v.Check(m.Subject, m.Header, m.Data, time.Now()); d.Outcome != OutcomeMisaddressed || d.Allowed {
		t.Fatalf("replayed to another PC: %+v", d)
	}

	unbound, err := SignUnbound(priv, "backend-1", time.Now(), body)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.PublishMsg(&nats.Msg{Subject: subjB, Header: unbound, Data: body}); err != nil {
		t.Fatal(err)
	}
	m = recv()
	if d := v.Check(m.Subject, m.Header, m.Data, time.Now()); d.Outcome != OutcomeVerified {
		t.Fatalf("upstream form: %+v", d)
	}
}
