package hostperf

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

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

// selfIO returns the bytes the process has read from and written to
// storage since it started: read_bytes and write_bytes of /proc/self/io.
func selfIO() (read, written uint64, err error) {
	var buf [1024]byte
	b, err := readSmall("/proc/self/io", buf[:])
	if err != nil {
		return 0, 0, err
	}
	return parseIO(b)
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
