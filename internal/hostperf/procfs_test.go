package hostperf

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// fixtures holds captures of /proc files (testdata/vm, from a 2-CPU virtual
// machine) and garbled variants (testdata/garbled). They are embedded so the
// tests also run from a copied test binary, as under Wine.
//
//go:embed testdata
var fixtures embed.FS

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := fs.ReadFile(fixtures, "testdata/"+name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wantMalformed(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
	if !strings.HasPrefix(err.Error(), "hostperf: ") {
		t.Fatalf("err = %q, want prefix hostperf: ", err)
	}
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name        string
		in          []byte
		busy, total uint64
		cpus        int
	}{
		{"vm", fixture(t, "vm/stat"), 40488, 120521, 2},
		{"four fields", []byte("cpu  10 0 10 80\ncpu0 10 0 10 80\n"), 20, 100, 1},
		{"no final newline", []byte("cpu  10 1 10 70 9\ncpu0 1 1 1 1\ncpu1 1 1 1 1"), 21, 100, 2},
		{"guest ignored", []byte("cpu  10 0 10 80 0 0 0 0 55 66\ncpu0 1 2 3 4\n"), 20, 100, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			busy, total, cpus, err := parseStat(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if busy != tt.busy || total != tt.total || cpus != tt.cpus {
				t.Fatalf("got busy %d total %d cpus %d, want %d %d %d", busy, total, cpus, tt.busy, tt.total, tt.cpus)
			}
		})
	}
	bad := []struct {
		name string
		in   []byte
	}{
		{"garbled", fixture(t, "garbled/stat")},
		{"binary", fixture(t, "garbled/binary")},
		{"empty", nil},
		{"three fields", []byte("cpu  1 2 3\ncpu0 1 2 3 4\n")},
		{"no cpuN", []byte("cpu  1 2 3 4\nintr 5\n")},
		{"no cpu", []byte("cpu0 1 2 3 4\n")},
		{"two cpu lines", []byte("cpu  1 2 3 4\ncpu  1 2 3 4\ncpu0 1 2 3 4\n")},
		{"overflow", []byte("cpu  18446744073709551615 1 0 0\ncpu0 1 2 3 4\n")},
		{"huge number", []byte("cpu  184467440737095516150 1 0 0\ncpu0 1 2 3 4\n")},
		{"negative", []byte("cpu  -1 1 0 0\ncpu0 1 2 3 4\n")},
		{"bad cpuN", []byte("cpu  1 1 0 0\ncpu0x 1 2 3 4\n")},
		{"cpu prefix", []byte("cpu  1 1 0 0\ncpu0 1 2 3 4\ncpufoo 1\n")},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := parseStat(tt.in)
			wantMalformed(t, err)
		})
	}
}

func TestParseMeminfo(t *testing.T) {
	const k = 1024
	tests := []struct {
		name                                   string
		in                                     []byte
		memTotal, memUsed, swapTotal, swapUsed uint64
	}{
		{"vm", fixture(t, "vm/meminfo"), 24684092 * k, 556224 * k, 0, 0},
		{"before 3.14", fixture(t, "vm/meminfo_old"), 2048000 * k, 1628000 * k, 1000000 * k, 750000 * k},
		{"available above total", []byte("MemTotal: 10 kB\nMemAvailable: 20 kB\nSwapTotal: 5 kB\nSwapFree: 9 kB\n"), 10 * k, 0, 5 * k, 0},
		{"no unit", []byte("MemTotal: 4096\nMemAvailable: 1024\n"), 4096, 3072, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mt, mu, st, su, err := parseMeminfo(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if mt != tt.memTotal || mu != tt.memUsed || st != tt.swapTotal || su != tt.swapUsed {
				t.Fatalf("got %d %d %d %d, want %d %d %d %d", mt, mu, st, su, tt.memTotal, tt.memUsed, tt.swapTotal, tt.swapUsed)
			}
		})
	}
	bad := []struct {
		name string
		in   []byte
	}{
		{"garbled", fixture(t, "garbled/meminfo")},
		{"binary", fixture(t, "garbled/binary")},
		{"empty", nil},
		{"no total", []byte("MemFree: 10 kB\nMemAvailable: 10 kB\n")},
		{"zero total", []byte("MemTotal: 0 kB\nMemAvailable: 0 kB\n")},
		{"no available nor free", []byte("MemTotal: 10 kB\n")},
		{"other unit", []byte("MemTotal: 10 MB\nMemAvailable: 1 kB\n")},
		{"extra field", []byte("MemTotal: 10 kB x\nMemAvailable: 1 kB\n")},
		{"no value", []byte("MemTotal:\nMemAvailable: 1 kB\n")},
		{"no colon", []byte("MemTotal: 10 kB\nMemAvailable 1 kB\n")},
		{"overflow", []byte("MemTotal: 18446744073709551615 kB\nMemAvailable: 1 kB\n")},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, _, err := parseMeminfo(tt.in)
			wantMalformed(t, err)
		})
	}
}

