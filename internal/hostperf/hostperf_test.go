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
	first, err := s.Sample(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if first.HasCPU || first.CPUPct != 0 {
		t.Fatalf("first sample %+v: want no CPU figure, it has no baseline", first)
	}
	if first.RSSBytes == 0 {
		t.Fatal("first sample: rss 0; memory needs no baseline")
	}
	burn(t, 100*time.Millisecond)
	got, err := s.Sample(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", got)
	// The burning goroutine and the polling one may each use a core.
	if !got.HasCPU || got.CPUPct <= 0 || got.CPUPct > 100*float64(runtime.NumCPU())*1.1+10 {
		t.Fatalf("cpu %v%% (known %v), want above 0 and at most %d cores", got.CPUPct, got.HasCPU, runtime.NumCPU())
	}
	if got.RSSBytes == 0 {
		t.Fatal("rss 0")
	}
}

func TestSelfClockBackwards(t *testing.T) {
	var s Self
	now := time.Now()
	if _, err := s.Sample(now); err != nil {
		t.Fatal(err)
	}
	burn(t, 10*time.Millisecond)
	for _, at := range []time.Time{now.Add(-time.Second), now.Add(-time.Second)} {
		got, err := s.Sample(at)
		if err != nil || got.CPUPct != 0 || !got.HasCPU {
			t.Fatalf("sample at an earlier time: %+v, %v; want 0%% (known), nil", got, err)
		}
	}
}

func TestSelfConcurrent(t *testing.T) {
	var s Self
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				got, err := s.Sample(time.Now())
				if err != nil || got.CPUPct < 0 || math.IsNaN(got.CPUPct) || got.RSSBytes == 0 {
					t.Errorf("Sample: %+v %v", got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestBootTime(t *testing.T) {
	bt, err := BootTime()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("booted %v (%v ago)", bt, time.Since(bt).Round(time.Second))
	if bt.After(time.Now()) || bt.Before(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)) || bt.Nanosecond() != 0 {
		t.Fatalf("boot time %v: want whole seconds, after 2000, not in the future", bt)
	}
	again, err := BootTime()
	if err != nil {
		t.Fatal(err)
	}
	if d := again.Sub(bt); d < -2*time.Second || d > 2*time.Second {
		t.Fatalf("boot time moved by %v between two reads", d)
	}
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
	if p.RatesUnknown != first {
		t.Errorf("RatesUnknown %v on the %s sample", p.RatesUnknown, map[bool]string{true: "first", false: "second"}[first])
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
			if _, err := s.Sample(time.Now()); err != nil {
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
