package fsutil

import (
	"errors"
	"fmt"
)

// ErrUntrusted is wrapped by every *UntrustedError: a file or directory that
// a user other than root/SYSTEM/Administrators (or the current user) owns
// or could change.
var ErrUntrusted = errors.New("fsutil: untrusted file")

// UntrustedError says why CheckTrusted refused a path.
type UntrustedError struct {
	// Path is the file or directory refused (the file, or its parent).
	Path string
	// Reason is a short phrase, e.g. "writable by group or others (mode 0666)".
	Reason string
	// Readable is set when CheckPrivate refused the path only because
	// others may read it (they cannot change it).
	Readable bool
}

// Error reads like `fsutil: untrusted file /etc/kanade/command-keys.json: owned by uid 65534, not root or uid 0`.
func (e *UntrustedError) Error() string {
	return fmt.Sprintf("%v %s: %s", ErrUntrusted, e.Path, e.Reason)
}

// Unwrap returns ErrUntrusted.
func (e *UntrustedError) Unwrap() error { return ErrUntrusted }
