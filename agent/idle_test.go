//go:build linux

package agent_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/embedded"
	"github.com/kanade/kanade-agent/internal/natstest"
)

var idleFor = flag.Duration("idle.duration", 60*time.Second, "how long BenchmarkIdle watches the idle agent")

// init turns the test binary into an idle agent process when asked by
// BenchmarkIdle: it runs until killed, against KANADE_NATS_URL or, when that
// is empty, against an embedded server in its own process (the daemon's
// default).
func init() {
	if os.Getenv("KANADE_IDLE_CHILD") != "1" {
		return
	}
	ctx := context.Background()
	url := os.Getenv("KANADE_NATS_URL")
	dir := os.Getenv("KANADE_DATA_DIR")
	if url == "" {
		srv, err := embedded.Start(ctx, embedded.Options{StoreDir: filepath.Join(dir, "nats"), Listen: "127.0.0.1:0"})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		url = srv.ClientURL()
	}
	a, err := agent.New(agent.Options{PcID: "idle", DataDir: dir, Servers: []string{url}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := a.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// procSample reads a process's resident memory, its CPU time and the
// context switches of all its threads from /proc.
func procSample(pid int) (rss int64, cpu time.Duration, switches int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	cpu = time.Duration(ut+st) * (time.Second / 100)
	pages, _ := strconv.ParseInt(f[21], 10, 64)
	rss = pages * int64(os.Getpagesize())
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	for _, t := range tasks {
		s, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(s), "\n") {
			if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				switches += n
			}
		}
	}
	return rss, cpu, switches, nil
}

// BenchmarkIdle runs an agent in a child process and watches it idle for
// -idle.duration (default 60 s) after it settled: RSS at the end, CPU in
// percent of one core, and thread wakeups (voluntary context switches) per
// second. "external" connects to a server in the test process; "embedded"
// is the daemon's default, the server inside the agent's process.
//
//	go test ./agent -run '^$' -bench Idle -benchtime 1x
func BenchmarkIdle(b *testing.B) {
	for _, mode := range []string{"external", "embedded"} {
		b.Run("server="+mode, func(b *testing.B) {
			url := ""
			if mode == "external" {
				url = natstest.RunServer(b).URL()
			}
			for i := 0; i < b.N; i++ {
				child := exec.Command(os.Args[0], "-test.run=^$")
				child.Env = append(os.Environ(), "KANADE_IDLE_CHILD=1", "KANADE_NATS_URL="+url, "KANADE_DATA_DIR="+natstest.TempDir(b))
				if err := child.Start(); err != nil {
					b.Fatal(err)
				}
				// Let it start, connect, report its inventory and settle.
				time.Sleep(10 * time.Second)
				_, cpu0, sw0, err := procSample(child.Process.Pid)
				if err != nil {
					b.Fatal(err)
				}
				time.Sleep(*idleFor)
				rss, cpu1, sw1, err := procSample(child.Process.Pid)
				if err != nil {
					b.Fatal(err)
				}
				_ = child.Process.Kill()
				_ = child.Wait()
				b.ReportMetric(float64(rss)/(1<<20), "rss-MiB")
				b.ReportMetric(100*float64(cpu1-cpu0)/float64(*idleFor), "cpu-%")
				b.ReportMetric(float64(sw1-sw0)/idleFor.Seconds(), "wakeups/s")
				b.ReportMetric(0, "ns/op")
			}
		})
	}
}
