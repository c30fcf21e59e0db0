//go:build !linux && !windows

package hostperf

import "time"

func selfUsage() (time.Duration, uint64, error) { return 0, 0, ErrUnsupported }

func processStart() (time.Time, error) { return time.Time{}, ErrUnsupported }
