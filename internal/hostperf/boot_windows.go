package hostperf

import (
	"time"

	"golang.org/x/sys/windows"
)

func bootTime() (time.Time, error) {
	return time.Now().Add(-windows.DurationSinceBoot()).Truncate(time.Second), nil
}
