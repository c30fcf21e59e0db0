//go:build linux

package daemon

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
)

var (
	idleFor    = flag.Duration("idle.duration", 60*time.Second, "how long BenchmarkIdle watches the idle agent")
	idleSettle = flag.Duration("idle.settle", 75*time.Second, "how long BenchmarkIdle lets the agent start, report its inventory (start splay up to 1 min) and settle")
)

// procSample reads a process's resident memory, its CPU time and the
// voluntary context switches (wakeups) of all its threads from /proc.
func procSample(pid int) (rss int64, cpu time.Duration, wakeups int64, err error) {
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
				wakeups += n
			}
		}
	}
	return rss, cpu, wakeups, nil
}

// BenchmarkIdle runs the kanade-agent binary and watches it idle for
// -idle.duration after -idle.settle: RSS at the end, CPU in percent of one
// core, and thread wakeups (voluntary context switches) per second.
// server=external connects to a server in the benchmark process, with the
// default binary and with one built -tags kanade_noembed (no nats-server
// linked in); server=embedded is the daemon's default, the server inside the
// agent's process.
//
//	go test ./internal/daemon -run '^$' -bench Idle -benchtime 1x
func BenchmarkIdle(b *testing.B) {
	dir := natstest.TempDir(b)
	build := func(name string, tags ...string) string {
		out := filepath.Join(dir, name)
		args := append([]string{"build", "-o", out}, tags...)
		args = append(args, "github.com/kanade/kanade-agent/cmd/kanade-agent")
		if o, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), args...).CombinedOutput(); err != nil {
			b.Fatalf("go build: %v\n%s", err, o)
		}
		return out
	}
	full := build("kanade-agent")
	lean := build("kanade-agent-noembed", "-tags", "kanade_noembed")
	srv := natstest.RunServerWith(b, natstest.Options{Direct: true})
	cases := []struct {
		name, bin string
		args      []string
	}{
		{"server=external/build=noembed", lean, []string{"--nats-url", srv.URL()}},
		{"server=external/build=default", full, []string{"--nats-url", srv.URL()}},
		{"server=embedded/build=default", full, []string{"--embedded-listen", freeAddr(b)}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				args := append([]string{"--data-dir", natstest.TempDir(b), "--pc-id", "idle", "--log-level", "warn"}, tc.args...)
				child := exec.Command(tc.bin, args...)
				if err := child.Start(); err != nil {
					b.Fatal(err)
				}
				time.Sleep(*idleSettle)
				_, cpu0, w0, err := procSample(child.Process.Pid)
				if err != nil {
					b.Fatal(err)
				}
				time.Sleep(*idleFor)
				rss, cpu1, w1, err := procSample(child.Process.Pid)
				if err != nil {
					b.Fatal(err)
				}
				_ = child.Process.Kill()
				_ = child.Wait()
				b.ReportMetric(float64(rss)/(1<<20), "rss-MiB")
				b.ReportMetric(100*float64(cpu1-cpu0)/float64(*idleFor), "cpu-%")
				b.ReportMetric(float64(w1-w0)/idleFor.Seconds(), "wakeups/s")
				b.ReportMetric(0, "ns/op")
			}
		})
	}
}

func freeAddr(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
