//go:build !linux

package outbox

import "os"

// syncData makes f's data durable: fsync(2) on Unix (on macOS os.File.Sync
// issues F_FULLFSYNC), FlushFileBuffers on Windows.
func syncData(f *os.File) error { return f.Sync() }
