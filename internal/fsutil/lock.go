package fsutil

import (
	"errors"
	"fmt"
	"os"
)

// ErrLocked is wrapped by LockFile when another open file (in this process
// or another) holds the lock.
var ErrLocked = errors.New("locked by another open file")

// LockFile opens path (creating it, mode 0600) and takes an exclusive,
// non-blocking lock on it: flock(2) on Unix, LockFileEx on Windows. The
// lock holds until the returned file is closed or the process dies; a
// crash never leaves it held. A lock already held, also through another
// open of the same file in this process, fails at once with an error
// wrapping ErrLocked.
func LockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, ErrLocked) {
			return nil, fmt.Errorf("%s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}
