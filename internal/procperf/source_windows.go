package procperf

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/kanade/kanade-agent/internal/winproc"
)

// winSource lists processes with a Toolhelp snapshot.
type winSource struct{}

func newSystemSource() source { return winSource{} }

// filetime converts a FILETIME (a duration or an instant) to 100 ns units.
func filetime(ft windows.Filetime) uint64 {
	return uint64(ft.HighDateTime)<<32 | uint64(ft.LowDateTime)
}

func (winSource) list(ctx context.Context, dst []proc) ([]proc, error) {
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPPROCESS, 0)
	if err != nil {
		return dst, fmt.Errorf("procperf: CreateToolhelp32Snapshot: %w", err)
	}
	defer windows.CloseHandle(snap)
	var e windows.ProcessEntry32
	e.Size = uint32(unsafe.Sizeof(e))
	err = windows.Process32First(snap, &e)
	for i := 0; err == nil; i++ {
		if i%256 == 0 && ctx.Err() != nil {
			return dst, ctx.Err()
		}
		if p, ok := readProcess(e.ProcessID); ok {
			p.name = windows.UTF16ToString(e.ExeFile[:])
			dst = append(dst, p)
		}
		err = windows.Process32Next(snap, &e)
	}
	if !errors.Is(err, windows.ERROR_NO_MORE_FILES) {
		return dst, fmt.Errorf("procperf: Process32Next: %w", err)
	}
	return dst, nil
}

// readProcess reads the times, working set and I/O counters of process
// pid; ok is false when it cannot be opened or its times read (it exited,
// or it is protected). None of the calls waits on the process.
func readProcess(pid uint32) (p proc, ok bool) {
	if pid == 0 { // the System Idle Process: its "CPU time" is idle time
		return p, false
	}
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, pid)
	if err != nil {
		return p, false
	}
	defer windows.CloseHandle(h)
	var creation, exit, kernel, user windows.Filetime
	if err := windows.GetProcessTimes(h, &creation, &exit, &kernel, &user); err != nil {
		return p, false
	}
	p.pid = pid
	p.start = filetime(creation)
	p.cpu = time.Duration(filetime(kernel)+filetime(user)) * 100
	if rss, err := winproc.WorkingSet(h); err == nil {
		p.rss = rss
	}
	if r, w, err := winproc.IOTransfer(h); err == nil {
		p.ioRead, p.ioWritten, p.ioOK = r, w, true
	}
	return p, true
}

// readIO does nothing: list read the counters with the rest.
func (winSource) readIO(*proc) {}
