//go:build windows

package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"

	"golang.org/x/sys/windows"

	"github.com/kanade/kanade-agent/wire"
)

// underWine reports whether the test runs under Wine, whose powershell.exe
// is a stub that prints nothing.
func underWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}

func cmdSpec(script string) Spec {
	return Spec{Shell: wire.ShellCmd, Script: script, Timeout: time.Minute}
}

func TestWinCmdOutputAndExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name, script   string
		code           int32
		stdout, stderr string
	}{
		{"echo", "echo hello", 0, "hello\r\n", ""},
		{"exit 3", "echo out& >&2 echo err& exit /b 3", 3, "out\r\n", "err\r\n"},
		{"quotes verbatim", `echo "a b" 'c'`, 0, "\"a b\" 'c'\r\n", ""},
		// Starts and ends with a quote: cmd /C without /S could strip them.
		{"leading and trailing quotes", `"%ComSpec%" /c "echo x"`, 0, "x\r\n", ""},
		{"two's complement", "exit /b -1073741819", -1073741819, "", ""},
		{"stdin is NUL", "more & echo done", 0, "done\r\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Run(context.Background(), cmdSpec(tc.script))
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			if r.ExitCode != tc.code || string(r.Stdout) != tc.stdout || string(r.Stderr) != tc.stderr {
				t.Fatalf("got exit %d stdout %q stderr %q; want %d %q %q", r.ExitCode, r.Stdout, r.Stderr, tc.code, tc.stdout, tc.stderr)
			}
			if r.TimedOut || r.Killed || r.StdoutTruncated || r.StderrTruncated {
				t.Fatalf("flags %+v", r)
			}
		})
	}
}

// TestWinCmdMultiLine: a multi-line or long cmd script runs whole, as a
// batch file, and the staged file is removed.
func TestWinCmdMultiLine(t *testing.T) {
	var long strings.Builder
	var longOut strings.Builder
	for i := range 1000 { // about 12 KB: over cmd's 8191-character command line
		fmt.Fprintf(&long, "echo line %d\n", i)
		fmt.Fprintf(&longOut, "line %d\r\n", i)
	}
	long.WriteString("exit /b 4")
	for _, tc := range []struct {
		name, script string
		code         int32
		stdout       string
	}{
		{"lf lines", "echo a\necho b\nexit /b 3", 3, "a\r\nb\r\n"},
		{"crlf lines", "echo a\r\necho b\r\n", 0, "a\r\nb\r\n"},
		{"for loop and goto", "for %%i in (x y) do echo %%i\ngoto skip\necho not me\n:skip\necho end", 0, "x\r\ny\r\nend\r\n"},
		{"long", long.String(), 4, longOut.String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := natstest.TempDir(t)
			s := cmdSpec(tc.script)
			s.StageDir = dir
			r := Run(context.Background(), s)
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			if r.ExitCode != tc.code || string(r.Stdout) != tc.stdout {
				t.Fatalf("got exit %d stdout %.200q stderr %.200q; want %d %.200q", r.ExitCode, r.Stdout, r.Stderr, tc.code, tc.stdout)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) > 0 {
				t.Fatalf("staged files left: %v", left)
			}
		})
	}
}

func TestWinCwdAndEnv(t *testing.T) {
	dir := natstest.TempDir(t)
	s := cmdSpec("cd& echo %KANADE_A%/%kanade_b%")
	s.Cwd = dir
	s.Env = []string{"KANADE_A=1", "KANADE_B=x", "Kanade_B=y y"}
	r := Run(context.Background(), s)
	if r.Err != nil || r.ExitCode != 0 {
		t.Fatal(r.ExitCode, r.Err)
	}
	want := dir + "\r\n1/y y\r\n"
	if !strings.EqualFold(string(r.Stdout), want) {
		t.Fatalf("got %q want %q", r.Stdout, want)
	}
}

func TestWinMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"=C:=C:\\x", "Path=a", "B=1"}, []string{"PATH=b", "C=", "b=2"})
	want := []string{"=C:=C:\\x", "PATH=b", "b=2", "C="}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestWinCommandLine(t *testing.T) {
	if got := commandLine(wire.ShellCmd, `C:\W\cmd.exe`, `echo "x" & dir`, ""); got != `C:\W\cmd.exe /S /C "echo "x" & dir"` {
		t.Fatal(got)
	}
	if got := commandLine(wire.ShellCmd, `C:\W\cmd.exe`, "echo a\necho b", `C:\D\run-1\script.cmd`); got != `C:\W\cmd.exe /S /C ""C:\D\run-1\script.cmd""` {
		t.Fatal(got)
	}
	// PowerShell runs the launcher (see TestLauncher), which runs the script.
	got := commandLine(wire.ShellPowerShell, `C:\Program Files\p.exe`, "ignored", `C:\Program Data\run-1\launch.ps1`)
	if got != `"C:\Program Files\p.exe" -NoProfile -NonInteractive -ExecutionPolicy Bypass -File "C:\Program Data\run-1\launch.ps1"` {
		t.Fatal(got)
	}
}

