package hostperf

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// procStatusKB returns the figure of key in a /proc file of "key: n kB"
// lines, in bytes.
func procKB(t *testing.T, file, key string) uint64 {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != key {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n * 1024
	}
	t.Fatalf("no %s in %s", key, file)
	return 0
}

func TestHostMatchesProc(t *testing.T) {
	var h Host
	p, err := h.Sample(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if p.CPUCount != runtime.NumCPU() {
		t.Errorf("cpu count %d, runtime.NumCPU %d", p.CPUCount, runtime.NumCPU())
	}
	if want := procKB(t, "/proc/meminfo", "MemTotal"); p.MemTotalBytes != want {
		t.Errorf("mem total %d, /proc/meminfo %d", p.MemTotalBytes, want)
	}
	if want := procKB(t, "/proc/meminfo", "SwapTotal"); p.SwapTotalBytes != want {
		t.Errorf("swap total %d, /proc/meminfo %d", p.SwapTotalBytes, want)
	}
}

func TestSelfRSSMatchesStatus(t *testing.T) {
	var s Self
	_, rss, err := s.Sample(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := procKB(t, "/proc/self/status", "VmRSS")
	diff := max(rss, want) - min(rss, want)
	t.Logf("rss %d, VmRSS %d", rss, want)
	if rss == 0 || diff > max(want/10, 4<<20) {
		t.Fatalf("rss %d, /proc/self/status VmRSS %d", rss, want)
	}
}

func TestHostLinuxDevices(t *testing.T) {
	// Whatever this machine has, the real /sys must classify loopback as
	// excluded and a partition (absent from /sys/block) as excluded.
	p := newSystemSource().(*procSource)
	if c := p.netClass("lo"); c != classExcluded {
		t.Errorf("lo: class %d", c)
	}
	if c := p.diskClass("no-such-disk1"); c != classExcluded {
		t.Errorf("missing disk: class %d", c)
	}
	if c := p.diskClass("../../etc"); c != classExcluded {
		t.Errorf("path in name: class %d", c)
	}
}
