package procperf

import "errors"

// ErrUnsupported is returned by Sampler.Sample on operating systems other
// than Linux and Windows.
var ErrUnsupported = errors.New("procperf: not supported on this operating system")

// ErrMalformed is wrapped by every error about system input that cannot be
// parsed, such as a garbled /proc file.
var ErrMalformed = errors.New("procperf: malformed input")
