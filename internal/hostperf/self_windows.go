package hostperf

import (
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

var (
	modkernel32                 = windows.NewLazySystemDLL("kernel32.dll")
	procK32GetProcessMemoryInfo = modkernel32.NewProc("K32GetProcessMemoryInfo")
	procGetSystemTimes          = modkernel32.NewProc("GetSystemTimes")
	procGlobalMemoryStatusEx    = modkernel32.NewProc("GlobalMemoryStatusEx")
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

// filetimeDuration converts a FILETIME holding a duration.
func filetimeDuration(ft windows.Filetime) time.Duration {
	return time.Duration(uint64(ft.HighDateTime)<<32|uint64(ft.LowDateTime)) * 100
}

// selfUsage returns the CPU time the process has used and its working set.
func selfUsage() (cpu time.Duration, rss uint64, err error) {
	var creation, exit, kernel, user windows.Filetime
	if err := windows.GetProcessTimes(windows.CurrentProcess(), &creation, &exit, &kernel, &user); err != nil {
		return 0, 0, fmt.Errorf("hostperf: GetProcessTimes: %w", err)
	}
	cpu = filetimeDuration(kernel) + filetimeDuration(user)
	var pmc processMemoryCounters
	pmc.cb = uint32(unsafe.Sizeof(pmc))
	if err := procK32GetProcessMemoryInfo.Find(); err != nil {
		return 0, 0, fmt.Errorf("hostperf: %w", err)
	}
	r, _, e := procK32GetProcessMemoryInfo.Call(uintptr(windows.CurrentProcess()), uintptr(unsafe.Pointer(&pmc)), uintptr(pmc.cb))
	if r == 0 {
		return 0, 0, fmt.Errorf("hostperf: K32GetProcessMemoryInfo: %w", e)
	}
	return cpu, uint64(pmc.workingSetSize), nil
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

// selfIO returns the bytes the process has read and written since it
// started: the transfer counts of GetProcessIoCounters (every read and write
// the process issued, files and devices alike).
func selfIO() (read, written uint64, err error) {
	if err := procGetProcessIoCounters.Find(); err != nil {
		return 0, 0, fmt.Errorf("hostperf: %w", err)
	}
	var c ioCounters
	if r, _, e := procGetProcessIoCounters.Call(uintptr(windows.CurrentProcess()), uintptr(unsafe.Pointer(&c))); r == 0 {
		return 0, 0, fmt.Errorf("hostperf: GetProcessIoCounters: %w", e)
	}
	return c.readTransferCount, c.writeTransferCount, nil
}
