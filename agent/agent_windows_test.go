//go:build windows

package agent_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/google/uuid"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"golang.org/x/sys/windows"
)

// The shell of the Windows tests; see helpers_test.go. These tests also run
// under Wine (see .ci/wine), whose cmd.exe, ping.exe and Job Objects behave
// as Windows's for what is checked here.
const (
	testShell        = wire.ShellCmd
	unsupportedShell = wire.ShellSh // sh exists on Unix only
	nl               = "\r\n"
	noopScript       = "rem"
)

// sleepScript pings the loopback secs+1 times: one second between pings.
func sleepScript(secs int) string { return fmt.Sprintf("ping -n %d 127.0.0.1 >NUL", secs+1) }

func TestWinCommandResult(t *testing.T) {
	e := newEnv(t)
	e.start("pc-w1", "", nil)
	tests := []struct {
		name, script   string
		code           int32
		stdout, stderr string
	}{
		{"ok", "echo hello", 0, "hello\r\n", ""},
		{"exit code", ">&2 echo oops& exit 3", 3, "", "oops\r\n"},
		{"exit b", "echo out& exit /b 7", 7, "out\r\n", ""},
		{"quotes verbatim", `echo "a b" 'c'`, 0, "\"a b\" 'c'\r\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := cmd(tc.script)
			e.publish(pcSubject("pc-w1"), c)
			r := e.waitResult(c.RequestID, 20*time.Second)
			if r.ExitCode != tc.code || r.Stdout != tc.stdout || r.Stderr != tc.stderr || r.Skipped {
				t.Fatalf("result %+v, want exit %d stdout %q stderr %q", r, tc.code, tc.stdout, tc.stderr)
			}
			if r.PcID != "pc-w1" || r.RequestID != c.RequestID || uuid.Validate(r.ResultID) != nil {
				t.Fatalf("ids: %+v", r)
			}
			if r.FinishedAt.Before(r.StartedAt) {
				t.Fatalf("finished %v before started %v", r.FinishedAt, r.StartedAt)
			}
		})
	}
}

func TestWinHeartbeatOSFamily(t *testing.T) {
	e := newEnv(t)
	e.start("pc-w2", "", nil)
	ping, _ := subject.Ping("pc-w2")
	m, err := e.nc.Request(ping, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	h, err := wire.DecodeHeartbeat(m.Data)
	if err != nil || h.PcID != "pc-w2" || h.OSFamily != wire.OSWindows {
		t.Fatalf("ping: %+v %v", h, err)
	}
}

// TestWinTimeoutKillsTree runs cmd, which runs another cmd, which runs
// ping: a child, a grandchild and a great-grandchild of this process, with
// a 2 s timeout. The result says so, and all three are gone (and the
// console hosts Windows started for them): the Job Object took the whole
// tree, not just the child that the agent started.
func TestWinTimeoutKillsTree(t *testing.T) {
	e := newEnv(t)
	e.start("pc-w3", "", nil)
	c := cmd("cmd /C ping -n 100 127.0.0.1 >NUL")
	c.TimeoutSecs = 2
	e.publish(pcSubject("pc-w3"), c)
	// The agent runs in this process, so the script's cmd.exe is our child.
	var tree map[uint32]process
	natstest.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		procs, err := processes()
		if err != nil {
			return err
		}
		tree = descendants(procs, uint32(os.Getpid()))
		var names []string
		for _, p := range tree {
			if n := strings.ToLower(p.exe); n == "cmd.exe" || n == "ping.exe" { // not conhost.exe
				names = append(names, n)
			}
		}
		slices.Sort(names)
		if got := strings.Join(names, " "); got != "cmd.exe cmd.exe ping.exe" {
			return fmt.Errorf("script tree not up yet: [%s], want cmd, cmd and ping", got)
		}
		return nil
	})
	r := e.waitResult(c.RequestID, 30*time.Second)
	if r.ExitCode != wire.ExitKilled || !strings.Contains(r.Stderr, "timeout after 2s") {
		t.Fatalf("%+v", r)
	}
	if d := r.FinishedAt.Sub(r.StartedAt); d > 20*time.Second {
		t.Fatalf("timed out after %v, want about 2 s", d)
	}
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		procs, err := processes()
		if err != nil {
			return err
		}
		for pid, p := range tree {
			if q, ok := procs[pid]; ok && q == p {
				return fmt.Errorf("%s (pid %d) of the timed-out script still runs", p.exe, pid)
			}
		}
		return nil
	})
}

// descendants returns every process below pid in procs.
func descendants(procs map[uint32]process, pid uint32) map[uint32]process {
	out := map[uint32]process{}
	var walk func(uint32)
	walk = func(parent uint32) {
		for cpid, p := range procs {
			if _, seen := out[cpid]; !seen && p.parent == parent && cpid != parent {
				out[cpid] = p
				walk(cpid)
			}
		}
	}
	walk(pid)
	return out
}

type process struct {
	exe    string
	parent uint32
}

// processes returns every running process by pid.
func processes() (map[uint32]process, error) {
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPPROCESS, 0)
	if err != nil {
		return nil, fmt.Errorf("CreateToolhelp32Snapshot: %w", err)
	}
	defer windows.CloseHandle(snap)
	out := map[uint32]process{}
	pe := windows.ProcessEntry32{Size: uint32(unsafe.Sizeof(windows.ProcessEntry32{}))}
	for err = windows.Process32First(snap, &pe); err == nil; err = windows.Process32Next(snap, &pe) {
		out[pe.ProcessID] = process{exe: windows.UTF16ToString(pe.ExeFile[:]), parent: pe.ParentProcessID}
	}
	if !errors.Is(err, windows.ERROR_NO_MORE_FILES) {
		return nil, fmt.Errorf("Process32Next: %w", err)
	}
	return out, nil
}

func TestWinEmitEvents(t *testing.T) {
	e := newEnv(t)
	e.start("pc-w-emit", "", nil)
	c := cmd(`echo {"at":"2026-01-02T03:04:05Z","kind":"logon","source":"test:emit"}& echo not json`)
	c.ExecID = "exec-w-emit"
	c.Emit = &wire.Emit{Type: wire.EmitEvents}
	e.publish(pcSubject("pc-w-emit"), c)
	r := e.waitResult(c.RequestID, 20*time.Second)
	if r.Stdout != "" || !strings.Contains(r.Stderr, "1 of 2 lines") || r.ExitCode != 0 {
		t.Fatalf("emit result: %+v", r)
	}
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		s, err := e.js.Stream(context.Background(), subject.StreamObs)
		if err != nil {
			return err
		}
		m, err := s.GetLastMsgForSubject(context.Background(), "obs.pc-w-emit")
		if err != nil {
			return err
		}
		ev, err := wire.DecodeObsEvent(m.Data)
		if err != nil {
			return err
		}
		if ev.Kind != "logon" || ev.PcID != "pc-w-emit" {
			return fmt.Errorf("last obs event %+v", ev)
		}
		return nil
	})
}
