package hostperf

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

func bootTime() (time.Time, error) {
	tv, err := unix.SysctlTimeval("kern.boottime")
	if err != nil {
		return time.Time{}, fmt.Errorf("hostperf: sysctl kern.boottime: %w", err)
	}
	return time.Unix(tv.Sec, 0), nil
}
