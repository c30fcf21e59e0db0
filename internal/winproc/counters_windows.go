package winproc

import (
	"fmt"
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

// WorkingSet returns the working set (resident memory) of the process h
// (K32GetProcessMemoryInfo; h needs PROCESS_QUERY_LIMITED_INFORMATION).
func WorkingSet(h windows.Handle) (uint64, error) {
	if err := procK32GetProcessMemoryInfo.Find(); err != nil {
		return 0, err
	}
	var pmc processMemoryCounters
	pmc.cb = uint32(unsafe.Sizeof(pmc))
	if r, _, e := procK32GetProcessMemoryInfo.Call(uintptr(h), uintptr(unsafe.Pointer(&pmc)), uintptr(pmc.cb)); r == 0 {
		return 0, fmt.Errorf("K32GetProcessMemoryInfo: %w", e)
	}
	return uint64(pmc.workingSetSize), nil
}

// IOTransfer returns the bytes the process h has read and written since it
// started: the transfer counts of GetProcessIoCounters (every read and
// write it issued, files and devices alike).
func IOTransfer(h windows.Handle) (read, written uint64, err error) {
	if err := procGetProcessIoCounters.Find(); err != nil {
		return 0, 0, err
	}
	var c ioCounters
	if r, _, e := procGetProcessIoCounters.Call(uintptr(h), uintptr(unsafe.Pointer(&c))); r == 0 {
		return 0, 0, fmt.Errorf("GetProcessIoCounters: %w", e)
	}
	return c.readTransferCount, c.writeTransferCount, nil
}
