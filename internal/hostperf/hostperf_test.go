//go:build linux || windows

package hostperf

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

var burnSink atomic.Uint64

// burn keeps a goroutine busy until the process has used d more CPU time, by
// polling the process's CPU time rather than sleeping.
func burn(t *testing.T, d time.Duration) {
	t.Helper()
	start, _, err := selfUsage()
	if err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		x := uint64(0)
		for !stop.Load() {
			for i := range uint64(1 << 16) {
				x += i * i
			}
		}
		burnSink.Store(x)
	})
	defer wg.Wait()
	defer stop.Store(true)
	deadline := time.Now().Add(time.Minute)
	for {
		cpu, _, err := selfUsage()
		if err != nil {
			t.Fatal(err)
		}
		if cpu-start >= d {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time grew by %v in a minute of burning, want %v", cpu-start, d)
		}
		runtime.Gosched()
	}
}

func TestSelfCPUBurn(t *testing.T) {
	var s Self
	if _, _, err := s.Sample(time.Now()); err != nil {
		t.Fatal(err)
	}
	burn(t, 100*time.Millisecond)
	pct, rss, err := s.Sample(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cpu %.1f%% of one core, rss %d bytes", pct, rss)
	// The burning goroutine and the polling one may each use a core.
	if pct <= 0 || pct > 100*float64(runtime.NumCPU())*1.1+10 {
		t.Fatalf("cpu %v%%, want above 0 and at most %d cores", pct, runtime.NumCPU())
	}
	if rss == 0 {
		t.Fatal("rss 0")
	}
}

func TestSelfFirstSampleSinceStart(t *testing.T) {
	start, err := processStart()
	if err != nil {
		t.Fatal(err)
	}
	// initTime is set while the package initialises, just after the start.
	if start.After(initTime.Add(time.Second)) || start.Before(initTime.Add(-time.Minute)) {
		t.Fatalf("process start %v, package init %v", start, initTime)
	}
	burn(t, 20*time.Millisecond)
	var s Self
	pct, _, err := s.Sample(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if pct <= 0 {
		t.Fatalf("first sample cpu %v%%, want above 0: the process has run since it started", pct)
	}
}

func TestSelfClockBackwards(t *testing.T) {
	var s Self
	now := time.Now()
	if _, _, err := s.Sample(now); err != nil {
		t.Fatal(err)
	}
	burn(t, 10*time.Millisecond)
	for _, at := range []time.Time{now.Add(-time.Second), now.Add(-time.Second)} {
		pct, _, err := s.Sample(at)
		if err != nil || pct != 0 {
			t.Fatalf("sample at an earlier time: %v, %v; want 0, nil", pct, err)
		}
	}
}

func TestSelfConcurrent(t *testing.T) {
	var s Self
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				pct, rss, err := s.Sample(time.Now())
				if err != nil || pct < 0 || math.IsNaN(pct) || rss == 0 {
					t.Errorf("Sample: %v %v %v", pct, rss, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func checkPlausible(t *testing.T, first bool, p wire.HostPerf) {
	t.Helper()
	t.Logf("%+v", p)
	if p.CPUCount <= 0 {
		t.Errorf("cpu count %d", p.CPUCount)
	}
	if p.MemTotalBytes == 0 || p.MemUsedBytes > p.MemTotalBytes {
		t.Errorf("memory used %d of %d", p.MemUsedBytes, p.MemTotalBytes)
	}
	if p.SwapUsedBytes > p.SwapTotalBytes {
		t.Errorf("swap used %d of %d", p.SwapUsedBytes, p.SwapTotalBytes)
	}
	if !(p.CPUPct >= 0 && p.CPUPct <= 100) {
		t.Errorf("cpu %v%%", p.CPUPct)
	}
	for _, r := range []float64{p.DiskReadBytesPerSec, p.DiskWrittenBytesPerSec, p.NetRxBytesPerSec, p.NetTxBytesPerSec} {
		if !(r >= 0) || math.IsInf(r, 0) || (first && r != 0) {
			t.Errorf("rate %v", r)
		}
	}
	if first && p.CPUPct != 0 {
		t.Errorf("first sample cpu %v%%, want 0", p.CPUPct)
	}
}

func TestHostSample(t *testing.T) {
	var h Host
	now := time.Now()
	p, err := h.Sample(now)
	if err != nil {
		t.Fatal(err)
	}
	if !p.At.Equal(now) {
		t.Errorf("At %v, want %v", p.At, now)
	}
	checkPlausible(t, true, p)
	burn(t, 300*time.Millisecond)
	p, err = h.Sample(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	checkPlausible(t, false, p)
	if p.CPUPct <= 0 {
		t.Errorf("cpu %v%% after burning 300 ms of CPU, want above 0", p.CPUPct)
	}
}

func TestHostConcurrent(t *testing.T) {
	var h Host
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20 {
				if _, err := h.Sample(time.Now()); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkSample(b *testing.B) {
	b.Run("self", func(b *testing.B) {
		var s Self
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := s.Sample(time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("host", func(b *testing.B) {
		var h Host
		b.ReportAllocs()
		for b.Loop() {
			if _, err := h.Sample(time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
