package inventory

import (
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"
	"time"
)

// BenchmarkCollect measures one full collection (all categories) of this
// machine with the platform collector.
func BenchmarkCollect(b *testing.B) {
	c := NewCollector(CollectorOptions{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Collect(bg, c, "bench-pc"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCollectCategory is the same per category.
func BenchmarkCollectCategory(b *testing.B) {
	c := NewCollector(CollectorOptions{})
	for _, cat := range []string{"hw", "os", "sw", "net"} {
		b.Run(cat, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := CollectCategory(bg, c, "bench-pc", cat); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestRSSAfterCollections runs 100 full collections (10 on Windows, where
// under Wine one takes seconds; INVENTORY_RSS_N overrides) and checks that the
// process's memory does not keep growing: after a warm-up the Go heap in
// use may not grow by more than 4 MiB, and RSS (noisier: the race detector's
// shadow memory, the allocator's timing) by more than 32 MiB. Figures are
// logged (go test -v).
func TestRSSAfterCollections(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	if runtime.GOOS != "linux" && runtime.GOOS != "windows" {
		t.Skip("no collector")
	}
	c := NewCollector(CollectorOptions{ClassTimeout: time.Minute})
	collect := func(n int) {
		for range n {
			if _, err := Collect(bg, c, "rss-pc"); err != nil {
				t.Fatal(err)
			}
		}
	}
	n := 100
	if runtime.GOOS == "windows" {
		n = 10 // a WMI collection takes seconds under Wine
	}
	if v, err := strconv.Atoi(os.Getenv("INVENTORY_RSS_N")); err == nil && v > 0 {
		n = v
	}
	collect(5) // warm up: lazy DLL loads, caches, first heap growth
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapBefore := ms.HeapInuse
	before, gBefore := rss(t), runtime.NumGoroutine()
	start := time.Now()
	collect(n)
	el := time.Since(start)
	runtime.GC()
	debug.FreeOSMemory()
	after, gAfter := rss(t), runtime.NumGoroutine()
	runtime.ReadMemStats(&ms)
	t.Logf("%d collections in %v (%v each); RSS before %.1f MiB, after %.1f MiB (%+.1f MiB); heap in use %.1f MiB; goroutines %d → %d",
		n, el, el/time.Duration(n), mib(before), mib(after), mib(after)-mib(before), mib(ms.HeapInuse), gBefore, gAfter)
	if ms.HeapInuse > heapBefore+4<<20 {
		t.Errorf("Go heap in use grew from %.1f to %.1f MiB over %d collections", mib(heapBefore), mib(ms.HeapInuse), n)
	}
	if after > before+32<<20 {
		t.Errorf("RSS grew from %.1f to %.1f MiB over %d collections", mib(before), mib(after), n)
	}
	if gAfter > gBefore+2 {
		t.Errorf("goroutines grew from %d to %d", gBefore, gAfter)
	}
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// rss returns the resident set size of this process.
func rss(t *testing.T) uint64 {
	t.Helper()
	if runtime.GOOS == "windows" {
		return rssWindows(t)
	}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(l, []byte("VmRSS:")); ok {
			f := bytes.Fields(v)
			n, err := strconv.ParseUint(string(f[0]), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n * 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
