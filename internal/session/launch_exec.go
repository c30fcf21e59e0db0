package session

import (
	"io"
	"os/exec"
	"sync"
	"time"
)

// childLauncher runs the helper as a plain child process of the agent, in
// the agent's own session: on Linux, and on Windows when the agent is not
// a service (it then runs in the user's session already).
type childLauncher struct{}

func (childLauncher) target() (uint32, error) { return 0, nil }
func (childLauncher) follows() bool           { return false }

func (childLauncher) start(o *Options, _ uint32) (helperProc, error) {
	cmd := exec.Command(o.HelperPath, helperArgs(o)...)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	t := &tail{}
	cmd.Stderr = t
	cmd.WaitDelay = stopTimeout
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &cmdProc{cmd: cmd, in: in, out: out, tail: t}, nil
}

// cmdProc is a helper started with os/exec. The agent keeps the write end
// of its stdin: when the agent dies, the helper reads EOF and exits.
type cmdProc struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  io.Reader
	tail *tail
	once sync.Once
}

func (p *cmdProc) stdout() io.Reader { return p.out }
func (p *cmdProc) stderr() string    { return p.tail.String() }

func (p *cmdProc) kill() { _ = p.cmd.Process.Kill() }

func (p *cmdProc) wait() int {
	code := -1
	p.once.Do(func() {
		done := make(chan struct{})
		go func() {
			_ = p.cmd.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(stopTimeout):
			p.kill()
			<-done // WaitDelay bounds this
		}
		_ = p.in.Close()
		code = p.cmd.ProcessState.ExitCode()
	})
	return code
}
