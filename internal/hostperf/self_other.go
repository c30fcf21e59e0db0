//go:build !linux && !windows

package hostperf

import "time"

func selfUsage() (time.Duration, uint64, error) { return 0, 0, ErrUnsupported }

func selfIO() (read, written uint64, err error) { return 0, 0, ErrUnsupported }
