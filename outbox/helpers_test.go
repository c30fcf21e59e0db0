package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/subject"
	"github.com/nats-io/nats.go/jetstream"
)

// item is the test payload.
type item struct {
	Seq int    `json:"seq"`
	Pad string `json:"pad,omitempty"`
	Sub string `json:"sub,omitempty"` // subject override
}

func itemSubject(v item) (string, error) {
	if v.Sub != "" {
		return v.Sub, nil
	}
	return "obs.pc1", nil
}

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

func testOptions(dir string, js jetstream.JetStream) Options[item] {
	return Options[item]{Dir: dir, Subject: itemSubject, JetStream: js, Logger: quietLogger}
}

func mustNew(t testing.TB, o Options[item]) *Outbox[item] {
	t.Helper()
	ob, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ob.Close() })
	return ob
}

// startRun runs ob.Run until the returned stop is called (also at cleanup).
func startRun[T any](t testing.TB, ob *Outbox[T]) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ob.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("Run did not return")
		}
	}
	t.Cleanup(stop)
	return stop
}

// enqueueOffline stores n items (seq 0..n-1) in a new outbox in dir with
// no connection, closes it and returns their ids.
func enqueueOffline(t testing.TB, dir string, n int) []string {
	t.Helper()
	ob, err := New(testOptions(dir, nil))
	if err != nil {
		t.Fatal(err)
	}
	ids := enqueueN(t, ob, 0, n)
	if err := ob.Close(); err != nil {
		t.Fatal(err)
	}
	return ids
}

func enqueueN(t testing.TB, ob *Outbox[item], from, n int) []string {
	t.Helper()
	ids := make([]string, 0, n)
	for i := from; i < from+n; i++ {
		id, err := ob.Enqueue(context.Background(), item{Seq: i})
		if err != nil {
			t.Fatalf("Enqueue %d: %v", i, err)
		}
		ids = append(ids, id)
	}
	return ids
}

// streamMsgs returns every message of stream as msg id -> data, failing on
// duplicate msg ids.
func streamMsgs(t testing.TB, js jetstream.JetStream, stream string) map[string][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	if info.State.Msgs == 0 {
		return out
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for n := uint64(0); n < info.State.Msgs; {
		batch, err := cons.Fetch(int(min(info.State.Msgs-n, 1000)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			id := m.Headers().Get(jetstream.MsgIDHeader)
			if _, dup := out[id]; dup {
				t.Fatalf("duplicate msg id %q in stream %s", id, stream)
			}
			out[id] = m.Data()
		}
		if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
		if got == 0 {
			t.Fatalf("fetched nothing at %d of %d", n, info.State.Msgs)
		}
		n += uint64(got)
	}
	return out
}

func streamCount(js jetstream.JetStream, stream string) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// waitDelivered waits until ob has nothing pending and the stream holds want messages.
func waitDelivered[T any](t testing.TB, ob *Outbox[T], js jetstream.JetStream, want uint64) {
	t.Helper()
	natstest.CheckFor(t, 60*time.Second, 10*time.Millisecond, func() error {
		if p := ob.Stats().Pending; p != 0 {
			return fmt.Errorf("pending %d", p)
		}
		n, err := streamCount(js, subject.StreamObs)
		if err != nil {
			return err
		}
		if n != want {
			return fmt.Errorf("stream has %d msgs, want %d", n, want)
		}
		return nil
	})
}

// checkExactly checks that the obs stream holds exactly the items with ids.
func checkExactly(t testing.TB, js jetstream.JetStream, ids map[string]int) {
	t.Helper()
	msgs := streamMsgs(t, js, subject.StreamObs)
	for id, seq := range ids {
		b, ok := msgs[id]
		if !ok {
			t.Fatalf("item %s (seq %d) missing from stream", id, seq)
		}
		var v item
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		if v.Seq != seq {
			t.Fatalf("item %s: seq %d, want %d", id, v.Seq, seq)
		}
	}
	if len(msgs) != len(ids) {
		t.Fatalf("stream holds %d msgs, want %d", len(msgs), len(ids))
	}
}

func idMap(ids []string, from int) map[string]int {
	m := make(map[string]int, len(ids))
	for i, id := range ids {
		m[id] = from + i
	}
	return m
}

// streamSeqs returns the seq of every item in the obs stream, in stream order.
func streamSeqs(t testing.TB, js jetstream.JetStream) []int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, subject.StreamObs)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		var v item
		if err := json.Unmarshal(m.Data, &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v.Seq)
	}
	return out
}
