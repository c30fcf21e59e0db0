//go:build windows

package ledger

import (
	"os"

	"golang.org/x/sys/windows"
)

// syncDir is a no-op on Windows: a directory handle cannot be flushed
// (FlushFileBuffers on it, which is what os.File.Sync does, fails with
// "Access is denied"). Durability of a rename comes from renameDurable's
// MOVEFILE_WRITE_THROUGH instead; NTFS journals the metadata change.
func syncDir(string) error { return nil }

// renameDurable renames from to to, replacing to, with
// MoveFileEx(MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH): the call
// does not return until the move has been flushed to disk.
func renameDurable(from, to string) error {
	f, err := windows.UTF16PtrFromString(from)
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	t, err := windows.UTF16PtrFromString(to)
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	if err := windows.MoveFileEx(f, t, windows.MOVEFILE_REPLACE_EXISTING|windows.MOVEFILE_WRITE_THROUGH); err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}
