package hostperf

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// clockTicks is USER_HZ, the unit of the times in /proc/self/stat.
const clockTicks = 100

// selfUsage returns the CPU time the process has used and its resident
// memory.
func selfUsage() (cpu time.Duration, rss uint64, err error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0, 0, fmt.Errorf("hostperf: getrusage: %w", err)
	}
	cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	var buf [256]byte
	b, err := readSmall("/proc/self/statm", buf[:])
	if err != nil {
		return 0, 0, err
	}
	pages, err := parseStatm(b)
	if err != nil {
		return 0, 0, err
	}
	return cpu, pages * uint64(os.Getpagesize()), nil
}

// processStart returns when the process started, from /proc/self/stat and
// /proc/uptime.
func processStart() (time.Time, error) {
	var buf [1024]byte
	b, err := readSmall("/proc/self/stat", buf[:])
	if err != nil {
		return time.Time{}, err
	}
	ticks, err := parseStatStart(b)
	if err != nil {
		return time.Time{}, err
	}
	b, err = readSmall("/proc/uptime", buf[:])
	if err != nil {
		return time.Time{}, err
	}
	now := time.Now()
	up, err := parseUptime(b)
	if err != nil {
		return time.Time{}, err
	}
	age := up - time.Duration(ticks)*(time.Second/clockTicks)
	if age < 0 {
		age = 0
	}
	return now.Add(-age), nil
}

// readSmall reads the file name into buf, which must be larger than the file.
func readSmall(name string, buf []byte) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("hostperf: %w", err)
	}
	defer f.Close()
	n := 0
	for n < len(buf) {
		m, err := f.Read(buf[n:])
		n += m
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("hostperf: read %s: %w", name, err)
		}
		if m == 0 || err != nil {
			if n < len(buf) {
				return buf[:n], nil
			}
			break
		}
	}
	return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrMalformed, name, len(buf))
}
