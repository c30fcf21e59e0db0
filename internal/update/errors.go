package update

import (
	"errors"
	"fmt"
)

// ExitRestart is the process exit code that asks the service manager to
// start the agent again: after a swap (the new binary is in place) and after
// a rollback (the last good binary is back).
const ExitRestart = 64

// restartError is the type of ErrRestart.
type restartError struct{}

func (restartError) Error() string { return "update: restart to run the binary now in place" }

// ExitCode returns ExitRestart.
func (restartError) ExitCode() int { return ExitRestart }

// ErrRestart is returned by Updater.Consider and Updater.Run after a new
// binary was swapped in, and by Boot after a rollback: the process must exit
// with code 64 (ExitRestart) so the service manager starts the binary now at
// the executable's path. It has a method ExitCode() int returning 64, so the
// daemon's exit-code mapping (errors.As to interface{ ExitCode() int })
// handles it without naming this package. Test it with errors.Is.
var ErrRestart error = restartError{}

// ErrInvalidOptions is wrapped by New when Options.Validate refuses the options.
var ErrInvalidOptions = errors.New("update: invalid options")

// ErrInvalidVersion is wrapped when a target version is not a valid release
// name (see ValidVersion).
var ErrInvalidVersion = errors.New("update: invalid version")

// ErrNoDigest is wrapped when a release object carries no SHA-256 digest in
// its object info. The update fails closed.
var ErrNoDigest = errors.New("update: release has no SHA-256 digest")

// ErrBadDigest is wrapped when a release's digest is malformed (not
// "SHA-256=" followed by the base64url of 32 bytes). The update fails closed.
var ErrBadDigest = errors.New("update: malformed release digest")

// ErrDigestMismatch is wrapped when the downloaded bytes do not hash to the
// release's digest (or their size differs from the object's size). The
// staging file is removed.
var ErrDigestMismatch = errors.New("update: release digest mismatch")

// ErrUnsigned is wrapped when a release signature is required and the
// release lacks the kanade-sig or kanade-sig-kid metadata.
var ErrUnsigned = errors.New("update: release is not signed")

// ErrNoReleaseKeys is wrapped when a release signature is required (the
// agent enforces command signatures, or a release keyring is configured)
// but the release keyring holds no key: every release is refused, nothing
// is downloaded.
var ErrNoReleaseKeys = errors.New("update: release signature required but the release keyring has no key")

// ErrReleaseFlags is wrapped when a release's flags (metadata
// kanade-release-flags) are malformed or name a flag this agent does not
// know. The release is refused.
var ErrReleaseFlags = errors.New("update: bad release flags")

// ErrDowngrade is wrapped when the target version is lower than the
// running one (or the two cannot be ordered as semantic versions) and
// neither the signed release (flag allow-downgrade) nor
// Options.AllowDowngrade allows it. Nothing is installed.
var ErrDowngrade = errors.New("update: downgrade refused")

// ErrUnknownKid is wrapped when a release is signed by a key that is not in
// the release keyring.
var ErrUnknownKid = errors.New("update: release signed by an unknown key")

// ErrBadSignature is wrapped when a release signature is malformed or does
// not verify.
var ErrBadSignature = errors.New("update: bad release signature")

// ErrReleaseSize is wrapped when a release is empty or larger than
// Options.MaxSize.
var ErrReleaseSize = errors.New("update: release size refused")

// ErrDownload is wrapped, with the last error, when every download attempt
// failed.
var ErrDownload = errors.New("update: download failed")

// ErrSwap is wrapped when moving a binary into place failed. The error says
// whether the previous binary was put back (it normally is: every step is
// undone on failure); see SwapError.
var ErrSwap = errors.New("update: swap failed")

// SwapError describes a failed swap: the step that failed and whether
// undoing the earlier steps succeeded. It unwraps to ErrSwap and to the
// underlying errors.
type SwapError struct {
	// Step names the failed step: "stage" (staged → <exe>.new), "aside"
	// (<exe> → <exe>.old) or "install" (<exe>.new → <exe>).
	Step string
	// Err is the error of the failed step.
	Err error
	// UndoErr is the error of undoing the earlier steps; nil when the
	// previous binary is back at the executable's path.
	UndoErr error
}

// Error describes the failure.
func (e *SwapError) Error() string {
	if e.UndoErr != nil {
		return fmt.Sprintf("update: swap failed at step %s: %v; undo failed too, the executable may be missing: %v", e.Step, e.Err, e.UndoErr)
	}
	return fmt.Sprintf("update: swap failed at step %s (undone, previous binary in place): %v", e.Step, e.Err)
}

// Unwrap returns ErrSwap, Err and UndoErr (when set).
func (e *SwapError) Unwrap() []error {
	errs := []error{ErrSwap, e.Err}
	if e.UndoErr != nil {
		errs = append(errs, e.UndoErr)
	}
	return errs
}

// CorruptStateError reports a state file that could not be decoded. The
// file was moved aside to MovedTo (when non-empty) and the updater started
// from an empty state; nothing else is lost, but an armed boot sentinel, the
// attempt record, the quarantine list and a pending event in it are
// forgotten.
type CorruptStateError struct {
	// Path is the state file.
	Path string
	// MovedTo is where the unreadable file was moved; empty if the move failed.
	MovedTo string
	// Err is the decoding error.
	Err error
}

// Error describes the corrupt file.
func (e *CorruptStateError) Error() string {
	return fmt.Sprintf("update: corrupt state file %s (moved to %q): %v", e.Path, e.MovedTo, e.Err)
}

// Unwrap returns Err.
func (e *CorruptStateError) Unwrap() error { return e.Err }

// ErrNoFallback is returned by Boot when a version failed its trial boots
// and there was no binary to roll back to (no usable <exe>.last-good or
// <exe>.old). The version is quarantined and the sentinel disarmed; the
// binary in place keeps running.
var ErrNoFallback = errors.New("update: no binary to roll back to")
