//go:build unix

package runner

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/wire"
)

func sh(script string) Spec {
	return Spec{Shell: wire.ShellSh, Script: script, Timeout: 30 * time.Second}
}

func TestRunExitCodesAndOutput(t *testing.T) {
	for _, tc := range []struct {
		name, script   string
		code           int32
		stdout, stderr string
	}{
		{"ok", "echo hello", 0, "hello\n", ""},
		{"exit 3", "echo out; echo err >&2; exit 3", 3, "out\n", "err\n"},
		{"exit 255", "exit 255", 255, "", ""},
		{"no trailing newline", "printf 'a b'", 0, "a b", ""},
		{"quotes and dollars verbatim", `x='it''s'; echo "$x" '$HOME'`, 0, "its $HOME\n", ""},
		{"multi-line", "a=1\nb=2\necho $((a+b))", 0, "3\n", ""},
		{"killed by own signal", "kill -9 $$", 128 + 9, "", ""},
		{"stdin is empty", "cat; echo done", 0, "done\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := Run(context.Background(), sh(tc.script))
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			if r.ExitCode != tc.code || string(r.Stdout) != tc.stdout || string(r.Stderr) != tc.stderr {
				t.Fatalf("got exit %d stdout %q stderr %q; want %d %q %q", r.ExitCode, r.Stdout, r.Stderr, tc.code, tc.stdout, tc.stderr)
			}
			if r.TimedOut || r.Killed || r.StdoutTruncated || r.StderrTruncated {
				t.Fatalf("flags %+v", r)
			}
			if r.StdoutBytes != int64(len(tc.stdout)) || r.StderrBytes != int64(len(tc.stderr)) {
				t.Fatalf("byte counts %d %d", r.StdoutBytes, r.StderrBytes)
			}
			if r.Started.IsZero() || r.Finished.Before(r.Started) {
				t.Fatalf("times %v %v", r.Started, r.Finished)
			}
		})
	}
}

func TestRunCwdAndEnv(t *testing.T) {
	dir := t.TempDir()
	s := sh(`pwd; echo "$KANADE_A/$KANADE_B"; echo "$HOME"`)
	s.Cwd = dir
	s.Env = []string{"KANADE_A=1", "KANADE_B=x", "KANADE_B=y y"}
	r := Run(context.Background(), s)
	if r.Err != nil || r.ExitCode != 0 {
		t.Fatal(r.ExitCode, r.Err)
	}
	real, _ := filepath.EvalSymlinks(dir)
	want := fmt.Sprintf("%s\n1/y y\n%s\n", real, os.Getenv("HOME"))
	if string(r.Stdout) != want {
		t.Fatalf("got %q want %q", r.Stdout, want)
	}
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return runtime.GOOS != "linux" // no /proc: trust kill(0)
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	var pid int
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err
	})
	return pid
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if alive(pid) {
			return fmt.Errorf("pid %d still alive", pid)
		}
		return nil
	})
}

func TestRunTimeoutKillsGrandchildren(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	// sh starts sh (child) which starts sleep (grandchild), then waits.
	s := sh(`sh -c 'sleep 1000 & echo $! > "$1.tmp"; mv "$1.tmp" "$1"; wait' x "` + pidFile + `"; echo unreachable`)
	// Long enough for the grandchild to start on a loaded machine.
	s.Timeout = 3 * time.Second
	start := time.Now()
	r := Run(context.Background(), s)
	elapsed := time.Since(start)
	if !r.TimedOut || r.Killed || r.ExitCode != wire.ExitKilled || r.Err != nil {
		t.Fatalf("result %+v", r)
	}
	if got := r.Note("x"); got != "timeout after 3s" {
		t.Fatalf("note %q", got)
	}
	if elapsed > 10*time.Second {
		t.Fatalf("took %v", elapsed)
	}
	if bytes.Contains(r.Stdout, []byte("unreachable")) {
		t.Fatal("script went on after the timeout")
	}
	waitGone(t, readPid(t, pidFile))
}

