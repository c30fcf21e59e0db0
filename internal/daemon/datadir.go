package daemon

import (
	"errors"
	"fmt"
	"os"
	"path"
	"runtime"
	"strings"

	"github.com/kanade/kanade-agent/internal/privdir"
)

// system is what the daemon reads from the machine, injectable for tests.
type system struct {
	goos     string
	uid      int // -1 on Windows
	getenv   func(string) string
	hostname func() (string, error)
	homeDir  func() (string, error)
}

// realSystem returns the running machine, with environment getenv.
func realSystem(getenv func(string) string) *system {
	return &system{
		goos:     runtime.GOOS,
		uid:      os.Getuid(),
		getenv:   getenv,
		hostname: os.Hostname,
		homeDir:  os.UserHomeDir,
	}
}

// defaultDataDir returns the data directory used without --data-dir:
// %ProgramData%\Kanade on Windows; /var/lib/kanade for root elsewhere;
// otherwise the user's state directory, $XDG_STATE_HOME/kanade or
// ~/.local/state/kanade.
func defaultDataDir(sy *system) (string, error) {
	if sy.goos == "windows" {
		pd := sy.getenv("ProgramData")
		if pd == "" {
			pd = sy.getenv("ALLUSERSPROFILE")
		}
		if pd == "" {
			pd = `C:\ProgramData`
		}
		return strings.TrimRight(pd, `\/`) + `\Kanade`, nil
	}
	if sy.uid == 0 {
		return "/var/lib/kanade", nil
	}
	// The XDG spec says a relative path is invalid and must be ignored.
	if x := sy.getenv("XDG_STATE_HOME"); strings.HasPrefix(x, "/") {
		return path.Join(x, "kanade"), nil
	}
	home := sy.getenv("HOME")
	if home == "" && sy.homeDir != nil {
		home, _ = sy.homeDir()
	}
	if !strings.HasPrefix(home, "/") {
		return "", errors.New("no default data directory: HOME is not set; set --data-dir")
	}
	return path.Join(home, ".local", "state", "kanade"), nil
}

// ensureDataDir creates the data directory private to the agent in one
// step, or checks an existing one, before anything is written into it (see
// privdir.Ensure). The agent stages scripts below it and runs them as root
// or SYSTEM, and keeps its credentials there, so another local user who
// could write it, or who created it first (on Windows every user may
// create folders in %ProgramData%), could run code as root or SYSTEM:
//
//   - Unix: created with mode 0700; an existing one must be a directory,
//     not a symbolic link, owned by the agent's uid and not writable by
//     group or others; another mode (0750 from older agents) is reset to
//     0700.
//   - Windows: created with a protected DACL (nothing inherited from
//     %ProgramData%) granting full control to SYSTEM and Administrators,
//     and to the agent's account when it is neither; an existing one must
//     be a directory, not a junction or symbolic link, owned by SYSTEM,
//     Administrators or the agent's account; a DACL that is not protected
//     or grants another account anything is reset to that one.
//
// Otherwise it returns an error wrapping privdir.ErrUnsafe that says what
// to do, and the agent does not start.
func ensureDataDir(dir string) (privdir.Outcome, error) {
	o, err := privdir.Ensure(dir)
	if err != nil {
		return o, fmt.Errorf("data directory: %w", err)
	}
	return o, nil
}
