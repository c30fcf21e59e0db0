//go:build windows

package runner

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/windows"

	"github.com/kanade/kanade-agent/internal/winproc"
	"github.com/kanade/kanade-agent/wire"
)

// resolve returns the executable for shell, or an error wrapping
// ErrUnsupported.
func resolve(shell, runAs string) (string, error) {
	switch runAs {
	case "", wire.RunAsSystem, wire.RunAsUser, wire.RunAsSystemGUI:
	default:
		return "", fmt.Errorf("%w: unknown run_as %q", ErrUnsupported, runAs)
	}
	sys, err := windows.GetSystemDirectory()
	if err != nil {
		sys = filepath.Join(os.Getenv("SystemRoot"), "System32")
	}
	switch shell {
	case wire.ShellCmd:
		return filepath.Join(sys, "cmd.exe"), nil
	case wire.ShellPowerShell:
		exe := filepath.Join(sys, `WindowsPowerShell\v1.0\powershell.exe`)
		if _, err := os.Stat(exe); err != nil {
			return "", fmt.Errorf("%w: shell powershell: %w", ErrUnsupported, err)
		}
		return exe, nil
	case wire.ShellPwsh:
		if exe, err := exec.LookPath("pwsh.exe"); err == nil {
			return filepath.Abs(exe)
		}
		// Services often run with a PATH that predates the pwsh install.
		exe := filepath.Join(os.Getenv("ProgramFiles"), `PowerShell\7\pwsh.exe`)
		if _, err := os.Stat(exe); err != nil {
			return "", fmt.Errorf("%w: shell pwsh: pwsh.exe is neither in PATH nor at %s", ErrUnsupported, exe)
		}
		return exe, nil
	case wire.ShellSh:
		return "", fmt.Errorf("%w: shell sh exists on Unix only", ErrUnsupported)
	default:
		return "", fmt.Errorf("%w: unknown shell %q", ErrUnsupported, shell)
	}
}

// commandLine builds the command line the child receives verbatim.
//
// cmd gets `/S /C "<script>"`: with /S, cmd.exe removes exactly the first
// and the last quote and runs everything between as typed, whatever quotes
// the script itself contains (without /S, cmd's older heuristic may strip
// quotes inside the script). A cmd script staged as a batch file (see
// needsBatch) runs as `/S /C ""<file>""`. PowerShell gets the staged
// launcher (see launcher) with -File.
func commandLine(shell, exe, script, staged string) string {
	q := syscall.EscapeArg
	if shell == wire.ShellCmd {
		if staged != "" {
			script = `"` + staged + `"`
		}
		return q(exe) + ` /S /C "` + script + `"`
	}
	return q(exe) + " -NoProfile -NonInteractive -ExecutionPolicy Bypass -File " + q(staged)
}

// mergeEnv appends extra to base; for names present more than once
// (compared case-insensitively, as Windows does) the last entry wins, at the
// position of the first.
func mergeEnv(base, extra []string) []string {
	idx := map[string]int{}
	var out []string
	for _, kv := range slices.Concat(base, extra) {
		name := kv
		// Names may start with '=' (the per-drive "=C:" entries).
		if i := strings.IndexByte(kv[min(1, len(kv)):], '='); i >= 0 {
			name = kv[:i+1]
		}
		key := strings.ToUpper(name)
		if j, ok := idx[key]; ok {
			out[j] = kv
			continue
		}
		idx[key] = len(out)
		out = append(out, kv)
	}
	return out
}

// envBlock encodes env as a CREATE_UNICODE_ENVIRONMENT block.
func envBlock(env []string) ([]uint16, error) {
	b, err := winproc.EnvBlock(env)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSpec, err)
	}
	return b, nil
}

// winProc is a script started by winproc.Start: suspended, placed in its
// own Job Object with JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE, then resumed:
// every process it starts is in the job too (breakaway is not allowed), so
// terminating or closing the job ends the whole tree.
type winProc struct{ p *winproc.Proc }

// start creates the script's process (from st's file when st is not nil)
// with stdout and stderr on the given pipe write ends and stdin on NUL, in
// a new Job Object, for the account s.RunAs names, with the scrubbed base
// environment plus s.Env and the expanded working directory.
func start(s *Spec, exe string, st *stage, stdout, stderr *os.File) (_ proc, err error) {
	var token windows.Token // 0: the agent's own account
	baseEnv := os.Environ()
	staged := ""
	if st != nil {
		staged = st.run
	}
	switch s.RunAs {
	case wire.RunAsUser:
		if token, err = userToken(); err != nil {
			return nil, err
		}
		defer token.Close()
		if baseEnv, err = token.Environ(false); err != nil {
			return nil, fmt.Errorf("%w: user environment: %w", ErrSpawn, err)
		}
		if st != nil {
			for _, f := range st.files {
				if err := grantRead(f, token); err != nil {
					return nil, err
				}
			}
		}
	case wire.RunAsSystemGUI:
		if token, err = systemGUIToken(); err != nil {
			return nil, err
		}
		defer token.Close()
	}
	var desktop string
	if token != 0 {
		desktop = `winsta0\default`
	}
	cmdLine := commandLine(s.Shell, exe, s.Script, staged)
	if strings.ContainsRune(cmdLine, 0) {
		return nil, fmt.Errorf("%w: script contains a NUL byte", ErrInvalidSpec)
	}
	childEnv := mergeEnv(scrubEnv(baseEnv, true), s.Env)
	env, err := envBlock(childEnv)
	if err != nil {
		return nil, err
	}
	var dir string
	if s.Cwd != "" {
		dir = expandCwd(s.Cwd, childEnv, func() (string, error) {
			if token != 0 {
				return token.GetUserProfileDirectory()
			}
			return windows.GetCurrentProcessToken().GetUserProfileDirectory()
		})
		if strings.ContainsRune(dir, 0) {
			return nil, fmt.Errorf("%w: cwd contains a NUL byte", ErrInvalidSpec)
		}
	}

	stdin, err := os.Open(os.DevNull)
	if err != nil {
		return nil, fmt.Errorf("%w: open NUL: %w", ErrSpawn, err)
	}
	defer stdin.Close()
	p, err := winproc.Start(&winproc.Spec{
		Token: token, Desktop: desktop, Exe: exe, CmdLine: cmdLine, Env: env, Dir: dir,
		Stdin: stdin, Stdout: stdout, Stderr: stderr,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSpawn, err)
	}
	return &winProc{p: p}, nil
}

func (p *winProc) wait() { p.p.Wait() }

// stop terminates the job, and so the whole tree, at once: Windows has no
// SIGTERM for console process trees, so force makes no difference.
func (p *winProc) stop(force bool) { p.p.Kill() }

func (p *winProc) finish() (int32, error) {
	code, err := p.p.Close()
	if err != nil {
		return wire.ExitKilled, fmt.Errorf("%w: %w", ErrSpawn, err)
	}
	return int32(code), nil // two's complement: 0xC0000005 is -1073741819
}
