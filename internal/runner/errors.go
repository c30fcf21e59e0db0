package runner

import "errors"

// ErrUnsupported is wrapped by the error of [Supported] and by [Result.Err]
// when the shell or run_as account cannot be used on this OS (or the shell's
// executable is not installed). The agent reports it as exit code 122
// (wire.ExitUnsupported); [Run] sets that exit code itself.
var ErrUnsupported = errors.New("runner: unsupported")

// ErrInvalidSpec is wrapped by [Result.Err] when the [Spec] breaks a rule
// stated on its fields (for example a Timeout that is not positive).
var ErrInvalidSpec = errors.New("runner: invalid spec")

// ErrStage is wrapped by [Result.Err] when a script could not be staged:
// Spec.StageDir is not private to the agent (then privdir.ErrUnsafe is
// wrapped too, and nothing ran), or its run folder or files could not be
// created or written.
var ErrStage = errors.New("runner: cannot stage script")

// ErrSpawn is wrapped by [Result.Err] when the process could not be started
// (missing working directory, executable that failed to load, Job Object
// failure on Windows, ...). The underlying OS error is wrapped too.
var ErrSpawn = errors.New("runner: cannot start process")

// ErrNoSession is wrapped by [Result.Err] on Windows when run_as is user or
// system_gui and no interactive user is logged on to the console session.
var ErrNoSession = errors.New("runner: no interactive user session")
