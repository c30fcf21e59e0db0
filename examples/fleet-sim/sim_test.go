package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

var (
	benchWindow = flag.Duration("fleet.window", 20*time.Second, "heartbeat window of BenchmarkFleet")
	benchSizes  = flag.String("fleet.agents", "100,500,2000", "fleet sizes of BenchmarkFleet")
)

// TestMain lets the test binary be the simulator's server child and agent
// hosts too (see server.go and host.go).
func TestMain(m *testing.M) {
	if spec := os.Getenv(hostEnv); spec != "" {
		if err := runHost(spec); err != nil {
			fmt.Fprintln(os.Stderr, "fleet-sim host:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if dir := os.Getenv(serveEnv); dir != "" {
		if err := serveChild(dir); err != nil {
			fmt.Fprintln(os.Stderr, "fleet-sim server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSimSmall runs the simulator with 20 agents in two host processes and
// checks its figures are sane: every agent ready, each fan-out answered by
// all its targets, no heartbeat lost, one consumer per agent on the server,
// memory measured (on Linux).
func TestSimSmall(t *testing.T) {
	var out bytes.Buffer
	err := run([]string{"-n", "20", "-window", "6s", "-per-process", "10"}, &out)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"ready:            ", "(all 20)",
		"commands.all:     20/20 answered",
		"commands.group:   10/10 answered",
		"0 lost",
		"20 consumers (1.00 per agent)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out.String(), " 0 KiB RSS") {
		if _, err := os.Stat("/proc/self/status"); err == nil {
			t.Error("agent memory not measured")
		}
	}
}

// BenchmarkFleet runs the simulator for each fleet size of -fleet.agents
// (default 100, 500 and 2000) and reports its figures. One run per size:
//
//	go test ./examples/fleet-sim -run '^$' -bench Fleet -benchtime 1x [-fleet.window 5m] [-fleet.agents 2000]
func BenchmarkFleet(b *testing.B) {
	for _, s := range strings.Split(*benchSizes, ",") {
		var n int
		if _, err := fmt.Sscan(s, &n); err != nil || n <= 0 {
			b.Fatalf("bad -fleet.agents entry %q", s)
		}
		b.Run(fmt.Sprintf("agents=%d", n), func(b *testing.B) {
			var r Report
			for range b.N {
				var err error
				if r, err = Run(context.Background(), Config{N: n, Window: *benchWindow}); err != nil {
					b.Fatal(err)
				}
			}
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(r.Ready.Seconds(), "ready-s")
			b.ReportMetric(float64(r.AgentRSS)/1024, "agent-rss-KiB/agent")
			b.ReportMetric(float64(r.AgentRSSFreed)/1024, "agent-rss-freed-KiB/agent")
			b.ReportMetric(float64(r.AgentHeap)/1024, "agent-heap-KiB/agent")
			b.ReportMetric(float64(r.AgentStack)/1024, "agent-stack-KiB/agent")
			b.ReportMetric(r.Goroutines, "goroutines/agent")
			b.ReportMetric(float64(r.Server1.RSS)/(1<<20), "server-rss-MiB")
			if r.Server1.RSS > r.Server0.RSS {
				b.ReportMetric(float64(r.Server1.RSS-r.Server0.RSS)/1024/float64(n), "server-KiB/agent")
			}
			b.ReportMetric(float64(r.Server1.Consumers-r.Server0.Consumers)/float64(n), "consumers/agent")
			b.ReportMetric(float64(r.Window.Lost), "heartbeats-lost")
			b.ReportMetric(float64(r.Fanout.Lost), "heartbeats-lost-in-fanout")
			b.ReportMetric(float64(r.All.Answered)/float64(r.All.Targets), "all-answered-ratio")
			b.ReportMetric(ms(r.All.P50), "all-p50-ms")
			b.ReportMetric(ms(r.All.P99), "all-p99-ms")
			b.ReportMetric(ms(r.All.Max), "all-max-ms")
			b.ReportMetric(ms(r.Group.P50), "group-p50-ms")
			b.ReportMetric(ms(r.Group.P99), "group-p99-ms")
			b.ReportMetric(ms(r.Group.Max), "group-max-ms")
			if u := r.AllCPU; u.Period > 0 {
				per := func(d time.Duration) float64 { return ms(d) / float64(max(r.All.Answered, 1)) }
				b.ReportMetric(per(u.Hosts), "all-host-cpu-ms/cmd")
				b.ReportMetric(per(u.Server), "all-server-cpu-ms/cmd")
				b.ReportMetric(100*u.Machine.Seconds()/u.Period.Seconds()/float64(max(u.Cores, 1)), "all-machine-busy-%")
			}
		})
	}
}

// TestHeartbeatLoss: drift does not count as loss, silences do.
func TestHeartbeatLoss(t *testing.T) {
	t0 := time.Unix(1000, 0)
	h := newHeartbeatCounter()
	every := 5 * time.Second
	for i := range 60 { // drifts 10 ms a beat: 59 beats in 300 s
		h.at["drift"] = append(h.at["drift"], t0.Add(time.Duration(i)*(every+10*time.Millisecond)+time.Second))
	}
	for i := range 60 {
		if i == 10 || i == 11 { // two beats missing: a 15 s silence
			continue
		}
		h.at["gap"] = append(h.at["gap"], t0.Add(time.Duration(i)*every+time.Second))
	}
	for i := range 50 { // stops after 246 s: 251 ... 296 missing
		h.at["stops"] = append(h.at["stops"], t0.Add(time.Duration(i)*every+time.Second))
	}
	for _, tc := range []struct {
		id   string
		lost int
	}{{"drift", 0}, {"gap", 2}, {"stops", 10}, {"silent", 60}} {
		if r := h.result([]string{tc.id}, t0, 300*time.Second, every); r.Lost != tc.lost || r.Expected != 60 {
			t.Errorf("%s: lost %d of %d expected, want %d", tc.id, r.Lost, r.Expected, tc.lost)
		}
	}
}
