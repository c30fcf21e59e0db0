//go:build !windows

package outbox

import (
	"os"
	"path/filepath"
)

// syncDir makes the entries of dir (created, renamed or removed files)
// durable: fsync(2) on the directory.
func syncDir(dir string) error {
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

// renameDurable renames oldPath to newPath and makes the change durable in
// both directories.
func renameDurable(oldPath, newPath string) error {
	if err := os.Rename(oldPath, newPath); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(newPath)); err != nil {
		return err
	}
	if od := filepath.Dir(oldPath); od != filepath.Dir(newPath) {
		return syncDir(od)
	}
	return nil
}
