//go:build windows

package winproc

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/windows"
)

// ErrNoUser is returned by ConsoleSession and UserToken when no session is
// attached to the console or nobody is logged on to it.
var ErrNoUser = errors.New("winproc: no user is logged on to the console")

// noSession is WTSGetActiveConsoleSessionId's answer when no session is
// attached to the physical console (for example during a session switch).
const noSession = 0xFFFFFFFF

// ConsoleSession returns the id of the session attached to the physical
// console, or an error wrapping ErrNoUser. Remote Desktop sessions are not
// considered.
func ConsoleSession() (uint32, error) {
	id := windows.WTSGetActiveConsoleSessionId()
	if id == noSession {
		return 0, fmt.Errorf("%w: no session is attached to the console", ErrNoUser)
	}
	return id, nil
}

// UserToken returns the primary token of the user logged on to session id
// (WTSQueryUserToken), or an error wrapping ErrNoUser when nobody is. It
// needs the caller to run as LocalSystem (SE_TCB_NAME), as the Windows
// service does. The caller closes the token.
func UserToken(id uint32) (windows.Token, error) {
	var t windows.Token
	if err := windows.WTSQueryUserToken(id, &t); err != nil {
		if errors.Is(err, windows.ERROR_NO_TOKEN) {
			return 0, fmt.Errorf("%w: session %d has no user", ErrNoUser, id)
		}
		return 0, fmt.Errorf("WTSQueryUserToken(session %d) (the agent must run as LocalSystem): %w", id, err)
	}
	return t, nil
}

// OwnSession returns the session the calling process runs in: 0 for a
// service, 1 or more for a program started by a logged-on user.
func OwnSession() (uint32, error) {
	var id uint32
	err := windows.ProcessIdToSessionId(windows.GetCurrentProcessId(), &id)
	return id, err
}

// Spec describes a process to start.
type Spec struct {
	// Token is the account (and session) the process runs as; 0 is the
	// caller's own (CreateProcess), else CreateProcessAsUser is used.
	Token windows.Token
	// Desktop is the window station and desktop, such as `winsta0\default`
	// (needed to reach a user's desktop from another session); empty
	// inherits the caller's.
	Desktop string
	// Exe is the executable's absolute path.
	Exe string
	// CmdLine is the command line the process receives verbatim.
	CmdLine string
	// Env is a CREATE_UNICODE_ENVIRONMENT block (see EnvBlock); nil
	// inherits the caller's environment.
	Env []uint16
	// Dir is the working directory; empty is the caller's.
	Dir string
	// Stdin, Stdout and Stderr are the child's standard handles; they must
	// all be set (os.DevNull for none). The caller keeps and closes them.
	Stdin, Stdout, Stderr *os.File
}

// Proc is a process started by Start, with its Job Object.
type Proc struct {
	process windows.Handle

	mu  sync.Mutex
	job windows.Handle // 0 after Close
}

// EnvBlock encodes env ("KEY=value" entries) as a CREATE_UNICODE_ENVIRONMENT
// block. An entry holding a NUL byte is an error.
func EnvBlock(env []string) ([]uint16, error) {
	var b []uint16
	for _, kv := range env {
		u, err := windows.UTF16FromString(kv)
		if err != nil {
			return nil, errors.New("environment entry with a NUL byte")
		}
		b = append(b, u...) // u ends with its NUL
	}
	if len(b) == 0 {
		b = append(b, 0)
	}
	return append(b, 0), nil
}

// newJob creates a Job Object that kills its processes when closed.
func newJob() (windows.Handle, error) {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return 0, fmt.Errorf("CreateJobObject: %w", err)
	}
	var info windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION
	info.BasicLimitInformation.LimitFlags = windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		windows.CloseHandle(job)
		return 0, fmt.Errorf("SetInformationJobObject: %w", err)
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

