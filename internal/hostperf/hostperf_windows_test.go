package hostperf

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
)

func TestMemFigures(t *testing.T) {
	const g = 1 << 30
	tests := []struct {
		name                                   string
		ms                                     memoryStatusEx
		memTotal, memUsed, swapTotal, swapUsed uint64
	}{
		{"page file in use", memoryStatusEx{totalPhys: 16 * g, availPhys: 6 * g, totalPageFile: 20 * g, availPageFile: 8 * g}, 16 * g, 10 * g, 4 * g, 2 * g},
		{"commit below used", memoryStatusEx{totalPhys: 16 * g, availPhys: 6 * g, totalPageFile: 20 * g, availPageFile: 12 * g}, 16 * g, 10 * g, 4 * g, 0},
		{"no page file", memoryStatusEx{totalPhys: 8 * g, availPhys: 2 * g, totalPageFile: 8 * g, availPageFile: 1 * g}, 8 * g, 6 * g, 0, 0},
		{"commit beyond total", memoryStatusEx{totalPhys: 8 * g, availPhys: 0, totalPageFile: 9 * g, availPageFile: 0}, 8 * g, 8 * g, 1 * g, 1 * g},
		{"nonsense", memoryStatusEx{totalPhys: 8 * g, availPhys: 9 * g, totalPageFile: 1 * g, availPageFile: 2 * g}, 8 * g, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mt, mu, st, su := memFigures(&tt.ms)
			if mt != tt.memTotal || mu != tt.memUsed || st != tt.swapTotal || su != tt.swapUsed {
				t.Fatalf("got %d %d %d %d, want %d %d %d %d", mt, mu, st, su, tt.memTotal, tt.memUsed, tt.swapTotal, tt.swapUsed)
			}
		})
	}
}

func TestWindowsSources(t *testing.T) {
	// Report what this machine offers; under Wine the disk and network
	// figures may be missing, which the sampler must survive.
	w := newSystemSource().(*winSource)
	var r reading
	if err := w.read(&r); err != nil {
		t.Fatal(err)
	}
	t.Logf("cpu busy %d of %d, %d CPUs; %d drives, %d interfaces", r.cpuBusy, r.cpuTotal, r.cpuCount, len(w.disks), len(w.nets))
	if r.cpuTotal == 0 || r.cpuBusy > r.cpuTotal {
		t.Errorf("cpu busy %d of %d", r.cpuBusy, r.cpuTotal)
	}
	for n := range 4 {
		if _, err := drivePerformance(n); err != nil {
			t.Logf(`\\.\PhysicalDrive%d: %v`, n, err)
		}
	}
	var s Self
	got, err := s.Sample(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("self: %+v", got)
}

func underWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}

func TestSelfDiskWindows(t *testing.T) {
	var s Self
	before, err := s.Sample(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(os.TempDir(), fmt.Sprintf("hostperf-%d", os.Getpid())))
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(make([]byte, 1<<20))
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	after, err := s.Sample(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("before %+v after %+v", before, after)
	if underWine() && (!after.HasDisk || after.DiskWrittenBytes == 0) {
		t.Skip("Wine reports no process I/O counters")
	}
	if !after.HasDisk || after.DiskWrittenBytes < before.DiskWrittenBytes+1<<20 || after.DiskReadBytes < before.DiskReadBytes {
		t.Fatalf("1 MiB written between %+v and %+v", before, after)
	}
}

func TestReadLogon(t *testing.T) {
	// The reader is pointed at a scratch key under HKCU, so the test
	// neither needs nor touches the real LogonUI key.
	path := fmt.Sprintf(`Software\kanade-test\logon-%d`, os.Getpid())
	defer registry.DeleteKey(registry.CURRENT_USER, path)
	if l, err := readLogon(registry.CURRENT_USER, path); err != nil || l != (Logon{}) {
		t.Fatalf("missing key: %+v, %v", l, err)
	}
	k, _, err := registry.CreateKey(registry.CURRENT_USER, path, registry.ALL_ACCESS)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if err := k.SetStringValue("LastLoggedOnUser", `CORP\taro`); err != nil {
		t.Fatal(err)
	}
	if l, err := readLogon(registry.CURRENT_USER, path); err != nil || l != (Logon{User: `CORP\taro`}) {
		t.Fatalf("user only: %+v, %v", l, err)
	}
	if err := k.SetStringValue("LastLoggedOnDisplayName", "山田 太郎"); err != nil {
		t.Fatal(err)
	}
	if l, err := readLogon(registry.CURRENT_USER, path); err != nil || l != (Logon{User: `CORP\taro`, DisplayName: "山田 太郎"}) {
		t.Fatalf("both: %+v, %v", l, err)
	}
	if err := k.SetDWordValue("LastLoggedOnDisplayName", 7); err != nil {
		t.Fatal(err)
	}
	if _, err := readLogon(registry.CURRENT_USER, path); err == nil {
		t.Fatal("a DWORD display name: no error")
	}
	if _, err := LastLogon(); err != nil {
		t.Fatalf("LastLogon: %v", err)
	}
}
