package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

// Defaults applied by [Run] to zero fields of a [Spec].
const (
	// DefaultMaxOutput is the number of bytes kept per stream when
	// Spec.MaxOutput is zero.
	DefaultMaxOutput = 4 << 20
	// DefaultKillGrace is the time between SIGTERM and SIGKILL on Unix when
	// Spec.KillGrace is zero.
	DefaultKillGrace = 5 * time.Second
)

// drainGrace bounds how long Run keeps reading the output pipes after the
// script's process tree has been killed. Only a process that left the tree
// (a new session or process group on Unix, or a process outside the Job
// Object on Windows) can still hold a pipe open by then; after drainGrace
// Run closes its read ends and returns what it has.
const drainGrace = 2 * time.Second

// Spec describes one script run.
type Spec struct {
	// Shell is one of wire.ShellSh (Unix only), wire.ShellCmd (Windows only),
	// wire.ShellPowerShell (Windows only) or wire.ShellPwsh (wherever a pwsh
	// executable is found).
	Shell string
	// Script is the script text. For sh and cmd it is passed verbatim on the
	// command line unless it is too long or (cmd) has a line break; then,
	// and always for PowerShell, it is staged to a file (see the package
	// documentation, "Staging").
	Script string
	// Cwd is the working directory; empty means the agent's own. On
	// Windows a leading ~ and %NAME% references are expanded first (see
	// the package documentation, "Working directory").
	Cwd string
	// Env holds extra "KEY=value" entries appended to the base environment
	// (the agent's os.Environ(), or the user's environment block for
	// run_as user on Windows); a later entry wins over an earlier one. The
	// base environment is scrubbed first: every variable whose name starts
	// with KANADE_ or NATS_ (case-insensitively on Windows) is dropped, so
	// that scripts never see the agent's credentials. Entries in Env are
	// kept as given.
	Env []string
	// Timeout bounds the run; it must be positive. When it passes, the
	// whole process tree is killed and Result.TimedOut is set.
	Timeout time.Duration
	// MaxOutput is the number of bytes kept per stream (stdout, stderr);
	// zero means DefaultMaxOutput, negative is invalid. Bytes past it are
	// read, counted and dropped.
	MaxOutput int
	// StageDir is the directory in which each run that needs staged files
	// (PowerShell, multi-line or long cmd, large sh scripts) gets a fresh
	// private folder; see the package documentation, "Staging". Run makes
	// a non-empty StageDir private with privdir.Ensure (creating it if
	// missing) and refuses to stage (ErrStage) when another account may
	// have created or changed it. Empty means os.TempDir(), used as it is.
	StageDir string
	// KillGrace is, on Unix, the time between SIGTERM to the process group
	// and SIGKILL; zero means DefaultKillGrace, negative is invalid. Windows
	// has no polite stop for a process tree: the Job Object is terminated at
	// once and KillGrace is not used.
	KillGrace time.Duration
	// Tap, when set, is called with every chunk read from the script's
	// standard output (stderr false) or standard error (stderr true) as it
	// arrives, whether or not MaxOutput keeps it; the agent's live job tail
	// reads output through it. It is called from the goroutine that reads
	// that stream, so stdout and stderr calls may run at once. It must not
	// block (the script would stall on a full pipe) and must not keep p
	// after it returns.
	Tap func(stderr bool, p []byte)
	// RunAs is wire.RunAsSystem (or empty: the agent's own account),
	// wire.RunAsUser or wire.RunAsSystemGUI. The last two exist on Windows
	// only.
	RunAs string
}

