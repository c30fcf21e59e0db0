package inventory

import "errors"

// ErrTimeout is wrapped by the error of a class or category whose collection
// did not finish within its timeout; the work was abandoned, not stopped.
var ErrTimeout = errors.New("inventory: timed out")

// ErrStillRunning is wrapped by the error of a class or category that was not
// collected because an earlier, abandoned collection of it has still not
// returned. At most one abandoned collection per class is ever left running.
var ErrStillRunning = errors.New("inventory: previous collection still running")

// ErrUnknownCategory is returned for a category that is not one of
// wire.Categories.
var ErrUnknownCategory = errors.New("inventory: unknown category")

// ErrUnsupported is returned by the collector of an operating system that has
// no inventory collector (neither Windows nor Linux).
var ErrUnsupported = errors.New("inventory: unsupported operating system")

// ErrMalformed is wrapped by errors about provider output that could not be
// parsed: a garbled /proc file, a WMI value of an unexpected type, ...
var ErrMalformed = errors.New("inventory: malformed provider output")

// ErrRunning is returned by Reporter.Run when the reporter is already running.
var ErrRunning = errors.New("inventory: reporter already running")
