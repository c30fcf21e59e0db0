package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/internal/runner"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
)

// BenchmarkRoundTrip measures a command's round trip: publish of the
// command to its result stored in RESULTS (seen by a core subscriber of
// the stream's subject after the store), running noopScript ("true" with
// sh, "rem" with cmd on Windows) on loopback, one command at a time. The
// ledger and the outboxes are durable. The baseline is a responder with no
// durability at all that runs the same script and answers over
// request/reply.
//
//	go test ./agent -run '^$' -bench RoundTrip -benchtime 200x
func BenchmarkRoundTrip(b *testing.B) {
	b.Run("agent", func(b *testing.B) {
		nc, results := benchAgent(b, "bench", nil)
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			c := wire.Command{ID: wire.AdhocID, RequestID: "rt-" + strconv.Itoa(i), Shell: testShell, Script: noopScript, TimeoutSecs: 10}
			body, _ := json.Marshal(c)
			start := time.Now()
			if err := nc.Publish("commands.pc.bench", body); err != nil {
				b.Fatal(err)
			}
			select {
			case m := <-results:
				if m.Subject != "results."+c.RequestID {
					b.Fatalf("unexpected %s", m.Subject)
				}
			case <-time.After(10 * time.Second):
				b.Fatal("no result")
			}
			lat = append(lat, time.Since(start))
		}
		b.StopTimer()
		reportLatency(b, lat)
	})
	b.Run("baseline=reqreply-no-durability", func(b *testing.B) {
		srv := natstest.RunServerWith(b, natstest.Options{Direct: true})
		nc := natstest.Connect(b, srv.URL())
		sub, err := nc.Subscribe("bench.echo", func(m *nats.Msg) {
			r := runner.Run(context.Background(), runner.Spec{Shell: testShell, Script: noopScript, Timeout: 10 * time.Second})
			body, _ := json.Marshal(wire.ExecResult{ExitCode: r.ExitCode})
			_ = m.Respond(body)
		})
		if err != nil {
			b.Fatal(err)
		}
		defer sub.Unsubscribe()
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			start := time.Now()
			if _, err := nc.Request("bench.echo", []byte("{}"), 10*time.Second); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		b.StopTimer()
		reportLatency(b, lat)
	})
}

func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	q := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkConcurrency sends eight sleepScript(1) commands at once and
// reports how long until all eight results are stored, with
// max_local_concurrent 8 (target: within 2 s) and with the default (the CPU
// count).
//
//	go test ./agent -run '^$' -bench Concurrency -benchtime 1x
func BenchmarkConcurrency(b *testing.B) {
	for _, limit := range []int{8, 0} {
		name := "max_local_concurrent=" + strconv.Itoa(limit)
		if limit == 0 {
			name = "max_local_concurrent=default"
		}
		b.Run(name, func(b *testing.B) {
			var defaults *wire.Config
			if limit > 0 {
				d := wire.DefaultConfig(limit)
				defaults = &d
			}
			nc, results := benchAgent(b, "conc", defaults)
			var total time.Duration
			for i := 0; i < b.N; i++ {
				start := time.Now()
				for j := 0; j < 8; j++ {
					c := wire.Command{ID: wire.AdhocID, RequestID: fmt.Sprintf("c-%d-%d", i, j), Shell: testShell, Script: sleepScript(1), TimeoutSecs: 10}
					body, _ := json.Marshal(c)
					_ = nc.Publish("commands.pc.conc", body)
				}
				for j := 0; j < 8; j++ {
					select {
					case <-results:
					case <-time.After(30 * time.Second):
						b.Fatal("missing results")
					}
				}
				total += time.Since(start)
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s-for-8")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func TestFIFOQueue(t *testing.T) {
	e := newEnv(t)
	d := wire.DefaultConfig(1)
	e.start("pc-f", "", func(o *agent.Options) { o.Defaults = &d })
	out := filepath.Join(natstest.TempDir(t), "order")
	var last wire.Command
	for i := range 8 {
		last = cmd(fmt.Sprintf("echo %d >> %s", i, out))
		e.publish(pcSubject("pc-f"), last)
	}
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if n := countLines(t, out); n != 8 {
			return fmt.Errorf("%d of 8 ran", n)
		}
		return nil
	})
	b, _ := os.ReadFile(out)
	if got := strings.Fields(string(b)); !slices.Equal(got, []string{"0", "1", "2", "3", "4", "5", "6", "7"}) {
		t.Fatalf("run order %v, want FIFO", got)
	}
}

func benchLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// benchAgent runs an agent with pc id pcID (and built-in defaults, when not
// nil) against a new server until the benchmark ends, and returns a client
// connection and a channel of every result stored in RESULTS.
func benchAgent(b *testing.B, pcID string, defaults *wire.Config) (*nats.Conn, <-chan *nats.Msg) {
	b.Helper()
	srv := natstest.RunServerWith(b, natstest.Options{Direct: true})
	nc := natstest.Connect(b, srv.URL())
	a, err := agent.New(agent.Options{PcID: pcID, DataDir: natstest.TempDir(b), Servers: []string{srv.URL()},
		Logger: benchLogger(), DisableInventory: true, Defaults: defaults})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	<-a.Ready()
	results := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe("results.>", results)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sub.Unsubscribe() })
	return nc, results
}
