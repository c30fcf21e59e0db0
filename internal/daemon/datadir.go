package daemon

import (
	"errors"
	"os"
	"path"
	"runtime"
	"strings"
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
