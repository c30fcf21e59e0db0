//go:build windows

package outbox

import (
	"errors"

	"golang.org/x/sys/windows"
)

// syncDir makes the entries of dir durable, as far as Windows allows.
//
// Windows cannot fsync a directory through os.File.Sync ("Access is
// denied"). We open the directory with FILE_FLAG_BACKUP_SEMANTICS and
// GENERIC_WRITE and call FlushFileBuffers, which NTFS accepts on recent
// versions and which flushes the directory's metadata. Where the file
// system refuses (access denied, invalid function), we return nil: NTFS
// journals metadata, so a created file's directory entry is recovered by
// the journal after a crash once the file's own data has been flushed
// with FlushFileBuffers (which the outbox always does before it treats
// anything as durable). Renames use MoveFileEx with MOVEFILE_WRITE_THROUGH,
// which returns only once the rename is on disk.
func syncDir(dir string) error {
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return err
	}
	h, err := windows.CreateFile(p, windows.GENERIC_READ|windows.GENERIC_WRITE,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE,
		nil, windows.OPEN_EXISTING, windows.FILE_FLAG_BACKUP_SEMANTICS, 0)
	if err != nil {
		if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
			return nil
		}
		return err
	}
	defer windows.CloseHandle(h)
	if err := windows.FlushFileBuffers(h); err != nil {
		if errors.Is(err, windows.ERROR_ACCESS_DENIED) || errors.Is(err, windows.ERROR_INVALID_FUNCTION) {
			return nil
		}
		return err
	}
	return nil
}

// renameDurable renames oldPath to newPath with MoveFileEx(
// MOVEFILE_REPLACE_EXISTING|MOVEFILE_WRITE_THROUGH): the call returns only
// once the rename has been flushed to disk.
func renameDurable(oldPath, newPath string) error {
	from, err := windows.UTF16PtrFromString(oldPath)
	if err != nil {
		return err
	}
	to, err := windows.UTF16PtrFromString(newPath)
	if err != nil {
		return err
	}
	return windows.MoveFileEx(from, to, windows.MOVEFILE_REPLACE_EXISTING|windows.MOVEFILE_WRITE_THROUGH)
}
