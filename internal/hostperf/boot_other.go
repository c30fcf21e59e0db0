//go:build !linux && !windows && !darwin

package hostperf

import "time"

func bootTime() (time.Time, error) { return time.Time{}, ErrUnsupported }
