//go:build !windows

package fsutil

import "os"

const isWindows = false

// SyncDir makes the entries of dir (files created, renamed or removed in
// it) durable: fsync(2) on the directory.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Rename renames oldPath to newPath atomically, replacing newPath. On Unix
// it is rename(2); SyncDir makes it durable.
func Rename(oldPath, newPath string) error { return os.Rename(oldPath, newPath) }
