//go:build unix

package runner

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
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
	cmd *exec.Cmd
	pid int

	mu       sync.Mutex
	finished bool // after finish, the pid may be reused: no more signals
	exitErr  error
	reaped   bool // wait had to reap (no waitid WNOWAIT on this OS)
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
	cmd := &exec.Cmd{
		Path:   exe,
		Args:   args,
		Env:    append(scrubEnv(os.Environ(), false), s.Env...),
		Dir:    s.Cwd,
		Stdout: stdout, // *os.File: handed to the child as is, no copying goroutine
		Stderr: stderr,
		// Stdin nil: /dev/null.
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSpawn, err)
	}
	return &unixProc{cmd: cmd, pid: cmd.Process.Pid}, nil
}

func (p *unixProc) wait() {
	if waitNoReap(p.pid) {
		return
	}
	// No way to wait without reaping: reap now. The group may then
	// outlive its leader's pid; signalling it later is still right unless
	// the pid was reused as a new group id in between, which needs the
	// whole group to have died first.
	err := p.cmd.Wait()
	p.mu.Lock()
	p.exitErr, p.reaped = err, true
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
	reaped, err := p.reaped, p.exitErr
	p.mu.Unlock()
	if !reaped {
		err = p.cmd.Wait()
	}
	p.mu.Lock()
	p.finished = true
	p.mu.Unlock()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int32(ws.Signal()), nil
		}
		return int32(ee.ExitCode()), nil
	default:
		return wire.ExitKilled, fmt.Errorf("%w: wait: %w", ErrSpawn, err)
	}
}
