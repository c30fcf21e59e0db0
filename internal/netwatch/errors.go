package netwatch

import "errors"

// ErrUnsupported is returned by Run on an operating system it cannot watch
// (neither Linux nor Windows).
var ErrUnsupported = errors.New("netwatch: network change notifications are not supported on this system")
