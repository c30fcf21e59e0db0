package update

import (
	"context"
	"time"
)

// SetSleep replaces the jitter and backoff wait of u (a fault-injection
// and observation seam for tests).
func SetSleep(u *Updater, f func(ctx context.Context, d time.Duration) error) { u.sleep = f }

// SetRename replaces the rename used by u's swaps.
func SetRename(u *Updater, f func(oldPath, newPath string) error) { u.ops.rename = f }

// SleepCtx is the default wait.
var SleepCtx = sleepCtx
