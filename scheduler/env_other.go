//go:build !linux && !windows

package scheduler

// acPower cannot be read on this system.
func acPower() (online, known bool) { return false, false }

// networkUp cannot be read on this system.
func networkUp() (up, known bool) { return false, false }
