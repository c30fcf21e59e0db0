//go:build !linux

package fsutil

import "os"

// SyncData makes f's data durable: fsync(2) on Unix (F_FULLFSYNC on
// macOS), FlushFileBuffers on Windows.
func SyncData(f *os.File) error { return f.Sync() }
