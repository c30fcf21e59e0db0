//go:build !windows

package daemon

import "github.com/kanade/kanade-agent/internal/fsutil"

// writeSecretFile replaces path with data, mode 0600, atomically.
func writeSecretFile(path string, data []byte) error {
	return fsutil.WriteFileAtomic(path, data, 0o600)
}
