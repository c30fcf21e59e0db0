//go:build windows

package runner

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"

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
	var b []uint16
	for _, kv := range env {
		u, err := windows.UTF16FromString(kv)
		if err != nil {
			return nil, fmt.Errorf("%w: environment entry with a NUL byte", ErrInvalidSpec)
		}
		b = append(b, u...) // u ends with its NUL
	}
	if len(b) == 0 {
		b = append(b, 0)
	}
	return append(b, 0), nil
}

// winProc is a script started suspended, placed in its own Job Object with
// JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE, then resumed: every process it starts
// is in the job too (breakaway is not allowed), so terminating or closing
// the job ends the whole tree.
type winProc struct {
	process windows.Handle

	mu  sync.Mutex
	job windows.Handle // 0 after finish
}

// newJob creates a Job Object that kills its processes when closed.
func newJob() (windows.Handle, error) {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return 0, fmt.Errorf("%w: CreateJobObject: %w", ErrSpawn, err)
	}
	var info windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION
	info.BasicLimitInformation.LimitFlags = windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		windows.CloseHandle(job)
		return 0, fmt.Errorf("%w: SetInformationJobObject: %w", ErrSpawn, err)
	}
	return job, nil
}

// inheritable returns an inheritable duplicate of h, to be closed by the
// caller once the child has started.
func inheritable(h windows.Handle) (windows.Handle, error) {
	cur := windows.CurrentProcess()
	var dup windows.Handle
	if err := windows.DuplicateHandle(cur, h, cur, &dup, 0, true, windows.DUPLICATE_SAME_ACCESS); err != nil {
		return 0, err
	}
	return dup, nil
}

// start creates the script's process (from st's file when st is not nil)
// with stdout and stderr on the given pipe write ends and stdin on NUL, in
// a new Job Object, for the account s.RunAs names, with the scrubbed base
// environment plus s.Env and the expanded working directory.
func start(s *Spec, exe string, st *stage, stdout, stderr *os.File) (_ proc, err error) {
	var token windows.Token // 0: the agent's own account
	var desktop *uint16
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
	if token != 0 {
		desktop, _ = windows.UTF16PtrFromString(`winsta0\default`)
	}

	appName, err := windows.UTF16PtrFromString(exe)
	if err != nil {
		return nil, fmt.Errorf("%w: executable path: %w", ErrSpawn, err)
	}
	cmdLine, err := windows.UTF16PtrFromString(commandLine(s.Shell, exe, s.Script, staged))
	if err != nil {
		return nil, fmt.Errorf("%w: script contains a NUL byte", ErrInvalidSpec)
	}
	childEnv := mergeEnv(scrubEnv(baseEnv, true), s.Env)
	env, err := envBlock(childEnv)
	if err != nil {
		return nil, err
	}
	var dir *uint16
	if s.Cwd != "" {
		cwd := expandCwd(s.Cwd, childEnv, func() (string, error) {
			if token != 0 {
				return token.GetUserProfileDirectory()
			}
			return windows.GetCurrentProcessToken().GetUserProfileDirectory()
		})
		if dir, err = windows.UTF16PtrFromString(cwd); err != nil {
			return nil, fmt.Errorf("%w: cwd contains a NUL byte", ErrInvalidSpec)
		}
	}

	job, err := newJob()
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			windows.CloseHandle(job) // kills anything already assigned
		}
	}()

	stdin, err := os.Open(os.DevNull)
	if err != nil {
		return nil, fmt.Errorf("%w: open NUL: %w", ErrSpawn, err)
	}
	defer stdin.Close()
	var handles []windows.Handle
	defer func() {
		for _, h := range handles {
			windows.CloseHandle(h)
		}
	}()
	for _, f := range []*os.File{stdin, stdout, stderr} {
		h, err := inheritable(windows.Handle(f.Fd()))
		if err != nil {
			return nil, fmt.Errorf("%w: DuplicateHandle: %w", ErrSpawn, err)
		}
		handles = append(handles, h)
	}

	attrs, err := windows.NewProcThreadAttributeList(1)
	if err != nil {
		return nil, fmt.Errorf("%w: attribute list: %w", ErrSpawn, err)
	}
	defer attrs.Delete()
	// Only these handles are inherited, whatever else is inheritable in the
	// agent at this moment (another run's pipes, for one).
	if err := attrs.Update(windows.PROC_THREAD_ATTRIBUTE_HANDLE_LIST,
		unsafe.Pointer(&handles[0]), uintptr(len(handles))*unsafe.Sizeof(handles[0])); err != nil {
		return nil, fmt.Errorf("%w: handle list: %w", ErrSpawn, err)
	}
	si := &windows.StartupInfoEx{}
	si.Cb = uint32(unsafe.Sizeof(*si))
	si.Flags = windows.STARTF_USESTDHANDLES | windows.STARTF_USESHOWWINDOW
	si.ShowWindow = windows.SW_HIDE
	si.StdInput, si.StdOutput, si.StdErr = handles[0], handles[1], handles[2]
	si.Desktop = desktop
	si.ProcThreadAttributeList = attrs.List()
	const flags = windows.CREATE_SUSPENDED | windows.CREATE_UNICODE_ENVIRONMENT |
		windows.EXTENDED_STARTUPINFO_PRESENT | windows.CREATE_NO_WINDOW
	pi := &windows.ProcessInformation{}
	if token != 0 {
		err = windows.CreateProcessAsUser(token, appName, cmdLine, nil, nil, true, flags, &env[0], dir, &si.StartupInfo, pi)
	} else {
		err = windows.CreateProcess(appName, cmdLine, nil, nil, true, flags, &env[0], dir, &si.StartupInfo, pi)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: CreateProcess %s: %w", ErrSpawn, exe, err)
	}
	defer windows.CloseHandle(pi.Thread)
	// The process has not run a single instruction yet: nothing it starts
	// can be outside the job.
	if err = windows.AssignProcessToJobObject(job, pi.Process); err != nil {
		windows.TerminateProcess(pi.Process, 1)
		windows.CloseHandle(pi.Process)
		return nil, fmt.Errorf("%w: AssignProcessToJobObject: %w", ErrSpawn, err)
	}
	if _, err = windows.ResumeThread(pi.Thread); err != nil {
		windows.CloseHandle(pi.Process) // the job close (deferred) kills it
		return nil, fmt.Errorf("%w: ResumeThread: %w", ErrSpawn, err)
	}
	return &winProc{process: pi.Process, job: job}, nil
}

func (p *winProc) wait() {
	windows.WaitForSingleObject(p.process, windows.INFINITE)
}

// stop terminates the job, and so the whole tree, at once: Windows has no
// SIGTERM for console process trees, so force makes no difference.
func (p *winProc) stop(force bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.job != 0 {
		windows.TerminateJobObject(p.job, 1)
	}
}

func (p *winProc) finish() (int32, error) {
	var code uint32
	err := windows.GetExitCodeProcess(p.process, &code)
	p.stop(true)
	p.mu.Lock()
	windows.CloseHandle(p.job)
	p.job = 0
	p.mu.Unlock()
	windows.CloseHandle(p.process)
	if err != nil {
		return wire.ExitKilled, fmt.Errorf("%w: GetExitCodeProcess: %w", ErrSpawn, err)
	}
	return int32(code), nil // two's complement: 0xC0000005 is -1073741819
}