// helperTree returns a cmd script that starts the test binary twice in
// sleep mode: once in the background with start /B (a grandchild of the
// runner once cmd is gone) and once in the foreground.
func helperTree(t *testing.T, dir string) (Spec, [2]string) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	files := [2]string{filepath.Join(dir, "bg.pid"), filepath.Join(dir, "fg.pid")}
	s := cmdSpec(fmt.Sprintf(`start /B "" "%s" "%s" & "%s" "%s" & echo unreachable`, exe, files[0], exe, files[1]))
	s.Env = []string{helperEnv + "=sleep"}
	return s, files
}

func pidFrom(t *testing.T, path string) uint32 {
	t.Helper()
	var pid uint64
	natstest.CheckFor(t, 60*time.Second, 20*time.Millisecond, func() error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		pid, err = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
		return err
	})
	return uint32(pid)
}

func waitProcGone(t *testing.T, pid uint32) {
	t.Helper()
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		h, err := windows.OpenProcess(windows.SYNCHRONIZE|windows.PROCESS_QUERY_LIMITED_INFORMATION, false, pid)
		if err != nil {
			return nil // no such process
		}
		defer windows.CloseHandle(h)
		if ev, _ := windows.WaitForSingleObject(h, 0); ev == windows.WAIT_OBJECT_0 {
			return nil
		}
		return fmt.Errorf("pid %d still running", pid)
	})
}

func TestWinCancelKillsTree(t *testing.T) {
	dir := natstest.TempDir(t)
	s, files := helperTree(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Result, 1)
	go func() { done <- Run(ctx, s) }()
	bg, fg := pidFrom(t, files[0]), pidFrom(t, files[1])
	cancel()
	var r Result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if !r.Killed || r.TimedOut || r.ExitCode != wire.ExitKilled || r.Err != nil {
		t.Fatalf("%+v", r)
	}
	waitProcGone(t, bg)
	waitProcGone(t, fg)
}

func TestWinTimeoutKillsTree(t *testing.T) {
	dir := natstest.TempDir(t)
	s, files := helperTree(t, dir)
	// Long enough for two Go binaries to start under Wine on a loaded machine.
	s.Timeout = 15 * time.Second
	r := Run(context.Background(), s)
	if !r.TimedOut || r.Killed || r.ExitCode != wire.ExitKilled || r.Err != nil {
		t.Fatalf("%+v", r)
	}
	if strings.Contains(string(r.Stdout), "unreachable") {
		t.Fatal("script went on")
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("helper did not start within the timeout: %v", err)
		}
		waitProcGone(t, pidFrom(t, f))
	}
}

