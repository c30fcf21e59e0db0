package outbox

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/provision"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats-server/v2/server"
)

// BenchmarkOpen opens an outbox holding pending items (~580-byte records
// of benchEvent) and reports the Go heap the open outbox holds
// (heap-MiB, live bytes after a GC, minus those before New) and the open
// time (open-s, also ns/op). Once per run it then drains every item to a
// JetStream server and reports the peak Go heap while draining
// (peak-heap-MiB, sampled every 2 ms from runtime/metrics after a GC, minus
// the heap before New) and the drain rate.
//
// The server is the embedded nats-server, run in a child process (the test
// binary, see TestMain) so that its own heap (the stream's duplicate
// window holds every msg id) is not counted as the outbox's.
//
//	go test ./outbox -run '^$' -bench BenchmarkOpen -benchtime 1x
//
// On a 2-core VM, pending=1000000, in the same run: the previous index (a
// 32-byte struct per item) held 35.5 MiB after open, peaked at 81-86 MiB
// while draining (80-84 MiB already during New) and opened in 0.30-0.41 s;
// the packed index holds 3.4 MiB, peaks at 25.7 MiB (17-18 MiB during New)
// and opens in 0.13 s.
func BenchmarkOpen(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("pending=%d", n), func(b *testing.B) {
			dir := filepath.Join(natstest.TempDir(b), "obs")
			writePending(b, dir, n)
			var heap float64
			var openTime time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				base := liveHeap()
				b.StartTimer()
				start := time.Now()
				ob, err := New(Options[wire.ObsEvent]{Dir: dir, Subject: obsSubject, Logger: quietLogger})
				if err != nil {
					b.Fatal(err)
				}
				openTime += time.Since(start)
				b.StopTimer()
				heap = max(heap, float64(liveHeap()-base)/(1<<20))
				if st := ob.Stats(); st.Pending != n {
					b.Fatalf("pending %d, want %d", st.Pending, n)
				}
				runtime.KeepAlive(ob)
				_ = ob.Close()
				b.StartTimer()
			}
			b.StopTimer()
			b.ReportMetric(heap, "heap-MiB")
			b.ReportMetric(openTime.Seconds()/float64(b.N), "open-s")

			url := benchServerChild(b)
			nc := natstest.Connect(b, url)
			js := natstest.JetStream(b, nc)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			if err := provision.Ensure(ctx, js); err != nil {
				b.Fatal(err)
			}
			base := liveHeap()
			stopSampler0, peak0 := sampleHeap()
			ob, err := New(Options[wire.ObsEvent]{Dir: dir, Subject: obsSubject, JetStream: js, Logger: quietLogger})
			if err != nil {
				b.Fatal(err)
			}
			stopSampler0()
			b.ReportMetric(float64(peak0.Load()-base)/(1<<20), "open-peak-heap-MiB")
			stopSampler, peak := sampleHeap()
			defer ob.Close()
			start := time.Now()
			runCtx, stopRun := context.WithCancel(ctx)
			runDone := make(chan error, 1)
			go func() { runDone <- ob.Run(runCtx) }()
			if err := drainAll(ctx, ob); err != nil {
				b.Fatalf("drain: %v (stats %+v)", err, ob.Stats())
			}
			el := time.Since(start)
			stopSampler()
			stopRun()
			<-runDone
			if st := ob.Stats(); st.Pending != 0 || st.Stuck != 0 {
				b.Fatalf("after drain: %+v", st)
			}
			b.ReportMetric(float64(peak.Load()-base)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(n)/el.Seconds(), "drain-msgs/s")
		})
	}
}

// liveHeap returns the live heap bytes after a GC.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// sampleHeap samples the heap (objects, live and not yet swept) every 2 ms
// until stop is called; peak holds the largest sample.
func sampleHeap() (stop func(), peak *atomic.Uint64) {
	peak = new(atomic.Uint64)
	done := make(chan struct{})
	finished := make(chan struct{})
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() {
		metrics.Read(s)
		if v := s[0].Value.Uint64(); v > peak.Load() {
			peak.Store(v)
		}
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			read()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished; read() }, peak
}

// writePending writes n pending items (benchEvent records, fresh UUIDv7
// ids) into dir as segments of DefaultSegmentBytes, the files Enqueue
// would have written (without the fsyncs).
func writePending(tb testing.TB, dir string, n int) {
	tb.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	data, err := json.Marshal(benchEvent(0))
	if err != nil {
		tb.Fatal(err)
	}
	subj, _ := obsSubject(benchEvent(0))
	at := time.Now().UnixNano()
	var buf []byte
	seq := uint64(0)
	flush := func() {
		if len(buf) <= segHeaderLen {
			return
		}
		if err := os.WriteFile(filepath.Join(dir, segName(seq)), buf, 0o600); err != nil {
			tb.Fatal(err)
		}
		buf = buf[:0]
	}
	for i := 0; i < n; i++ {
		if len(buf) == 0 {
			seq++
			buf = append(buf, segMagic...)
		}
		buf = encodeRecord(buf, uuid.Must(uuid.NewV7()).String(), subj, at+int64(i), data)
		if int64(len(buf)) >= DefaultSegmentBytes {
			flush()
		}
	}
	flush()
}

const benchServerEnv = "OUTBOX_BENCH_SERVER"

// benchServerChild starts the test binary as an embedded JetStream server
// in a child process (TestMain runs benchServer) and returns its URL. The
// child exits when its stdin closes (at cleanup).
func benchServerChild(tb testing.TB) string {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchServerEnv+"="+natstest.TempDir(tb))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if url, ok := strings.CutPrefix(sc.Text(), "URL "); ok {
			go func() { _, _ = io.Copy(io.Discard, out) }()
			return url
		}
	}
	tb.Fatal("bench server child did not start")
	return ""
}

// benchServer is the child's body: a JetStream server storing in dir,
// until stdin closes.
func benchServer(dir string) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		fmt.Println("ERR not ready")
		os.Exit(2)
	}
	fmt.Println("URL", ns.ClientURL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	ns.Shutdown()
	ns.WaitForShutdown()
	os.Exit(0)
}
