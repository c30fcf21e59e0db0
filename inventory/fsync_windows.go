//go:build windows

package inventory

// syncDir is a no-op on Windows, which cannot fsync a directory through
// os.File.Sync ("Access is denied"); NTFS journals the rename itself.
func syncDir(string) error { return nil }
