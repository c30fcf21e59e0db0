//go:build windows

package session

import (
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
)

// The Windows helper reads GetLastInputInfo and prints it. Under Wine
// GetLastInputInfo answers (no input ever: the idle time is the uptime).
func TestHelperGetLastInputInfo(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	var errb natstest.Buffer
	done := make(chan int, 1)
	go func() {
		done <- RunHelper(context.Background(), []string{HelperFlag, IntervalFlag + "=50ms"}, os.Getenv, inR, outW, &errb)
		outW.Close()
	}()
	var lines []string
	go func() {
		_ = readLines(outR, MaxLine, func(l []byte, err error) {
			if len(lines) < 2 {
				lines = append(lines, string(l))
			}
			if len(lines) == 2 {
				inW.Close()
			}
		})
	}()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d, stderr %q", code, errb.String())
		}
	case <-time.After(wait):
		t.Fatal("helper did not exit when stdin closed")
	}
	for _, l := range lines {
		ms, known, err := parseLine([]byte(l))
		if err != nil || !known {
			t.Errorf("line %q: %d %v %v", l, ms, known, err)
		}
	}
}

// The service path: the helper launched into the console session with the
// console user's token (WTSQueryUserToken, CreateEnvironmentBlock,
// CreateProcessAsUser on winsta0\default). On real Windows this needs
// LocalSystem and a logged-on console user, so outside a service it is
// skipped. Wine has no real sessions: WTSGetActiveConsoleSessionId says 1
// and WTSQueryUserToken hands out the process's own token, so the call
// sequence runs but proves nothing about session isolation.
func TestConsoleLauncher(t *testing.T) {
	l := consoleLauncher{}
	id, err := l.target()
	if err != nil {
		t.Skipf("no console user token here (needs LocalSystem and a logged-on user): %v", err)
	}
	// The helper gets the console user's environment, not this process's:
	// no fake script reaches it, so this test binary runs the real helper.
	exe, _ := os.Executable()
	o := &Options{HelperPath: exe, Sample: 20 * time.Millisecond}
	p, err := l.start(o, id)
	if err != nil {
		t.Fatalf("start in session %d: %v", id, err)
	}
	first := make(chan string, 1)
	go func() {
		_ = readLines(p.stdout(), MaxLine, func(l []byte, err error) {
			select {
			case first <- string(l):
			default:
			}
		})
	}()
	select {
	case l := <-first:
		if _, known, err := parseLine([]byte(l)); err != nil || !known {
			t.Errorf("line %q: %v", l, err)
		}
	case <-time.After(wait):
		t.Errorf("no line; stderr %q", p.stderr())
	}
	p.kill()
	if code := p.wait(); code == 0 {
		t.Errorf("killed helper exit code 0")
	}
}