func TestRunCancelKillsTree(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	ctx, cancel := context.WithCancel(context.Background())
	s := sh(`echo started; sleep 1000 & echo $! > "` + pidFile + `.tmp"; mv "` + pidFile + `.tmp" "` + pidFile + `"; wait`)
	done := make(chan Result, 1)
	go func() { done <- Run(ctx, s) }()
	pid := readPid(t, pidFile)
	cancel()
	var r Result
	select {
	case r = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if !r.Killed || r.TimedOut || r.ExitCode != wire.ExitKilled || r.Err != nil {
		t.Fatalf("result %+v", r)
	}
	if string(r.Stdout) != "started\n" {
		t.Fatalf("stdout %q", r.Stdout)
	}
	if got := r.Note("e1"); got != "killed by remote signal (kill.e1)" {
		t.Fatalf("note %q", got)
	}
	waitGone(t, pid)
}

func TestRunAlreadyCancelled(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := Run(ctx, sh("touch "+marker))
	if !r.Killed || r.ExitCode != wire.ExitKilled || r.Err != nil {
		t.Fatalf("result %+v", r)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("script ran: %v", err)
	}
}

// runUntilReady runs s, waits for the script to create the file named by
// $READY, then cancels ctx; it returns the result and the time from the
// cancel to Run's return.
func runUntilReady(t *testing.T, s Spec) (Result, time.Duration) {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	s.Env = append(s.Env, "READY="+ready)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan Result, 1)
	go func() { done <- Run(ctx, s) }()
	natstest.CheckFor(t, 20*time.Second, 5*time.Millisecond, func() error {
		_, err := os.Stat(ready)
		return err
	})
	start := time.Now()
	cancel()
	select {
	case r := <-done:
		return r, time.Since(start)
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	return Result{}, 0
}

func TestRunSIGTERMIgnoredGetsSIGKILL(t *testing.T) {
	s := sh(`trap '' TERM; touch "$READY"; while :; do sleep 1; done`)
	s.KillGrace = 500 * time.Millisecond
	r, elapsed := runUntilReady(t, s)
	if !r.Killed || r.ExitCode != wire.ExitKilled {
		t.Fatalf("result %+v", r)
	}
	if elapsed < s.KillGrace {
		t.Fatalf("returned %v after the cancel, before the kill grace", elapsed)
	}
	if elapsed > 15*time.Second {
		t.Fatalf("took %v", elapsed)
	}
}

func TestRunSIGTERMHonouredBeforeGrace(t *testing.T) {
	s := sh(`trap 'echo got-term; exit 7' TERM; echo ready; touch "$READY"; while :; do sleep 0.05; done`)
	s.KillGrace = 30 * time.Second
	r, elapsed := runUntilReady(t, s)
	if elapsed > 15*time.Second {
		t.Fatalf("took %v: SIGTERM not sent or not waited for", elapsed)
	}
	if !r.Killed || r.ExitCode != wire.ExitKilled {
		t.Fatalf("result %+v", r)
	}
	if string(r.Stdout) != "ready\ngot-term\n" {
		t.Fatalf("stdout %q", r.Stdout)
	}
}

func TestRunBackgroundChildHoldingStdout(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	s := sh(`sleep 1000 & echo $! > "` + pidFile + `"; echo hi`)
	start := time.Now()
	r := Run(context.Background(), s)
	elapsed := time.Since(start)
	if r.Err != nil || r.ExitCode != 0 || string(r.Stdout) != "hi\n" {
		t.Fatalf("result %+v", r)
	}
	if elapsed > 10*time.Second {
		t.Fatalf("took %v", elapsed)
	}
	// The stray was killed with the group as soon as sh exited (had it not
	// been, only the drain grace would have ended the run, and it would
	// still be alive).
	waitGone(t, readPid(t, pidFile))
	t.Logf("returned after %v", elapsed)
}

func TestRunEscapedChildHoldingStdout(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Fatalf("setsid not found: %v", err)
	}
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	// setsid puts sleep in a new session, out of reach of the group kill;
	// it keeps stdout open, so only the drain grace ends the run.
	s := sh(`setsid sh -c 'echo $$ > "$1.tmp"; mv "$1.tmp" "$1"; exec sleep 1000' x "` + pidFile + `" &
while [ ! -s "` + pidFile + `" ]; do sleep 0.01; done
echo hi`)
	start := time.Now()
	r := Run(context.Background(), s)
	elapsed := time.Since(start)
	pid := readPid(t, pidFile)
	defer syscall.Kill(pid, syscall.SIGKILL)
	if r.Err != nil || r.ExitCode != 0 || string(r.Stdout) != "hi\n" {
		t.Fatalf("result %+v", r)
	}
	if elapsed > drainGrace+10*time.Second {
		t.Fatalf("took %v", elapsed)
	}
	t.Logf("returned after %v with an escaped process holding stdout", elapsed)
}