// Start creates the process s describes, suspended, assigns it to a new
// kill-on-close Job Object and resumes it. The window is hidden.
func Start(s *Spec) (_ *Proc, err error) {
	appName, err := windows.UTF16PtrFromString(s.Exe)
	if err != nil {
		return nil, fmt.Errorf("executable path: %w", err)
	}
	cmdLine, err := windows.UTF16PtrFromString(s.CmdLine)
	if err != nil {
		return nil, errors.New("command line contains a NUL byte")
	}
	var dir, desktop *uint16
	if s.Dir != "" {
		if dir, err = windows.UTF16PtrFromString(s.Dir); err != nil {
			return nil, errors.New("working directory contains a NUL byte")
		}
	}
	if s.Desktop != "" {
		if desktop, err = windows.UTF16PtrFromString(s.Desktop); err != nil {
			return nil, errors.New("desktop contains a NUL byte")
		}
	}
	var env *uint16
	if len(s.Env) > 0 {
		env = &s.Env[0]
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

	var handles []windows.Handle
	defer func() {
		for _, h := range handles {
			windows.CloseHandle(h)
		}
	}()
	for _, f := range []*os.File{s.Stdin, s.Stdout, s.Stderr} {
		h, err := inheritable(windows.Handle(f.Fd()))
		if err != nil {
			return nil, fmt.Errorf("DuplicateHandle: %w", err)
		}
		handles = append(handles, h)
	}

	attrs, err := windows.NewProcThreadAttributeList(1)
	if err != nil {
		return nil, fmt.Errorf("attribute list: %w", err)
	}
	defer attrs.Delete()
	// Only these handles are inherited, whatever else is inheritable in the
	// caller at this moment (another run's pipes, for one).
	if err := attrs.Update(windows.PROC_THREAD_ATTRIBUTE_HANDLE_LIST,
		unsafe.Pointer(&handles[0]), uintptr(len(handles))*unsafe.Sizeof(handles[0])); err != nil {
		return nil, fmt.Errorf("handle list: %w", err)
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
	if s.Token != 0 {
		err = windows.CreateProcessAsUser(s.Token, appName, cmdLine, nil, nil, true, flags, env, dir, &si.StartupInfo, pi)
	} else {
		err = windows.CreateProcess(appName, cmdLine, nil, nil, true, flags, env, dir, &si.StartupInfo, pi)
	}
	if err != nil {
		return nil, fmt.Errorf("CreateProcess %s: %w", s.Exe, err)
	}
	defer windows.CloseHandle(pi.Thread)
	// The process has not run a single instruction yet: nothing it starts
	// can be outside the job.
	if err = windows.AssignProcessToJobObject(job, pi.Process); err != nil {
		windows.TerminateProcess(pi.Process, 1)
		windows.CloseHandle(pi.Process)
		return nil, fmt.Errorf("AssignProcessToJobObject: %w", err)
	}
	if _, err = windows.ResumeThread(pi.Thread); err != nil {
		windows.CloseHandle(pi.Process) // the job close (deferred) kills it
		return nil, fmt.Errorf("ResumeThread: %w", err)
	}
	return &Proc{process: pi.Process, job: job}, nil
}

// Wait blocks until the process exits (its children may live on in the
// job until Kill or Close).
func (p *Proc) Wait() {
	windows.WaitForSingleObject(p.process, windows.INFINITE)
}

// WaitTimeout waits at most d milliseconds for the process to exit and
// reports whether it did.
func (p *Proc) WaitTimeout(ms uint32) bool {
	ev, _ := windows.WaitForSingleObject(p.process, ms)
	return ev == windows.WAIT_OBJECT_0
}

// Kill terminates the job, and so the whole tree, at once. It is safe to
// call at any time, also after Close.
func (p *Proc) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.job != 0 {
		windows.TerminateJobObject(p.job, 1)
	}
}

// Close kills whatever is left of the tree, releases the handles and
// returns the process's exit code. Call it once, after Wait.
func (p *Proc) Close() (uint32, error) {
	var code uint32
	err := windows.GetExitCodeProcess(p.process, &code)
	p.Kill()
	p.mu.Lock()
	windows.CloseHandle(p.job)
	p.job = 0
	p.mu.Unlock()
	windows.CloseHandle(p.process)
	if err != nil {
		return 0, fmt.Errorf("GetExitCodeProcess: %w", err)
	}
	return code, nil
}
