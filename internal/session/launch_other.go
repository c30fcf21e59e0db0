//go:build !windows

package session

// platformLauncher runs the helper as a plain child: off Windows the agent
// and the user's session share the machine's view of logind.
func platformLauncher() launcher { return childLauncher{} }