// rssKiB reads VmRSS of this process.
func rssKiB(t *testing.T) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatalf("no /proc/self/status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// peakDuring samples RSS and the Go heap every 5 ms while f runs.
func peakDuring(t *testing.T, f func()) (rssGrowthKiB int64, heapPeak uint64) {
	if runtime.GOOS != "linux" {
		t.Skip("RSS is read from /proc (Linux only)")
	}
	runtime.GC()
	base := rssKiB(t)
	stop := make(chan struct{})
	done := make(chan struct{})
	var peak int64
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			if r := rssKiB(t); r > peak {
				peak = r
			}
			runtime.ReadMemStats(&ms)
			heapPeak = max(heapPeak, ms.HeapInuse)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(stop)
	<-done
	return peak - base, heapPeak
}

func TestRunHugeOutputBounded(t *testing.T) {
	const gib = 1 << 30
	s := sh("head -c 1073741824 /dev/zero")
	s.Timeout = 5 * time.Minute
	var r Result
	var elapsed time.Duration
	growth, heap := peakDuring(t, func() {
		start := time.Now()
		r = Run(context.Background(), s)
		elapsed = time.Since(start)
	})
	t.Logf("1 GiB stdout: %v (%.0f MiB/s); RSS growth %d KiB, peak HeapInuse %d KiB", elapsed, gib/elapsed.Seconds()/(1<<20), growth, heap>>10)
	if r.Err != nil || r.ExitCode != 0 {
		t.Fatalf("exit %d err %v", r.ExitCode, r.Err)
	}
	if r.StdoutBytes != gib || !r.StdoutTruncated || len(r.Stdout) != DefaultMaxOutput {
		t.Fatalf("bytes %d truncated %v kept %d", r.StdoutBytes, r.StdoutTruncated, len(r.Stdout))
	}
	if !bytes.Equal(r.Stdout, make([]byte, DefaultMaxOutput)) {
		t.Fatal("kept bytes are not the first bytes written")
	}
	if growth > 64<<10 {
		t.Fatalf("RSS grew by %d KiB", growth)
	}
}

func TestRunBothStreamsLargeConcurrently(t *testing.T) {
	const n = 64 << 20
	s := sh(fmt.Sprintf("head -c %d /dev/zero >&2 & head -c %d /dev/zero | tr '\\0' o; wait", n, n))
	s.MaxOutput = 1000
	s.Timeout = 2 * time.Minute
	r := Run(context.Background(), s)
	if r.Err != nil || r.ExitCode != 0 {
		t.Fatalf("exit %d err %v", r.ExitCode, r.Err)
	}
	if r.StdoutBytes != n || r.StderrBytes != n || !r.StdoutTruncated || !r.StderrTruncated {
		t.Fatalf("%+v", r)
	}
	if string(r.Stdout) != strings.Repeat("o", 1000) || !bytes.Equal(r.Stderr, make([]byte, 1000)) {
		t.Fatal("kept bytes wrong")
	}
}

func TestRunUnsupported(t *testing.T) {
	for _, tc := range []struct{ shell, runAs string }{
		{wire.ShellCmd, ""},
		{wire.ShellPowerShell, ""},
		{"bash", ""},
		{"", ""},
		{wire.ShellSh, wire.RunAsUser},
		{wire.ShellSh, wire.RunAsSystemGUI},
		{wire.ShellSh, "root"},
	} {
		err := Supported(tc.shell, tc.runAs)
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("Supported(%q, %q) = %v, want ErrUnsupported", tc.shell, tc.runAs, err)
		}
		s := sh("echo hi")
		s.Shell, s.RunAs = tc.shell, tc.runAs
		r := Run(context.Background(), s)
		if !errors.Is(r.Err, ErrUnsupported) || r.ExitCode != wire.ExitUnsupported || r.Killed || r.TimedOut {
			t.Errorf("Run(%q, %q) = %+v", tc.shell, tc.runAs, r)
		}
	}
	for _, runAs := range []string{"", wire.RunAsSystem} {
		if err := Supported(wire.ShellSh, runAs); err != nil {
			t.Errorf("sh as %q: %v", runAs, err)
		}
	}
	// pwsh is supported exactly when it is installed.
	_, lookErr := exec.LookPath("pwsh")
	if err := Supported(wire.ShellPwsh, ""); (err == nil) != (lookErr == nil) || (err != nil && !errors.Is(err, ErrUnsupported)) {
		t.Errorf("Supported(pwsh) = %v with LookPath error %v", err, lookErr)
	}
}

