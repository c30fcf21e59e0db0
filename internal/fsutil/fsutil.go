// Package fsutil holds the durable file operations the agent's stores share
// (the outbox, the dedup ledger, the inventory state): fsync of data and of
// directories, durable renames, and atomic file replacement.
//
// Windows cannot fsync a directory through os.File.Sync ("Access is
// denied"). There SyncDir flushes the directory handle where NTFS allows it
// and otherwise relies on the NTFS metadata journal, and Rename uses
// MoveFileEx with MOVEFILE_WRITE_THROUGH, which returns only once the rename
// is on disk.
package fsutil

import (
	"os"
	"path/filepath"
	"strings"
)

// RenameDurable renames oldPath to newPath, replacing newPath, and makes
// the change durable in both directories (Rename, then SyncDir).
func RenameDurable(oldPath, newPath string) error {
	if err := Rename(oldPath, newPath); err != nil {
		return err
	}
	if err := SyncDir(filepath.Dir(newPath)); err != nil {
		return err
	}
	if od := filepath.Dir(oldPath); od != filepath.Dir(newPath) {
		return SyncDir(od)
	}
	return nil
}

// TempSuffix ends the name of every temporary file WriteFileAtomic makes
// (<name>.<random>.tmp), so a store can sweep what a crash left behind.
const TempSuffix = ".tmp"

// WriteFileAtomic replaces path with data: it writes a temporary file
// (<name>.<random>.tmp) in the same directory, fsyncs and closes it, renames it
// over path and fsyncs the directory. Readers see the old or the new
// content, never a mix; after a crash a stray temporary file may remain
// (SweepTemp removes them). On error the temporary file is removed.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*"+TempSuffix)
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil && !isWindows {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return RenameDurable(tmp, path)
}

// SweepTemp removes the temporary files WriteFileAtomic left next to path
// when a crash interrupted it.
func SweepTemp(path string) {
	dir, base := filepath.Dir(path), filepath.Base(path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, base+".") && strings.HasSuffix(n, TempSuffix) {
			_ = os.Remove(filepath.Join(dir, n))
		}
	}
}
