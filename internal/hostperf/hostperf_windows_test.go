package hostperf

import (
	"testing"
	"time"
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
	start, err := processStart()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("process started %v ago", time.Since(start))
	if _, _, err := s.Sample(time.Now()); err != nil {
		t.Fatal(err)
	}
}
