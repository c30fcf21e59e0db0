package scheduler

import "errors"

// ErrOptions is wrapped by New's errors: a required option is missing.
var ErrOptions = errors.New("scheduler: invalid options")

// ErrJob is wrapped by BuildCommand's errors: the job cannot be turned into
// a command (no script source, a script_object whose SHA-256 is not known,
// a command that breaks the protocol's rules).
var ErrJob = errors.New("scheduler: job cannot run")
