//go:build !linux && !windows

package scheduler

import "github.com/kanade/kanade-agent/wire"

// acPower cannot be read on this system.
func acPower() (online, known bool) { return false, false }

// networkUp cannot be read on this system.
func networkUp() (up, known bool) { return false, false }

// DefaultEvents are the when.on kinds this system emits: startup only.
var DefaultEvents = []string{wire.TriggerStartup}