func TestWinBackgroundChildDoesNotHang(t *testing.T) {
	dir := natstest.TempDir(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(dir, "bg.pid")
	// The background helper inherits stdout and outlives cmd; the job's
	// termination after cmd exits must end it and so the run. cmd waits for
	// the pid file so that the helper surely started.
	s := cmdSpec(fmt.Sprintf(`start /B "" "%s" "%s" & (for /L %%i in (1,1,600) do @if not exist "%s" ping -n 2 127.0.0.1 >nul) & echo hi`, exe, pidFile, pidFile))
	s.Env = []string{helperEnv + "=sleep"}
	start := time.Now()
	r := Run(context.Background(), s)
	elapsed := time.Since(start)
	if r.Err != nil || r.ExitCode != 0 || string(r.Stdout) != "hi\r\n" {
		t.Fatalf("%+v stdout %q", r, r.Stdout)
	}
	t.Logf("returned after %v", elapsed)
	waitProcGone(t, pidFrom(t, pidFile))
}

func TestWinOutputCap(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const n = 64 << 20
	s := cmdSpec(fmt.Sprintf(`"%s" %d`, exe, n))
	s.Env = []string{helperEnv + "=spew"}
	s.MaxOutput = 1000
	start := time.Now()
	r := Run(context.Background(), s)
	t.Logf("2 x 64 MiB in %v", time.Since(start))
	if r.Err != nil || r.ExitCode != 0 {
		t.Fatalf("exit %d err %v stderr %q", r.ExitCode, r.Err, r.Stderr)
	}
	if r.StdoutBytes != n || r.StderrBytes != n || !r.StdoutTruncated || !r.StderrTruncated ||
		string(r.Stdout) != strings.Repeat("o", 1000) || string(r.Stderr) != strings.Repeat("e", 1000) {
		t.Fatalf("bytes %d/%d truncated %v/%v kept %d/%d", r.StdoutBytes, r.StderrBytes, r.StdoutTruncated, r.StderrTruncated, len(r.Stdout), len(r.Stderr))
	}
}

func TestWinCmdLoopOutputCap(t *testing.T) {
	s := cmdSpec("for /L %i in (1,1,3000) do @echo 0123456789")
	s.MaxOutput = 100
	r := Run(context.Background(), s)
	if r.Err != nil || r.ExitCode != 0 || r.StdoutBytes != 3000*12 || !r.StdoutTruncated || string(r.Stdout[:12]) != "0123456789\r\n" || len(r.Stdout) != 100 {
		t.Fatalf("%+v", r)
	}
}

func TestWinPowerShell(t *testing.T) {
	for _, shell := range []string{wire.ShellPowerShell, wire.ShellPwsh} {
		t.Run(shell, func(t *testing.T) {
			if err := Supported(shell, ""); err != nil {
				if shell == wire.ShellPowerShell && !underWine() {
					t.Fatalf("Windows PowerShell must exist on Windows: %v", err)
				}
				if !errors.Is(err, ErrUnsupported) {
					t.Fatal(err)
				}
				t.Skipf("%s not installed: %v", shell, err)
			}
			dir := natstest.TempDir(t)
			s := Spec{Shell: shell, Script: "Write-Output 'h\u00e9llo'; exit 4", Timeout: 2 * time.Minute, StageDir: dir}
			r := Run(context.Background(), s)
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("staged file left: %v", left)
			}
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			if underWine() {
				// Wine's powershell.exe is a stub that prints nothing and
				// ignores its script: only the staging and the launch are
				// checked here. The UTF-8 output and the exit code passed on
				// by the launcher are checked on a real Windows (below) and
				// by TestRunPwsh wherever pwsh is installed.
				t.Logf("under Wine: exit %d stdout %q (output not checked)", r.ExitCode, r.Stdout)
				return
			}
			// Without the BOM, Windows PowerShell would read the script as
			// ANSI and print mojibake.
			if r.ExitCode != 4 || strings.TrimSpace(string(r.Stdout)) != "h\u00e9llo" {
				t.Fatalf("exit %d stdout %q stderr %q", r.ExitCode, r.Stdout, r.Stderr)
			}
		})
	}
}

func TestWinUnsupported(t *testing.T) {
	for _, tc := range []struct{ shell, runAs string }{
		{wire.ShellSh, ""}, {"bash", ""}, {wire.ShellCmd, "admin"},
	} {
		r := Run(context.Background(), Spec{Shell: tc.shell, RunAs: tc.runAs, Script: "echo", Timeout: time.Second})
		if !errors.Is(r.Err, ErrUnsupported) || r.ExitCode != wire.ExitUnsupported {
			t.Errorf("%+v: %+v", tc, r)
		}
	}
	for _, runAs := range []string{"", wire.RunAsSystem, wire.RunAsUser, wire.RunAsSystemGUI} {
		if err := Supported(wire.ShellCmd, runAs); err != nil {
			t.Errorf("cmd as %q: %v", runAs, err)
		}
	}
}

func TestWinSpawnFailure(t *testing.T) {
	s := cmdSpec("echo hi")
	s.Cwd = filepath.Join(natstest.TempDir(t), "missing")
	r := Run(context.Background(), s)
	if !errors.Is(r.Err, ErrSpawn) || r.ExitCode != wire.ExitKilled {
		t.Fatalf("%+v", r)
	}
}

// TestWinRunAs runs cmd as the console user and as SYSTEM on the console
// desktop. Both need the test to run as LocalSystem with a user logged on
// to the console; otherwise they must fail cleanly with ErrNoSession or
// ErrSpawn, which is what this test accepts (and logs) there.
func TestWinRunAs(t *testing.T) {
	for _, runAs := range []string{wire.RunAsUser, wire.RunAsSystemGUI} {
		t.Run(runAs, func(t *testing.T) {
			s := cmdSpec("echo hi& whoami")
			s.RunAs = runAs
			r := Run(context.Background(), s)
			switch {
			case r.Err == nil:
				if r.ExitCode != 0 || !strings.HasPrefix(string(r.Stdout), "hi\r\n") {
					t.Fatalf("%+v stdout %q", r, r.Stdout)
				}
				t.Logf("ran: %q", r.Stdout)
			case errors.Is(r.Err, ErrNoSession) || errors.Is(r.Err, ErrSpawn):
				if r.ExitCode != wire.ExitKilled {
					t.Fatalf("%+v", r)
				}
				t.Logf("not run here (needs LocalSystem and a console user): %v", r.Err)
			default:
				t.Fatalf("%+v", r)
			}
		})
	}
}
