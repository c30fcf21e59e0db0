//go:build unix && !linux

package runner

import "os"

// forkExec starts argv0 with argv and env in dir (empty: the agent's own),
// with standard input /dev/null and standard output and error the given
// files, as the leader of a new process group, and returns its pid.
func forkExec(argv0 string, argv, env []string, dir string, stdout, stderr *os.File) (int, error) {
	return forkExecHere(argv0, argv, env, dir, stdout, stderr)
}
