//go:build unix && !linux

package runner

// waitNoReap reports false: outside Linux, the runner reaps the main
// process (reap) before it kills the rest of the group.
func waitNoReap(pid int) bool { return false }
