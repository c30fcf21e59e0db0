package procperf

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

var (
	modkernel32                 = windows.NewLazySystemDLL("kernel32.dll")
	procK32GetProcessMemoryInfo = modkernel32.NewProc("K32GetProcessMemoryInfo")
	procGetProcessIoCounters    = modkernel32.NewProc("GetProcessIoCounters")
)

// processMemoryCounters is PROCESS_MEMORY_COUNTERS.
type processMemoryCounters struct {
	cb                         uint32
	pageFaultCount             uint32
	peakWorkingSetSize         uintptr
	workingSetSize             uintptr
	quotaPeakPagedPoolUsage    uintptr
	quotaPagedPoolUsage        uintptr
	quotaPeakNonPagedPoolUsage uintptr
	quotaNonPagedPoolUsage     uintptr
	pagefileUsage              uintptr
	peakPagefileUsage          uintptr
}

// ioCounters is IO_COUNTERS.
type ioCounters struct {
	readOperationCount  uint64
	writeOperationCount uint64
	otherOperationCount uint64
	readTransferCount   uint64
	writeTransferCount  uint64
	otherTransferCount  uint64
}

// winSource lists processes with a Toolhelp snapshot.
type winSource struct{}

func newSystemSource() source { return winSource{} }

// filetime converts a FILETIME (a duration or an instant) to 100 ns units.
func filetime(ft windows.Filetime) uint64 {
	return uint64(ft.HighDateTime)<<32 | uint64(ft.LowDateTime)
}

func (winSource) list(ctx context.Context, dst []proc) ([]proc, error) {
	if err := procK32GetProcessMemoryInfo.Find(); err != nil {
		return dst, fmt.Errorf("procperf: %w", err)
	}
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
	var pmc processMemoryCounters
	pmc.cb = uint32(unsafe.Sizeof(pmc))
	if r, _, _ := procK32GetProcessMemoryInfo.Call(uintptr(h), uintptr(unsafe.Pointer(&pmc)), uintptr(pmc.cb)); r != 0 {
		p.rss = uint64(pmc.workingSetSize)
	}
	if procGetProcessIoCounters.Find() == nil {
		var c ioCounters
		if r, _, _ := procGetProcessIoCounters.Call(uintptr(h), uintptr(unsafe.Pointer(&c))); r != 0 {
			p.ioRead, p.ioWritten, p.ioOK = c.readTransferCount, c.writeTransferCount, true
		}
	}
	return p, true
}

// readIO does nothing: list read the counters with the rest.
func (winSource) readIO(*proc) {}
