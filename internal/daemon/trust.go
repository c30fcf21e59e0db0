package daemon

import (
	"runtime"

	"github.com/kanade/kanade-agent/internal/fsutil"
)

// checkTrusted refuses, on Unix, a file that a user other than root and
// the agent's own user could change (fsutil.CheckTrusted: the file and its
// directory must be owned by one of them and not writable by group or
// others). Whoever could write the config or token file could point the
// agent, which runs commands as root, at a server of their own. On Windows
// it checks nothing: the config and data directories' ACLs decide there.
func checkTrusted(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	return fsutil.CheckTrusted(path)
}
