package procperf

import (
	"context"
	"errors"
	"testing"
	"time"
)

// fakeSource returns the processes a test sets.
type fakeSource struct {
	procs []proc
	err   error
	ioErr map[uint32]bool
	reads int // readIO calls
}

func (f *fakeSource) list(_ context.Context, dst []proc) ([]proc, error) {
	return append(dst, f.procs...), f.err
}

func (f *fakeSource) readIO(p *proc) {
	f.reads++
	if f.ioErr[p.pid] {
		p.ioOK = false
	}
}

func fp(pid uint32, start uint64, cpu time.Duration, rss, rd, wr uint64) proc {
	return proc{pid: pid, start: start, name: "p", cpu: cpu, rss: rss, ioRead: rd, ioWritten: wr, ioOK: true}
}

func TestSampleCPUAndRates(t *testing.T) {
	src := &fakeSource{}
	s := &Sampler{src: src}
	ctx := context.Background()
	t0 := time.Now()
	src.procs = []proc{
		fp(1, 10, 1*time.Second, 100, 0, 0),
		fp(2, 20, 5*time.Second, 300, 1000, 2000),
		fp(3, 30, 2*time.Second, 200, 0, 0),
	}
	first, err := s.Sample(ctx, t0, 2)
	if err != nil {
		t.Fatal(err)
	}
	// No baseline: CPU 0 everywhere, so the larger resident set wins; no rates.
	if len(first) != 2 || first[0].PID != 2 || first[1].PID != 3 || first[0].CPUPct != 0 {
		t.Fatalf("first sample %+v", first)
	}
	if first[0].DiskReadBytesPerSec != nil {
		t.Fatalf("first sample has a rate: %+v", first[0])
	}

	// 2 s later: pid 1 used 3 s (150 %), pid 2 1 s (50 %), pid 3 exited, pid
	// 4 is new with 1 s (all of it counts: 50 %); pid 2 read 4000 B.
	src.procs = []proc{
		fp(1, 10, 4*time.Second, 100, 0, 0),
		fp(2, 20, 6*time.Second, 300, 5000, 2000),
		fp(4, 40, 1*time.Second, 50, 0, 0),
	}
	got, err := s.Sample(ctx, t0.Add(2*time.Second), 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].PID != 1 || got[0].CPUPct != 150 || got[1].PID != 2 || got[1].CPUPct != 50 || got[2].PID != 4 || got[2].CPUPct != 50 {
		t.Fatalf("second sample %+v", got)
	}
	// Rates only for pid 2, which the previous sample returned.
	if r := got[1].DiskReadBytesPerSec; r == nil || *r != 2000 || *got[1].DiskWrittenBytesPerSec != 0 {
		t.Fatalf("pid 2 rates %+v", got[1])
	}
	if got[0].DiskReadBytesPerSec != nil || got[2].DiskReadBytesPerSec != nil {
		t.Fatalf("rates for processes not returned before: %+v", got)
	}

	// Pid 1 reused by a new process (another start time) with 1 s: 100 %,
	// not a negative difference.
	src.procs = []proc{fp(1, 11, 1*time.Second, 100, 0, 0)}
	got, err = s.Sample(ctx, t0.Add(3*time.Second), 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].CPUPct != 100 || got[0].DiskReadBytesPerSec != nil {
		t.Fatalf("reused pid %+v", got)
	}

	// n below 1 returns one process.
	if got, _ := s.Sample(ctx, t0.Add(4*time.Second), 0); len(got) != 1 {
		t.Fatalf("n=0: %+v", got)
	}

	// Reset: the next sample is a baseline again.
	s.Reset()
	src.procs = []proc{fp(1, 11, 9*time.Second, 100, 0, 0)}
	if got, _ := s.Sample(ctx, t0.Add(5*time.Second), 1); got[0].CPUPct != 0 {
		t.Fatalf("after Reset: %+v", got)
	}
}

func TestSampleErrorResetsBaseline(t *testing.T) {
	src := &fakeSource{procs: []proc{fp(1, 1, time.Second, 1, 0, 0)}}
	s := &Sampler{src: src}
	ctx := context.Background()
	t0 := time.Now()
	if _, err := s.Sample(ctx, t0, 1); err != nil {
		t.Fatal(err)
	}
	src.err = errors.New("boom")
	if _, err := s.Sample(ctx, t0.Add(time.Second), 1); err == nil {
		t.Fatal("no error")
	}
	src.err = nil
	src.procs[0].cpu = 5 * time.Second
	got, err := s.Sample(ctx, t0.Add(2*time.Second), 1)
	if err != nil || got[0].CPUPct != 0 {
		t.Fatalf("after an error: %+v %v, want a new baseline", got, err)
	}
	// A cancelled context fails the sample.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Sample(cctx, t0.Add(3*time.Second), 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// TestSampleReadsIOOfTopOnly: I/O counters are read for the processes
// returned, not for all of them.
func TestSampleReadsIOOfTopOnly(t *testing.T) {
	src := &fakeSource{}
	for i := range 50 {
		src.procs = append(src.procs, fp(uint32(i+1), 1, 0, uint64(i), 0, 0))
	}
	s := &Sampler{src: src}
	if _, err := s.Sample(context.Background(), time.Now(), 5); err != nil {
		t.Fatal(err)
	}
	if src.reads != 5 {
		t.Fatalf("readIO called %d times, want 5", src.reads)
	}
}
