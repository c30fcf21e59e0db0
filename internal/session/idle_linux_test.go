//go:build linux

package session

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"context"

	"golang.org/x/sys/unix"
)

func TestLogindIdleMS(t *testing.T) {
	const now = 1_000_000_000 // µs
	for _, c := range []struct {
		props map[string]string
		ms    uint64
		known bool
		bad   bool
	}{
		{props: map[string]string{"IdleHint": "yes", "IdleSinceHintMonotonic": "400000000", "Type": "x11"}, ms: 600_000, known: true},
		{props: map[string]string{"IdleHint": "no", "IdleSinceHintMonotonic": "400000000", "Type": "wayland"}, ms: 0, known: true},
		{props: map[string]string{"IdleHint": "no", "IdleSinceHintMonotonic": "999000000", "Type": "tty"}, ms: 1000, known: true},
		{props: map[string]string{"IdleHint": "no", "IdleSinceHintMonotonic": "0", "Type": "tty"}, ms: 0, known: true},
		{props: map[string]string{"IdleHint": "yes", "IdleSinceHintMonotonic": "0"}, bad: true},
		{props: map[string]string{"IdleHint": "yes", "IdleSinceHintMonotonic": "2000000000"}, bad: true},
		{props: map[string]string{"IdleHint": "maybe"}, bad: true},
		{props: map[string]string{}, bad: true},
	} {
		ms, known, err := logindIdleMS(c.props, now)
		if (err != nil) != c.bad || ms != c.ms || known != c.known {
			t.Errorf("logindIdleMS(%v) = %d, %v, %v", c.props, ms, known, err)
		}
	}
}

// Without loginctl the helper says why on stderr and exits ExitUnsupported.
func TestHelperWithoutLoginctl(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	var out, errb bytes.Buffer
	code := RunHelper(context.Background(), []string{HelperFlag}, os.Getenv, strings.NewReader(""), &out, &errb)
	if code != ExitUnsupported {
		t.Errorf("exit %d, want %d", code, ExitUnsupported)
	}
	if msg := errb.String(); !strings.Contains(msg, "loginctl not found") || !strings.Contains(msg, "systemd-logind") {
		t.Errorf("stderr %q does not say loginctl is missing", msg)
	}
	if out.Len() != 0 {
		t.Errorf("stdout %q, want nothing", out.String())
	}
}

// fakeLoginctl installs a loginctl script printing the given outputs for
// show-seat and show-session, and exiting with code for show-seat.
func fakeLoginctl(t *testing.T, seat, sess string, seatCode int) {
	dir := t.TempDir()
	script := fmt.Sprintf("#!/bin/sh\ncase \"$1\" in\nshow-seat) printf '%%s\\n' '%s'; exit %d;;\nshow-session) printf '%%s\\n' %s;;\nesac\n", seat, seatCode, sess)
	if err := os.WriteFile(filepath.Join(dir, "loginctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":/usr/bin:/bin")
}

// logind not answering (a container without systemd) is unsupported too.
func TestHelperLogindDown(t *testing.T) {
	fakeLoginctl(t, "System has not been booted with systemd", "", 1)
	t.Setenv("XDG_SESSION_ID", "")
	var out, errb bytes.Buffer
	code := RunHelper(context.Background(), []string{HelperFlag}, os.Getenv, strings.NewReader(""), &out, &errb)
	if code != ExitUnsupported || !strings.Contains(errb.String(), "systemd-logind does not answer") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}

// The helper reads seat0's active session through loginctl and prints its
// idle time, and null when nobody is at the console.
func TestHelperLogind(t *testing.T) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	since := ts.Nano()/1000 - 600_000_000 // idle for 600 s
	t.Setenv("XDG_SESSION_ID", "")
	for _, c := range []struct {
		seat, want string
	}{
		{seat: "ActiveSession=7", want: `{"idle_ms":600`},
		{seat: "ActiveSession=", want: `{"idle_ms":null}`},
	} {
		fakeLoginctl(t, c.seat, fmt.Sprintf("IdleHint=yes IdleSinceHintMonotonic=%d Type=x11", since), 0)
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		var errb syncBuffer
		done := make(chan int, 1)
		go func() {
			done <- RunHelper(context.Background(), []string{HelperFlag, IntervalFlag + "=50ms"}, os.Getenv, inR, outW, &errb)
			outW.Close()
		}()
		// A sample can fail once (a freshly written script can be busy
		// for a moment while another goroutine of this process forks:
		// ETXTBSY); the helper then prints null and says why on stderr,
		// and the next sample, 50 ms later, must be right.
		lines := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(outR)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), c.want) {
					lines <- sc.Text()
					break
				}
			}
			io.Copy(io.Discard, outR)
		}()
		select {
		case <-lines:
		case <-time.After(wait):
			t.Errorf("seat %q: the helper printed no line starting %s in %v; stderr %q", c.seat, c.want, wait, errb.String())
		}
		inW.Close()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("exit %d; stderr %q", code, errb.String())
			}
		case <-time.After(wait):
			t.Fatal("helper did not exit when stdin closed")
		}
	}
}

// syncBuffer is a bytes.Buffer a helper writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