func TestRunPwsh(t *testing.T) {
	if _, err := exec.LookPath("pwsh"); err != nil {
		// Covered by TestRunUnsupported (pwsh must then be unsupported)
		// and TestStagePowerShell / TestLauncher; there is nothing to run here.
		t.Skip("pwsh not installed")
	}
	// The launcher passes the script's exit code on.
	for _, tc := range []struct {
		script string
		code   int32
		stdout string
	}{
		{"Write-Output 'h\u00e9llo'; exit 4", 4, "h\u00e9llo"},
		{"Write-Output 'ok'", 0, "ok"},
		{"[CmdletBinding()]\nparam([string]$X = 'a')\nWrite-Output $X\nexit 7", 7, "a"},
		{"throw 'boom'", 1, ""},
		{"sh -c 'exit 5'", 5, ""},
	} {
		dir := t.TempDir()
		s := Spec{Shell: wire.ShellPwsh, Script: tc.script, Timeout: time.Minute, StageDir: dir}
		r := Run(context.Background(), s)
		if r.Err != nil || r.ExitCode != tc.code || strings.TrimSpace(string(r.Stdout)) != tc.stdout {
			t.Errorf("%q: %+v stdout %q stderr %q", tc.script, r, r.Stdout, r.Stderr)
		}
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Fatalf("staged file left: %v", left)
		}
	}
}

func TestRunSpawnFailure(t *testing.T) {
	s := sh("echo hi")
	s.Cwd = filepath.Join(t.TempDir(), "does-not-exist")
	r := Run(context.Background(), s)
	if !errors.Is(r.Err, ErrSpawn) || !errors.Is(r.Err, os.ErrNotExist) || r.ExitCode != wire.ExitKilled {
		t.Fatalf("%+v", r)
	}
	if r.Note("x") == "" {
		t.Fatal("no note for a spawn failure")
	}
}

func TestRunInvalidSpec(t *testing.T) {
	for _, s := range []Spec{
		{Shell: wire.ShellSh, Script: "true"},
		{Shell: wire.ShellSh, Script: "true", Timeout: -1},
		{Shell: wire.ShellSh, Script: "true", Timeout: time.Second, MaxOutput: -1},
		{Shell: wire.ShellSh, Script: "true", Timeout: time.Second, KillGrace: -1},
	} {
		if r := Run(context.Background(), s); !errors.Is(r.Err, ErrInvalidSpec) || r.ExitCode != wire.ExitKilled {
			t.Errorf("%+v: %+v", s, r)
		}
	}
}

func TestLargeShScriptIsStaged(t *testing.T) {
	dir := t.TempDir()
	s := sh(": " + strings.Repeat("x", 1<<20) + "\necho big")
	s.StageDir = dir
	r := Run(context.Background(), s)
	if r.ExitCode != 0 || string(r.Stdout) != "big\n" || r.Err != nil {
		t.Fatalf("exit %d stdout %q err %v", r.ExitCode, r.Stdout, r.Err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("staged file left behind: %v", left)
	}
}