func TestParseDiskstats(t *testing.T) {
	type dev struct {
		name   string
		rd, wr uint64
	}
	collect := func(b []byte) ([]dev, error) {
		var got []dev
		err := parseDiskstats(b, func(name []byte, rd, wr uint64) error {
			got = append(got, dev{string(name), rd, wr})
			return nil
		})
		return got, err
	}
	got, err := collect(fixture(t, "vm/diskstats"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 10 || got[8] != (dev{"vda", 2011114, 6488592}) || got[0] != (dev{"loop0", 0, 0}) {
		t.Fatalf("got %v", got)
	}
	// Kernels before 4.18 have 11 counters, not 17.
	got, err = collect([]byte("   8       0 sda 1 2 3 4 5 6 7 8 9 10 11\n"))
	if err != nil || len(got) != 1 || got[0] != (dev{"sda", 3, 7}) {
		t.Fatalf("got %v, %v", got, err)
	}
	if got, err := collect(nil); err != nil || len(got) != 0 {
		t.Fatalf("empty: got %v, %v", got, err)
	}
	stop := errors.New("stop")
	if err := parseDiskstats(fixture(t, "vm/diskstats"), func([]byte, uint64, uint64) error { return stop }); err != stop {
		t.Fatalf("err = %v, want the callback's", err)
	}
	bad := []struct {
		name string
		in   []byte
	}{
		{"truncated", fixture(t, "garbled/diskstats")},
		{"binary", fixture(t, "garbled/binary")},
		{"old partition line", []byte("   8       1 sda1 1 2 3 4\n")},
		{"bad number", []byte("   8       0 sda 1 2 x 4 5 6 7 8 9 10 11\n")},
		{"bad major", []byte("   a       0 sda 1 2 3 4 5 6 7 8 9 10 11\n")},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := collect(tt.in)
			wantMalformed(t, err)
		})
	}
}

func TestParseNetDev(t *testing.T) {
	type iface struct {
		name   string
		rx, tx uint64
	}
	collect := func(b []byte) ([]iface, error) {
		var got []iface
		err := parseNetDev(b, func(name []byte, rx, tx uint64) error {
			got = append(got, iface{string(name), rx, tx})
			return nil
		})
		return got, err
	}
	got, err := collect(fixture(t, "vm/netdev"))
	if err != nil {
		t.Fatal(err)
	}
	want := []iface{{"lo", 641113, 641113}, {"ifb0", 0, 0}, {"ifb1", 0, 0}, {"eth0", 276924908, 483594}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	header := "Inter-|   Receive |  Transmit\n face |bytes packets|bytes packets\n"
	// Old kernels wrote no space after the colon.
	got, err = collect([]byte(header + "eth0:1234 1 0 0 0 0 0 0 5678 1 0 0 0 0 0 0\n"))
	if err != nil || len(got) != 1 || got[0] != (iface{"eth0", 1234, 5678}) {
		t.Fatalf("got %v, %v", got, err)
	}
	if got, err := collect([]byte(header)); err != nil || len(got) != 0 {
		t.Fatalf("headers only: got %v, %v", got, err)
	}
	bad := []struct {
		name string
		in   []byte
	}{
		{"few counters", fixture(t, "garbled/netdev")},
		{"binary", fixture(t, "garbled/binary")},
		{"empty", nil},
		{"no header", []byte("eth0: 1 0 0 0 0 0 0 0 5 0 0 0 0 0 0 0\neth1: 1 0 0 0 0 0 0 0 5 0 0 0 0 0 0 0\n")},
		{"no colon", []byte(header + "eth0 1 0 0 0 0 0 0 0 5 0 0 0 0 0 0 0\n")},
		{"no name", []byte(header + " : 1 0 0 0 0 0 0 0 5 0 0 0 0 0 0 0\n")},
		{"bad number", []byte(header + "eth0: 1 0 0 0 0 0 0 0 -5 0 0 0 0 0 0 0\n")},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := collect(tt.in)
			wantMalformed(t, err)
		})
	}
}

