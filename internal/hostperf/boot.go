package hostperf

import "time"

// BootTime returns when the machine booted, to the second: the btime line of
// /proc/stat on Linux, the current time minus GetTickCount64 on Windows,
// kern.boottime on macOS. It is derived from the uptime on every system, so
// it may move by a second or so within one boot as the clock is adjusted.
// Elsewhere it returns ErrUnsupported.
func BootTime() (time.Time, error) {
	return bootTime()
}