// Result is the outcome of [Run].
type Result struct {
	// ExitCode is the script's exit code. It is wire.ExitKilled (-1) when the
	// run timed out, was killed, or could not start, and
	// wire.ExitUnsupported (122) when Err wraps ErrUnsupported. On Windows
	// the uint32 exit code is converted by two's complement; on Unix a
	// script that died of a signal it did not get from the runner has
	// 128+signal, as shells report it.
	ExitCode int32
	// Stdout holds the first bytes the script wrote to standard output, at
	// most the effective MaxOutput.
	Stdout []byte
	// Stderr holds the first bytes the script wrote to standard error, at
	// most the effective MaxOutput. Notes (see [Result.Note]) are not added.
	Stderr []byte
	// StdoutTruncated is set when bytes of standard output were dropped.
	StdoutTruncated bool
	// StderrTruncated is set when bytes of standard error were dropped.
	StderrTruncated bool
	// StdoutBytes is the total number of bytes the script wrote to standard output.
	StdoutBytes int64
	// StderrBytes is the total number of bytes the script wrote to standard error.
	StderrBytes int64
	// TimedOut is set when Spec.Timeout passed and the tree was killed.
	TimedOut bool
	// Killed is set when ctx ended (a remote kill or agent shutdown) before
	// the script finished; the tree was killed, or nothing was started when
	// ctx had already ended. At most one of TimedOut and Killed is set: the
	// first cause wins.
	Killed bool
	// Timeout is the effective timeout of the run, for the note.
	Timeout time.Duration
	// Err is set when the script could not run at all (unsupported, invalid
	// spec, staging or spawn failure); it wraps one of the package's
	// sentinel errors. A script's own non-zero exit is not an error.
	Err error
	// Started is when Run began handling the spec.
	Started time.Time
	// Finished is when the tree was dead and the output drained.
	Finished time.Time
}

// TimeoutNote is the stderr note for a run that hit its timeout:
// "timeout after Ns", with the timeout in whole seconds (at least 1).
func TimeoutNote(timeout time.Duration) string {
	secs := int64((timeout + time.Second - 1) / time.Second)
	return fmt.Sprintf("timeout after %ds", max(secs, 1))
}

// KillNote is the stderr note for a run killed by kill.<execID>:
// "killed by remote signal (kill.<execID>)".
func KillNote(execID string) string {
	return fmt.Sprintf("killed by remote signal (kill.%s)", execID)
}

// Note returns the line the agent adds to the result's stderr, or "" when
// there is none: TimeoutNote for a timeout, KillNote(execID) for a kill, and
// the error text when the script could not run. The agent, which knows
// whether a ctx cancellation was a remote kill or its own shutdown, may
// use other wording for the latter.
func (r Result) Note(execID string) string {
	switch {
	case r.TimedOut:
		return TimeoutNote(r.Timeout)
	case r.Killed:
		return KillNote(execID)
	case r.Err != nil:
		return r.Err.Error()
	}
	return ""
}

// Supported returns nil when shell and runAs can be used on this OS, and
// otherwise an error wrapping ErrUnsupported that says why. An empty runAs
// means wire.RunAsSystem. For pwsh (and powershell on Windows) it also
// checks that the executable can be found.
func Supported(shell, runAs string) error {
	_, err := resolve(shell, runAs)
	return err
}

// proc is a started script: its main process and the tree it may grow.
// The platform files implement it.
type proc interface {
	// wait blocks until the main process has exited. On Linux the process
	// is not reaped yet, so its pid (and process group id) cannot be reused
	// before finish.
	wait()
	// stop kills the whole tree: politely (SIGTERM on Unix) or, with force,
	// at once. It may be called more than once, before or after wait
	// returns, but not after finish.
	stop(force bool)
	// finish is called once, after wait: it kills whatever is left of the
	// tree, releases OS resources and returns the main process's exit code.
	finish() (int32, error)
}