func TestParseSelf(t *testing.T) {
	if pages, err := parseStatm(fixture(t, "vm/statm")); err != nil || pages != 445 {
		t.Fatalf("statm: %d, %v", pages, err)
	}
	if r, w, err := parseIO(fixture(t, "vm/io")); err != nil || r != 1187840 || w != 45056 {
		t.Fatalf("io: %d %d, %v", r, w, err)
	}
	if bt, err := parseBtime(fixture(t, "vm/stat")); err != nil || bt != 1795763830 {
		t.Fatalf("btime: %d, %v", bt, err)
	}
	for _, in := range []string{"", "123", "123 x 5", "\x00\xff"} {
		if _, err := parseStatm([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("statm %q: err = %v", in, err)
		}
	}
	for _, in := range []string{"", "read_bytes: 1\n", "write_bytes: 1\n", "read_bytes: x\nwrite_bytes: 1\n",
		"read_bytes: 1\nwrite_bytes: -1\n", "read_bytes: 1\nread_bytes: 2\nwrite_bytes: 3\n",
		"read_bytes: 99999999999999999999999\nwrite_bytes: 1\n"} {
		if _, _, err := parseIO([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("io %q: err = %v", in, err)
		}
	}
	for _, in := range []string{"", "cpu 1 2 3\n", "btime\n", "btime x\n", "btime 0\n", "btime -5\n", "btime 99999999999999999999\n"} {
		if _, err := parseBtime([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("btime %q: err = %v", in, err)
		}
	}
	for _, name := range []string{"garbled/binary", "garbled/stat"} {
		b := fixture(t, name)
		if _, err := parseStatm(b); err == nil {
			t.Errorf("statm of %s: no error", name)
		}
		if _, _, err := parseIO(b); err == nil {
			t.Errorf("io of %s: no error", name)
		}
	}
}

// machine builds /proc and /sys fixtures for a procSource.
type machine struct {
	fs    fstest.MapFS
	cpu   [5]uint64 // user nice system idle iowait
	disks []fixtureDev
	nets  []fixtureDev
}

type fixtureDev struct {
	name string
	a, b uint64 // sectors read and written, or bytes received and sent
}

func (m *machine) sync() {
	var s strings.Builder
	fmt.Fprintf(&s, "cpu  %d %d %d %d %d 0 0 0 0 0\n", m.cpu[0], m.cpu[1], m.cpu[2], m.cpu[3], m.cpu[4])
	for i := range 4 {
		fmt.Fprintf(&s, "cpu%d 1 1 1 1 1 0 0 0 0 0\n", i)
	}
	s.WriteString("intr 1 2 3\nctxt 5\nbtime 1700000000\n")
	m.fs["proc/stat"] = &fstest.MapFile{Data: []byte(s.String())}
	s.Reset()
	for i, d := range m.disks {
		fmt.Fprintf(&s, "%4d %7d %s 100 0 %d 50 200 0 %d 80 0 90 130 0 0 0 0 0 0\n", 8, i, d.name, d.a, d.b)
	}
	m.fs["proc/diskstats"] = &fstest.MapFile{Data: []byte(s.String())}
	s.Reset()
	s.WriteString("Inter-|   Receive |  Transmit\n face |bytes packets|bytes packets\n")
	for _, d := range m.nets {
		fmt.Fprintf(&s, "%6s: %d 10 0 0 0 0 0 0 %d 10 0 0 0 0 0 0\n", d.name, d.a, d.b)
	}
	m.fs["proc/net/dev"] = &fstest.MapFile{Data: []byte(s.String())}
}

func (m *machine) dev(list []fixtureDev, name string) *fixtureDev {
	for i := range list {
		if list[i].name == name {
			return &list[i]
		}
	}
	panic("no device " + name)
}

func newMachine() *machine {
	file := &fstest.MapFile{Data: []byte("x\n")}
	m := &machine{
		fs: fstest.MapFS{
			"proc/meminfo":                    {Data: []byte("MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 400 kB\nSwapTotal: 200 kB\nSwapFree: 150 kB\n")},
			"sys/block/sda/device/vendor":     file,
			"sys/block/nvme0n1/device/model":  file,
			"sys/block/loop0/size":            file,
			"sys/block/dm-0/size":             file,
			"sys/class/net/eth0/device/class": file,
			"sys/class/net/lo/mtu":            file,
			"sys/class/net/docker0/mtu":       file,
		},
		cpu: [5]uint64{100, 0, 100, 800, 0},
		disks: []fixtureDev{
			{"sda", 1000, 2000}, {"sda1", 900, 1900}, {"nvme0n1", 0, 0},
			{"loop0", 50, 0}, {"dm-0", 800, 700},
		},
		nets: []fixtureDev{{"lo", 1e6, 1e6}, {"eth0", 10000, 5000}, {"docker0", 3000, 3000}},
	}
	m.sync()
	return m
}

func sampleOK(t *testing.T, h *Host, at time.Time) *sampled {
	t.Helper()
	p, err := h.Sample(at)
	if err != nil {
		t.Fatal(err)
	}
	if !p.At.Equal(at) || p.PcID != "" {
		t.Fatalf("At %v PcID %q, want %v and empty", p.At, p.PcID, at)
	}
	return &sampled{p.CPUPct, p.CPUCount, p.MemUsedBytes, p.MemTotalBytes, p.SwapUsedBytes, p.SwapTotalBytes,
		p.DiskReadBytesPerSec, p.DiskWrittenBytesPerSec, p.NetRxBytesPerSec, p.NetTxBytesPerSec}
}

type sampled struct {
	cpuPct                                 float64
	cpuCount                               int
	memUsed, memTotal, swapUsed, swapTotal uint64
	diskRead, diskWritten, netRx, netTx    float64
}

func TestHostFixture(t *testing.T) {
	m := newMachine()
	h := &Host{src: &procSource{fsys: m.fs}}
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

	got := sampleOK(t, h, t0)
	want := sampled{cpuCount: 4, memUsed: 600 << 10, memTotal: 1000 << 10, swapUsed: 50 << 10, swapTotal: 200 << 10}
	if *got != want {
		t.Fatalf("first sample %+v, want %+v", *got, want)
	}

	// 10 s later: only sda and nvme0n1 count among the disks (sda1 is a
	// partition, loop0 a loop device, dm-0 virtual), only eth0 among the
	// interfaces (lo is loopback, docker0 virtual while eth0 is physical).
	m.cpu[0] += 150
	m.cpu[2] += 50
	m.cpu[3] += 200
	m.cpu[4] += 100
	m.dev(m.disks, "sda").a += 200
	m.dev(m.disks, "sda").b += 400
	m.dev(m.disks, "sda1").a += 190
	m.dev(m.disks, "nvme0n1").a += 100
	m.dev(m.disks, "loop0").a += 5000
	m.dev(m.disks, "dm-0").a += 300
	m.dev(m.nets, "eth0").a += 50000
	m.dev(m.nets, "eth0").b += 20000
	m.dev(m.nets, "lo").a += 999
	m.dev(m.nets, "docker0").a += 7777
	m.sync()
	got = sampleOK(t, h, t0.Add(10*time.Second))
	want.cpuPct = 40
	want.diskRead = 300 * 512 / 10
	want.diskWritten = 400 * 512 / 10
	want.netRx = 5000
	want.netTx = 2000
	if *got != want {
		t.Fatalf("second sample %+v, want %+v", *got, want)
	}

	// A disk gone and a counter reset count 0, never negative.
	m.disks = m.disks[:2]
	m.dev(m.disks, "sda").a = 0
	m.dev(m.disks, "sda").b += 1024
	m.dev(m.nets, "eth0").a += 1000
	m.dev(m.nets, "eth0").b = 0
	m.sync()
	got = sampleOK(t, h, t0.Add(20*time.Second))
	if got.cpuPct != 0 || got.diskRead != 0 || got.diskWritten != float64(1024*512)/10 || got.netRx != 100 || got.netTx != 0 {
		t.Fatalf("third sample %+v", *got)
	}
	if src := h.src.(*procSource); len(src.disks) != 2 || len(src.nets) != 3 {
		t.Fatalf("tracked %d disks and %d interfaces, want 2 and 3", len(src.disks), len(src.nets))
	}

	// A disk that comes back counts from its second sample.
	m.disks = append(m.disks, fixtureDev{"nvme0n1", 5000, 5000})
	m.sync()
	got = sampleOK(t, h, t0.Add(30*time.Second))
	if got.diskRead != 0 || got.diskWritten != 0 {
		t.Fatalf("fourth sample %+v", *got)
	}

	// The clock going backwards gives no rate.
	m.dev(m.disks, "nvme0n1").a += 10
	m.sync()
	got = sampleOK(t, h, t0.Add(25*time.Second))
	if got.diskRead != 0 {
		t.Fatalf("backwards sample %+v", *got)
	}
}

func TestHostFixtureFallback(t *testing.T) {
	// No device has a device link, as in some virtual machines and
	// containers: every /sys/block entry but loop, ram and zram devices
	// counts, and every interface but lo.
	file := &fstest.MapFile{Data: []byte("x\n")}
	m := &machine{
		fs: fstest.MapFS{
			"proc/meminfo":         {Data: []byte("MemTotal: 1000 kB\nMemAvailable: 400 kB\n")},
			"sys/block/xvda/size":  file,
			"sys/block/loop0/size": file, "sys/block/ram0/size": file, "sys/block/zram0/size": file,
		},
		cpu:   [5]uint64{1, 1, 1, 1, 1},
		disks: []fixtureDev{{"xvda", 0, 0}, {"xvda1", 0, 0}, {"loop0", 0, 0}, {"ram0", 0, 0}, {"zram0", 0, 0}},
		nets:  []fixtureDev{{"lo", 0, 0}, {"eth0", 0, 0}, {"wg0", 0, 0}},
	}
	m.sync()
	h := &Host{src: &procSource{fsys: m.fs}}
	t0 := time.Unix(1e9, 0)
	sampleOK(t, h, t0)
	for i := range m.disks {
		m.disks[i].a += 10
		m.disks[i].b += 20
	}
	for i := range m.nets {
		m.nets[i].a += 1000
		m.nets[i].b += 3000
	}
	m.sync()
	got := sampleOK(t, h, t0.Add(time.Second))
	if got.diskRead != 10*512 || got.diskWritten != 20*512 || got.netRx != 2000 || got.netTx != 6000 {
		t.Fatalf("got %+v", *got)
	}
	if got.cpuPct != 0 {
		t.Fatalf("cpu %v with no CPU time passed, want 0", got.cpuPct)
	}
}

func TestHostFixtureErrors(t *testing.T) {
	m := newMachine()
	h := &Host{src: &procSource{fsys: m.fs}}
	t0 := time.Unix(1e9, 0)
	sampleOK(t, h, t0)

	good := m.fs["proc/stat"]
	m.fs["proc/stat"] = &fstest.MapFile{Data: fixture(t, "garbled/binary")}
	if _, err := h.Sample(t0.Add(time.Second)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("garbled stat: err = %v", err)
	}
	// The sample after an error has no rates: its baseline is gone.
	m.fs["proc/stat"] = good
	m.dev(m.nets, "eth0").a += 1000
	m.sync()
	if got := sampleOK(t, h, t0.Add(2*time.Second)); got.netRx != 0 {
		t.Fatalf("after error: %+v", *got)
	}
	m.dev(m.nets, "eth0").a += 1000
	m.sync()
	if got := sampleOK(t, h, t0.Add(3*time.Second)); got.netRx != 1000 {
		t.Fatalf("after recovery: %+v", *got)
	}

	for _, tc := range []struct{ file, garbled string }{
		{"proc/meminfo", "garbled/meminfo"},
		{"proc/diskstats", "garbled/diskstats"},
		{"proc/net/dev", "garbled/netdev"},
		{"proc/diskstats", "garbled/binary"},
	} {
		m.sync()
		saved := m.fs[tc.file]
		m.fs[tc.file] = &fstest.MapFile{Data: fixture(t, tc.garbled)}
		if _, err := h.Sample(t0); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s as %s: err = %v", tc.file, tc.garbled, err)
		}
		m.fs[tc.file] = saved
	}

	m.fs["proc/diskstats"] = &fstest.MapFile{Data: []byte(
		"8 0 sda 1 2 3 4 5 6 7 8 9 10 11\n8 0 sda 1 2 3 4 5 6 7 8 9 10 11\n")}
	if _, err := h.Sample(t0); !errors.Is(err, ErrMalformed) {
		t.Errorf("duplicate disk: err = %v", err)
	}

	// Missing disk and network files count as no traffic; missing stat or
	// meminfo is an error.
	delete(m.fs, "proc/diskstats")
	delete(m.fs, "proc/net/dev")
	sampleOK(t, h, t0.Add(time.Second))
	if got := sampleOK(t, h, t0.Add(2*time.Second)); got.diskRead != 0 || got.netRx != 0 {
		t.Fatalf("no disk and net files: %+v", *got)
	}
	delete(m.fs, "proc/meminfo")
	if _, err := h.Sample(t0); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("no meminfo: err = %v", err)
	}
}

func TestReadFileTooLarge(t *testing.T) {
	p := &procSource{fsys: fstest.MapFS{"proc/stat": {Data: make([]byte, maxProcFile+1)}}}
	if _, err := p.readFile("proc/stat"); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParsers(f *testing.F) {
	for _, name := range []string{"vm/stat", "vm/meminfo", "vm/meminfo_old", "vm/diskstats", "vm/netdev",
		"vm/statm", "vm/io", "garbled/binary", "garbled/diskstats", "garbled/netdev"} {
		f.Add(fixture(f, name))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if busy, total, cpus, err := parseStat(b); err == nil && (busy > total || cpus < 1) {
			t.Fatalf("stat: busy %d total %d cpus %d", busy, total, cpus)
		}
		if mt, mu, st, su, err := parseMeminfo(b); err == nil && (mu > mt || su > st || mt == 0) {
			t.Fatalf("meminfo: %d %d %d %d", mt, mu, st, su)
		}
		_ = parseDiskstats(b, func(name []byte, _, _ uint64) error {
			if len(name) == 0 {
				t.Fatal("diskstats: empty name")
			}
			return nil
		})
		_ = parseNetDev(b, func(name []byte, _, _ uint64) error {
			if len(name) == 0 {
				t.Fatal("net/dev: empty name")
			}
			return nil
		})
		_, _ = parseStatm(b)
		_, _, _ = parseIO(b)
		if bt, err := parseBtime(b); err == nil && bt <= 0 {
			t.Fatalf("btime %d", bt)
		}
	})
}
