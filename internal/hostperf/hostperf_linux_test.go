package hostperf

import (
	"bufio"
	"os"
	"path/filepath"
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
	got, err := s.Sample(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rss := got.RSSBytes
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

// procIO returns read_bytes and write_bytes of /proc/self/io, read here
// independently of parseIO.
func procIO(t *testing.T) (read, written uint64) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		n, _ := strconv.ParseUint(v, 10, 64)
		switch k {
		case "read_bytes":
			read = n
		case "write_bytes":
			written = n
		}
	}
	return read, written
}

func TestSelfDiskMatchesProc(t *testing.T) {
	// The counters only grow, so a reading of /proc/self/io taken between
	// two samples lies between them: that pins down which fields Sample
	// reports (rchar and wchar, the other candidates, are larger).
	var s Self
	dir := t.TempDir()
	for i := range 3 {
		before, err := s.Sample(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(filepath.Join(dir, strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(make([]byte, 1<<20)); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		r, w := procIO(t)
		after, err := s.Sample(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("read %d..%d..%d written %d..%d..%d", before.DiskReadBytes, r, after.DiskReadBytes, before.DiskWrittenBytes, w, after.DiskWrittenBytes)
		if !before.HasDisk || !after.HasDisk {
			t.Fatalf("no disk figures: %+v %+v", before, after)
		}
		if before.DiskReadBytes > r || r > after.DiskReadBytes || before.DiskWrittenBytes > w || w > after.DiskWrittenBytes {
			t.Fatalf("/proc/self/io read %d written %d, not between the samples %+v and %+v", r, w, before, after)
		}
	}
}
