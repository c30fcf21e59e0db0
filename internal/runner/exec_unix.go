//go:build unix

package runner

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/kanade/kanade-agent/wire"
)

// shPath is the shell used for wire.ShellSh.
const shPath = "/bin/sh"

// resolve returns the executable for shell, or an error wrapping
// ErrUnsupported.
func resolve(shell, runAs string) (string, error) {
	switch runAs {
	case "", wire.RunAsSystem:
	case wire.RunAsUser, wire.RunAsSystemGUI:
		return "", fmt.Errorf("%w: run_as %q needs an interactive Windows session; on this OS scripts run only as the agent's own account (run_as system)", ErrUnsupported, runAs)
	default:
		return "", fmt.Errorf("%w: unknown run_as %q", ErrUnsupported, runAs)
	}
	switch shell {
	case wire.ShellSh:
		return shPath, nil
	case wire.ShellPwsh:
		exe, err := exec.LookPath("pwsh")
		if err != nil {
			return "", fmt.Errorf("%w: shell pwsh: no pwsh executable in PATH: %w", ErrUnsupported, err)
		}
		return exe, nil
	case wire.ShellCmd, wire.ShellPowerShell:
		return "", fmt.Errorf("%w: shell %q exists on Windows only", ErrUnsupported, shell)
	default:
		return "", fmt.Errorf("%w: unknown shell %q", ErrUnsupported, shell)
	}
}

// unixProc is a script started in its own process group, whose id is the
// main process's pid.
type unixProc struct {
	pid int

	mu       sync.Mutex
	finished bool // after finish, the pid may be reused: no more signals
	reaped   bool // wait had to reap (no waitid WNOWAIT on this OS)
	status   syscall.WaitStatus
	waitErr  error
}

// start starts the script (from st's file when st is not nil) with stdout
// and stderr connected to the given pipe write ends, stdin to /dev/null,
// and the scrubbed environment plus s.Env.
func start(s *Spec, exe string, st *stage, stdout, stderr *os.File) (proc, error) {
	var args []string
	switch s.Shell {
	case wire.ShellSh:
		if st != nil { // too large for the command line: see maxArgScript
			args = []string{"sh", st.run}
		} else {
			args = []string{"sh", "-c", s.Script}
		}
	default: // pwsh, given the launcher
		args = []string{exe, "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-File", st.run}
	}
	env := dedupEnv(append(scrubEnv(os.Environ(), false), s.Env...))
	pid, err := forkExec(exe, args, env, s.Cwd, stdout, stderr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSpawn, err)
	}
	return &unixProc{pid: pid}, nil
}

// forkExecHere is forkExec from the calling thread.
func forkExecHere(argv0 string, argv, env []string, dir string, stdout, stderr *os.File) (int, error) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer null.Close()
	pid, err := syscall.ForkExec(argv0, argv, &syscall.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: []uintptr{null.Fd(), stdout.Fd(), stderr.Fd()},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		return 0, &os.PathError{Op: "fork/exec", Path: argv0, Err: err}
	}
	return pid, nil
}

// dedupEnv returns env with only the last entry of each name, in the
// order of those last entries (as os/exec does): a later entry of Spec.Env
// wins over the base environment's.
func dedupEnv(env []string) []string {
	seen := make(map[string]bool, len(env))
	out := make([]string, 0, len(env))
	for i := len(env) - 1; i >= 0; i-- {
		kv := env[i]
		name, _, ok := strings.Cut(kv, "=")
		if ok {
			if seen[name] {
				continue
			}
			seen[name] = true
		}
		out = append(out, kv)
	}
	slices.Reverse(out)
	return out
}

// reap waits for process pid and releases it.
func reap(pid int) (syscall.WaitStatus, error) {
	for {
		var ws syscall.WaitStatus
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			return ws, err
		}
	}
}

func (p *unixProc) wait() {
	if waitNoReap(p.pid) {
		return
	}
	// No way to wait without reaping: reap now. The group may then
	// outlive its leader's pid; signalling it later is still right unless
	// the pid was reused as a new group id in between, which needs the
	// whole group to have died first.
	ws, err := reap(p.pid)
	p.mu.Lock()
	p.status, p.waitErr, p.reaped = ws, err, true
	p.mu.Unlock()
}

func (p *unixProc) stop(force bool) {
	sig := syscall.SIGTERM
	if force {
		sig = syscall.SIGKILL
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.finished {
		// ESRCH (group already gone) is the only expected error.
		_ = syscall.Kill(-p.pid, sig)
	}
}

func (p *unixProc) finish() (int32, error) {
	// Whatever the script left in its group dies now (see Run).
	p.stop(true)
	p.mu.Lock()
	reaped, ws, err := p.reaped, p.status, p.waitErr
	p.mu.Unlock()
	if !reaped {
		ws, err = reap(p.pid)
	}
	p.mu.Lock()
	p.finished = true
	p.mu.Unlock()
	switch {
	case err != nil:
		return wire.ExitKilled, fmt.Errorf("%w: wait: %w", ErrSpawn, err)
	case ws.Signaled():
		return 128 + int32(ws.Signal()), nil
	default:
		return int32(ws.ExitStatus()), nil
	}
}
