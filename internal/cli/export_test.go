package cli

// SetRegistryToken replaces the registry reader for a test and returns a
// function restoring it.
func SetRegistryToken(f func() (string, error)) (restore func()) {
	old := readRegistryToken
	readRegistryToken = f
	return func() { readRegistryToken = old }
}
