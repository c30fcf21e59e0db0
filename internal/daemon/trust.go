package daemon

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/kanade/kanade-agent/internal/fsutil"
)

// checkTrusted refuses a file that a user other than root (SYSTEM,
// Administrators) and the agent's own user could change
// (fsutil.CheckTrusted: on Unix the file and its directory must be owned
// by one of them and not writable by group or others; on Windows their
// owner and DACL say the same). Whoever could write the config file, a
// CA file or a credentials file could point the agent, which runs
// commands as root or SYSTEM, at a server of their own.
func checkTrusted(path string) error { return fsutil.CheckTrusted(path) }

// checkPrivate is checkTrusted for a file holding a secret (a token, an
// nkey seed, a TLS private key), which others must not read either
// (fsutil.CheckPrivate): whoever reads it can act as this PC.
func checkPrivate(path string) error { return fsutil.CheckPrivate(path) }

// checkSecret checks a secret file for what (a flag, or "config file"):
// a file others could change is refused; one others could read is refused
// on Unix and, on Windows, where %ProgramData% and HKLM let Users read by
// default (and Wine cannot express anything else), reported in
// cfg.Warnings, which the daemon logs at start.
func checkSecret(cfg *Config, what, path string) error {
	err := checkPrivate(path)
	var ue *fsutil.UntrustedError
	if err != nil && runtime.GOOS == "windows" && errors.As(err, &ue) && ue.Readable {
		cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("%s %s: %v: other users can read this secret and act as this PC towards the broker; "+
			"restrict it to SYSTEM and Administrators (icacls %q /inheritance:r /grant:r SYSTEM:F Administrators:F)", what, path, err, path))
		return nil
	}
	return err
}
