package session

import "errors"

// ErrUnsupported is returned by the helper's idle reader when this machine
// offers no reading of the time since the last user input (on Linux: no
// loginctl, or logind not running). The helper then exits with
// ExitUnsupported and the Source stops asking for one.
var ErrUnsupported = errors.New("session: no idle reading on this machine")

// ErrLineTooLong is counted (never returned) for a helper output line
// longer than MaxLine bytes, which is discarded.
var ErrLineTooLong = errors.New("session: helper line too long")
