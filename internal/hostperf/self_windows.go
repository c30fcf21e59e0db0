package hostperf

import (
	"fmt"
	"time"

	"golang.org/x/sys/windows"

	"github.com/kanade/kanade-agent/internal/winproc"
)

var (
	modkernel32              = windows.NewLazySystemDLL("kernel32.dll")
	procGetSystemTimes       = modkernel32.NewProc("GetSystemTimes")
	procGlobalMemoryStatusEx = modkernel32.NewProc("GlobalMemoryStatusEx")
)

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
	rss, err = winproc.WorkingSet(windows.CurrentProcess())
	if err != nil {
		return 0, 0, fmt.Errorf("hostperf: %w", err)
	}
	return cpu, rss, nil
}

// selfIO returns the bytes the process has read and written since it
// started: the transfer counts of GetProcessIoCounters (every read and write
// the process issued, files and devices alike).
func selfIO() (read, written uint64, err error) {
	read, written, err = winproc.IOTransfer(windows.CurrentProcess())
	if err != nil {
		return 0, 0, fmt.Errorf("hostperf: %w", err)
	}
	return read, written, nil
}
