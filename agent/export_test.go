package agent

import "time"

// SetReopenEvery changes how often a failed ledger is reopened, for tests;
// it returns a function that restores the old value.
func SetReopenEvery(d time.Duration) (restore func()) {
	old := reopenEvery
	reopenEvery = d
	return func() { reopenEvery = old }
}
