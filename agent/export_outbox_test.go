package agent

// SetOutboxMaxBytes changes the MaxBytes of the named outbox for agents
// started afterwards, for tests; it returns a function that restores it.
func SetOutboxMaxBytes(name string, n int64) (restore func()) {
	old := outboxMaxBytes[name]
	outboxMaxBytes[name] = n
	return func() { outboxMaxBytes[name] = old }
}