// Run runs s and blocks until the script's whole process tree is dead and
// its output pipes are drained (or, for a process that escaped the tree,
// until drainGrace after the tree was killed). It never panics and always
// returns a Result; see Result.Err for failures to start.
//
// The script ends in one of these ways:
//   - its main process exits: any processes it left behind in its tree
//     (background jobs, grandchildren) are killed at once — SIGKILL to the
//     process group on Unix, TerminateJobObject on Windows — so a run never
//     outlives its script and a stray cannot hold the output pipes open;
//   - Spec.Timeout passes (TimedOut) or ctx ends (Killed): the tree is
//     killed (Unix: SIGTERM to the group, then SIGKILL after KillGrace if
//     the main process is still alive; Windows: TerminateJobObject).
//
// If ctx has already ended, Run starts nothing and returns Killed.
func Run(ctx context.Context, s Spec) (r Result) {
	r.ExitCode = wire.ExitKilled
	r.Started = time.Now()
	r.Timeout = s.Timeout
	defer func() {
		if p := recover(); p != nil {
			r.ExitCode = wire.ExitKilled
			r.Err = fmt.Errorf("%w: panic: %v", ErrSpawn, p)
		}
		r.Finished = time.Now()
	}()
	if ctx.Err() != nil {
		r.Killed = true
		return r
	}
	if s.MaxOutput == 0 {
		s.MaxOutput = DefaultMaxOutput
	}
	if s.KillGrace == 0 {
		s.KillGrace = DefaultKillGrace
	}
	switch {
	case s.Timeout <= 0:
		r.Err = fmt.Errorf("%w: timeout %v is not positive", ErrInvalidSpec, s.Timeout)
		return r
	case s.MaxOutput < 0:
		r.Err = fmt.Errorf("%w: max output %d is negative", ErrInvalidSpec, s.MaxOutput)
		return r
	case s.KillGrace < 0:
		r.Err = fmt.Errorf("%w: kill grace %v is negative", ErrInvalidSpec, s.KillGrace)
		return r
	}
	exe, err := resolve(s.Shell, s.RunAs)
	if err != nil {
		r.Err = err
		if errors.Is(err, ErrUnsupported) {
			r.ExitCode = wire.ExitUnsupported
		}
		return r
	}
	st, err := stageFor(&s)
	if err != nil {
		r.Err = err
		return r
	}
	if st != nil {
		// After the tree is dead (deferred calls run last in, first out:
		// this one after the pipes are drained).
		defer st.remove()
	}

	outR, outW, err := os.Pipe()
	if err != nil {
		r.Err = fmt.Errorf("%w: stdout pipe: %w", ErrSpawn, err)
		return r
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		r.Err = fmt.Errorf("%w: stderr pipe: %w", ErrSpawn, err)
		return r
	}
	p, err := start(&s, exe, st, outW, errW)
	// The child has its own copies of the write ends (or failed to start);
	// ours must go so that the readers see EOF when the tree is gone.
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		r.Err = err
		return r
	}

	outC := &capture{max: s.MaxOutput}
	errC := &capture{max: s.MaxOutput}
	if tap := s.Tap; tap != nil {
		outC.tap = func(p []byte) { tap(false, p) }
		errC.tap = func(p []byte) { tap(true, p) }
	}
	outDone := make(chan struct{})
	errDone := make(chan struct{})
	go func() { defer close(outDone); outC.drain(outR) }()
	go func() { defer close(errDone); errC.drain(errR) }()

	exited := make(chan struct{})
	go func() { defer close(exited); p.wait() }()

	timer := time.NewTimer(s.Timeout)
	defer timer.Stop()
	timeout, cancel := timer.C, ctx.Done()
	var force <-chan time.Time
	var forceTimer *time.Timer
wait:
	for {
		select {
		case <-exited:
			break wait
		case <-timeout:
			r.TimedOut = true
			timeout, cancel = nil, nil
			p.stop(false)
			forceTimer = time.NewTimer(s.KillGrace)
			force = forceTimer.C
		case <-cancel:
			r.Killed = true
			timeout, cancel = nil, nil
			p.stop(false)
			forceTimer = time.NewTimer(s.KillGrace)
			force = forceTimer.C
		case <-force:
			force = nil
			p.stop(true)
		}
	}
	if forceTimer != nil {
		forceTimer.Stop()
	}
	code, err := p.finish()

	// The tree is dead; the pipes reach EOF unless a process outside it
	// still holds a write end.
	drained := time.NewTimer(drainGrace)
	defer drained.Stop()
	for _, d := range []chan struct{}{outDone, errDone} {
		select {
		case <-d:
		case <-drained.C:
			// Also unblocks the other reader if it is stuck too.
			outR.Close()
			errR.Close()
			<-d
		}
	}
	outR.Close()
	errR.Close()
	// <-outDone and <-errDone have both happened: the captures are ours.
	<-outDone
	<-errDone

	r.Stdout, r.StdoutBytes, r.StdoutTruncated = outC.buf, outC.total, outC.truncated()
	r.Stderr, r.StderrBytes, r.StderrTruncated = errC.buf, errC.total, errC.truncated()
	switch {
	case r.TimedOut || r.Killed:
		r.ExitCode = wire.ExitKilled
	case err != nil:
		r.ExitCode = wire.ExitKilled
		r.Err = err
	default:
		r.ExitCode = code
	}
	return r
}
