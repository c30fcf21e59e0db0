//go:build windows

package session

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/windows"

	"github.com/kanade/kanade-agent/internal/winproc"
)

// platformLauncher launches the helper into the console session when the
// agent runs in session 0 (the Windows service), else as a plain child
// (the agent then runs in a user's session already).
func platformLauncher() launcher {
	if id, err := winproc.OwnSession(); err == nil && id == 0 {
		return consoleLauncher{}
	}
	return childLauncher{}
}

// consoleLauncher starts the helper in the session attached to the
// physical console, as the user logged on to it (WTSQueryUserToken,
// CreateEnvironmentBlock, CreateProcessAsUser on winsta0\default), in a
// kill-on-close Job Object. It needs LocalSystem.
type consoleLauncher struct{}

func (consoleLauncher) follows() bool { return true }

func (consoleLauncher) target() (uint32, error) {
	id, err := winproc.ConsoleSession()
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errNoUser, err)
	}
	t, err := winproc.UserToken(id)
	if err != nil {
		if errors.Is(err, winproc.ErrNoUser) {
			return 0, fmt.Errorf("%w: %v", errNoUser, err)
		}
		return 0, err
	}
	t.Close()
	return id, nil
}

func (consoleLauncher) start(o *Options, id uint32) (_ helperProc, err error) {
	token, err := winproc.UserToken(id)
	if err != nil {
		if errors.Is(err, winproc.ErrNoUser) {
			return nil, fmt.Errorf("%w: %v", errNoUser, err)
		}
		return nil, err
	}
	defer token.Close()
	envs, err := token.Environ(false) // CreateEnvironmentBlock
	if err != nil {
		return nil, fmt.Errorf("user environment: %w", err)
	}
	return startWin(o, token, `winsta0\default`, envs)
}

// startWin starts the helper through winproc with pipes on its standard
// handles, for token (0: the agent's own account).
func startWin(o *Options, token windows.Token, desktop string, envs []string) (_ helperProc, err error) {
	env, err := winproc.EnvBlock(envs)
	if err != nil {
		return nil, err
	}
	var closers []*os.File
	defer func() {
		for _, f := range closers {
			f.Close()
		}
	}()
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return nil, err
	}
	closers = append(closers, inR, outW, errW) // the child's ends
	args := append([]string{o.HelperPath}, helperArgs(o)...)
	for i, a := range args {
		args[i] = syscall.EscapeArg(a)
	}
	p, err := winproc.Start(&winproc.Spec{
		Token: token, Desktop: desktop, Exe: o.HelperPath, CmdLine: strings.Join(args, " "),
		Env: env, Stdin: inR, Stdout: outW, Stderr: errW,
	})
	if err != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		return nil, err
	}
	wp := &winHelper{p: p, in: inW, out: outR, errR: errR, tail: &tail{}, copied: make(chan struct{})}
	go func() {
		_, _ = io.Copy(wp.tail, errR)
		close(wp.copied)
	}()
	return wp, nil
}

// winHelper is a helper started by winproc.
type winHelper struct {
	p      *winproc.Proc
	in     *os.File
	out    *os.File
	errR   *os.File
	tail   *tail
	copied chan struct{}
	once   sync.Once
	code   int
}

func (h *winHelper) stdout() io.Reader { return h.out }
func (h *winHelper) stderr() string    { return h.tail.String() }
func (h *winHelper) kill()             { h.p.Kill() }

func (h *winHelper) wait() int {
	h.once.Do(func() {
		if !h.p.WaitTimeout(uint32(stopTimeout.Milliseconds())) {
			h.p.Kill()
			h.p.WaitTimeout(uint32(stopTimeout.Milliseconds()))
		}
		code, err := h.p.Close()
		h.code = int(int32(code))
		if err != nil {
			h.code = -1
		}
		h.in.Close()
		h.out.Close()
		h.errR.Close()
		<-h.copied
	})
	return h.code
}
