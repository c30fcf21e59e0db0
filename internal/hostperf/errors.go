package hostperf

import "errors"

// ErrMalformed is wrapped by every error about input that cannot be parsed,
// such as a garbled /proc file.
var ErrMalformed = errors.New("hostperf: malformed input")

// ErrUnsupported is returned by the samplers on operating systems other than
// Linux and Windows.
var ErrUnsupported = errors.New("hostperf: not supported on this operating system")
