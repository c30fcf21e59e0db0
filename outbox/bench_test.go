package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// benchEvent returns a ~512-byte encoded ObsEvent.
func benchEvent(i int) wire.ObsEvent {
	rid := strconv.Itoa(i)
	return wire.ObsEvent{
		PcID: "bench-pc", At: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Kind: "logon",
		Source: "winlog:Security", EventRecordID: rid,
		Payload: json.RawMessage(fmt.Sprintf(`{"user":"alice","domain":"CORP","logon_type":2,"note":%q}`,
			strings.Repeat("x", 330))),
	}
}

func obsSubject(e wire.ObsEvent) (string, error) { return "obs." + e.PcID, nil }

func benchOutbox(b *testing.B, dir string, js jetstream.JetStream, onAck func(string, wire.ObsEvent)) *Outbox[wire.ObsEvent] {
	ob, err := New(Options[wire.ObsEvent]{Dir: dir, Subject: obsSubject, JetStream: js, Logger: quietLogger, OnAck: onAck})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ob.Close() })
	return ob
}

func BenchmarkEnqueue(b *testing.B) {
	if n, _ := json.Marshal(benchEvent(0)); len(n) < 480 || len(n) > 560 {
		b.Fatalf("bench event is %d bytes", len(n))
	}
	for _, producers := range []int{1, 16} {
		b.Run(fmt.Sprintf("producers=%d", producers), func(b *testing.B) {
			ob := benchOutbox(b, natstest.TempDir(b), nil, nil)
			ev := benchEvent(1)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for p := 0; p < producers; p++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if _, err := ob.Enqueue(context.Background(), ev); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "items/s")
		})
	}
	for _, every := range []int{1, 16} {
		name := "baseline=append+sync-each"
		if every > 1 {
			name = fmt.Sprintf("baseline=append+sync-every-%d", every)
		}
		b.Run(name, func(b *testing.B) {
			f, err := os.Create(filepath.Join(natstest.TempDir(b), "log"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			data, _ := json.Marshal(benchEvent(1))
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if _, err := f.Write(data); err != nil {
					b.Fatal(err)
				}
				if (i+1)%every == 0 || i == b.N-1 {
					if err := f.Sync(); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "items/s")
		})
	}
}

func BenchmarkDrain(b *testing.B) {
	for _, rtt := range []time.Duration{0, 50 * time.Millisecond} {
		b.Run(fmt.Sprintf("rtt=%v", rtt), func(b *testing.B) {
			s := natstest.RunServerWith(b, natstest.Options{Direct: true})
			p := natstest.NewProxy(b, s.Addr(), rtt/2)
			js := natstest.JetStream(b, natstest.Connect(b, p.URL()))
			var acked atomic.Int64
			done := make(chan struct{})
			ob := benchOutbox(b, natstest.TempDir(b), js, func(string, wire.ObsEvent) {
				if acked.Add(1) == int64(b.N) {
					close(done)
				}
			})
			preEnqueue(b, ob, b.N)
			b.ResetTimer()
			start := time.Now()
			startRun(b, ob)
			select {
			case <-done:
			case <-time.After(5 * time.Minute):
				b.Fatalf("only %d of %d acked", acked.Load(), b.N)
			}
			el := time.Since(start)
			b.StopTimer()
			if st := ob.Stats(); st.Pending != 0 {
				b.Fatalf("pending %d after all acked", st.Pending)
			}
			b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
		})
	}
	for _, rtt := range []time.Duration{0, 50 * time.Millisecond} {
		b.Run(fmt.Sprintf("baseline=publishasync-window4096/rtt=%v", rtt), func(b *testing.B) {
			s := natstest.RunServerWith(b, natstest.Options{Direct: true})
			p := natstest.NewProxy(b, s.Addr(), rtt/2)
			js := natstest.JetStream(b, natstest.Connect(b, p.URL()), jetstream.WithPublishAsyncMaxPending(4096))
			data, _ := json.Marshal(benchEvent(1))
			ids := make([]string, b.N)
			for i := range ids {
				ids[i] = uuid.Must(uuid.NewV7()).String()
			}
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				m := &nats.Msg{Subject: "obs.bench-pc", Data: data, Header: nats.Header{jetstream.MsgIDHeader: []string{ids[i]}}}
				if _, err := js.PublishMsgAsync(m); err != nil {
					b.Fatal(err)
				}
			}
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(5 * time.Minute):
				b.Fatal("acks did not arrive")
			}
			el := time.Since(start)
			b.StopTimer()
			if n, err := streamCount(js, "OBS_EVENTS"); err != nil || n != uint64(b.N) {
				b.Fatalf("stream has %d msgs (%v), want %d", n, err, b.N)
			}
			b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
		})
	}
}

// preEnqueue enqueues n events with 64 producers (not timed).
func preEnqueue(b *testing.B, ob *Outbox[wire.ObsEvent], n int) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	for p := 0; p < 64; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				if _, err := ob.Enqueue(context.Background(), benchEvent(int(i))); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
