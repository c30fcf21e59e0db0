//go:build !windows

package daemon

// secureDataDir is a no-op outside Windows: the data directory is created
// with mode 0750 and the log file with 0640.
func secureDataDir(string) (bool, error) { return false, nil }
