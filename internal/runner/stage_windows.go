//go:build windows

package runner

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/windows"
)

// oNoFollow is 0 on Windows: O_CREATE|O_EXCL is CREATE_NEW, which fails on
// any existing name, a link included.
const oNoFollow = 0

// lockFile opens the staged file at path for reading with a share mode that
// lets others read it (the shell must) but not write, rename or delete it,
// so that it cannot change while the script runs; the caller closes it.
// The file is in a fresh folder only the agent's account may write; the
// lock is defence in depth.
func lockFile(path string) (io.Closer, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, err
	}
	h, err := windows.CreateFile(p, windows.GENERIC_READ, windows.FILE_SHARE_READ, nil,
		windows.OPEN_EXISTING, windows.FILE_ATTRIBUTE_NORMAL|windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return os.NewFile(uintptr(h), path), nil
}
