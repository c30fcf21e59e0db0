package agent

import "time"

// SetReopenEvery changes how often a failed ledger is reopened, for tests;
// it returns a function that restores the old value.
func SetReopenEvery(d time.Duration) (restore func()) {
	old := reopenEvery
	reopenEvery = d
	return func() { reopenEvery = old }
}

// SetAfterResultStored sets a function run between storing a result and
// recording its command finished, for crash tests.
func SetAfterResultStored(f func()) { afterResultStored = f }
