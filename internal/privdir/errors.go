package privdir

import "errors"

// ErrUnsafe is wrapped by the error of [Ensure] when a directory exists but
// may have been created or changed by another account: it is a symbolic
// link or reparse point, not a directory, owned by another account, or (on
// Unix) writable by group or others. The directory is left as it was.
var ErrUnsafe = errors.New("privdir: directory is not private to the agent")
