//go:build windows

package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/windows"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/wire"
)

// TestWinStagedFileLocked: while a staged script runs, nobody can open it
// for writing, delete it or rename it (sharing violation), so it cannot be
// swapped; afterwards its folder is gone.
func TestWinStagedFileLocked(t *testing.T) {
	base := natstest.TempDir(t)
	stage := filepath.Join(base, "staging")
	started, goFile := filepath.Join(base, "started"), filepath.Join(base, "go")
	s := cmdSpec(fmt.Sprintf("echo x> \"%s\"\n:wait\nif exist \"%s\" goto done\nping -n 2 127.0.0.1 >nul\ngoto wait\n:done\necho finished", started, goFile))
	s.StageDir = stage
	s.Timeout = 2 * time.Minute
	done := make(chan Result, 1)
	go func() { done <- Run(context.Background(), s) }()
	natstest.CheckFor(t, time.Minute, 20*time.Millisecond, func() error {
		_, err := os.Stat(started)
		return err
	})
	runs, _ := filepath.Glob(filepath.Join(stage, "run-*"))
	if len(runs) != 1 {
		t.Fatalf("run folders %v", runs)
	}
	if underWine() {
		t.Log("run folder DACL not checked: Wine keeps no security descriptor (GetSecurityInfo answers from the Unix mode)")
	} else {
		sd, err := windows.GetNamedSecurityInfo(runs[0], windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := windows.GetCurrentProcessToken().GetTokenUser()
		want := "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;" + u.User.Sid.String() + ")"
		if u.User.Sid.IsWellKnown(windows.WinLocalSystemSid) {
			want = "D:P(A;OICI;FA;;;SY)"
		}
		// Compare the flags (P: protected; AI may be added) and the entries.
		got := sd.String()
		gotFlags, gotACEs, _ := strings.Cut(strings.TrimPrefix(got, "D:"), "(")
		_, wantACEs, _ := strings.Cut(want, "(")
		if !strings.Contains(gotFlags, "P") || gotACEs != wantACEs {
			t.Errorf("run folder DACL %s, want %s", got, want)
		}
	}
	script := filepath.Join(runs[0], stagedBatch)
	if f, err := os.OpenFile(script, os.O_WRONLY, 0); !errors.Is(err, windows.ERROR_SHARING_VIOLATION) {
		if err == nil {
			f.Close()
		}
		t.Errorf("open for writing while it runs: %v, want a sharing violation", err)
	}
	if err := os.Remove(script); err == nil {
		t.Error("deleted while it runs")
	}
	if err := os.Rename(script, script+".old"); err == nil {
		t.Error("renamed while it runs")
	}
	if err := os.WriteFile(goFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.Err != nil || r.ExitCode != 0 || string(r.Stdout) != "finished\r\n" {
		t.Fatalf("%+v stdout %q stderr %q", r, r.Stdout, r.Stderr)
	}
	if left, _ := os.ReadDir(stage); len(left) != 0 {
		t.Fatalf("left: %v", left)
	}
}

// TestWinStageDirNotADirectory: staging into a path that is not a
// directory is refused before anything runs.
func TestWinStageDirNotADirectory(t *testing.T) {
	base := natstest.TempDir(t)
	stage := filepath.Join(base, "staging")
	if err := os.WriteFile(stage, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s := cmdSpec("echo a\necho b")
	s.StageDir = stage
	if r := Run(context.Background(), s); !errors.Is(r.Err, ErrStage) || len(r.Stdout) != 0 {
		t.Fatalf("%+v", r)
	}
}

// TestWinScrubsSecrets: a script does not inherit the agent's KANADE_* and
// NATS_* variables, whatever their case.
func TestWinScrubsSecrets(t *testing.T) {
	t.Setenv("KANADE_NATS_TOKEN", "s3cret-token")
	t.Setenv("Kanade_Nats_Password", "s3cret-password")
	t.Setenv("nats_url", "nats://u:s3cret@host:4222")
	t.Setenv("NATSLIKE", "kept-natslike")
	t.Setenv("RUNNER_TEST_OTHER", "kept-other")
	s := cmdSpec("set")
	s.Env = []string{"KANADE_EXPLICIT=given"}
	r := Run(context.Background(), s)
	if r.Err != nil || r.ExitCode != 0 {
		t.Fatalf("%+v", r)
	}
	out := "\r\n" + strings.ToUpper(string(r.Stdout))
	if strings.Contains(out, "S3CRET") || strings.Contains(out, "\nKANADE_NATS") || strings.Contains(out, "\nNATS_") {
		t.Fatalf("secrets reached the script:\n%s", r.Stdout)
	}
	for _, want := range []string{"\nNATSLIKE=KEPT-NATSLIKE\r", "\nRUNNER_TEST_OTHER=KEPT-OTHER\r", "\nKANADE_EXPLICIT=GIVEN\r"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, r.Stdout)
		}
	}
}

// TestWinCwdExpanded: %NAME% in cwd is expanded from the script's
// environment (the agent's, scrubbed, plus Spec.Env) and ~ is the
// account's profile directory.
func TestWinCwdExpanded(t *testing.T) {
	dir := natstest.TempDir(t)
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RUNNER_TEST_CWD", dir)
	profile, err := windows.GetCurrentProcessToken().GetUserProfileDirectory()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cwd  string
		env  []string
		want string
	}{
		{`%RUNNER_TEST_CWD%\sub`, nil, sub},
		{`%runner_test_cwd%`, nil, dir},
		{`%RUNNER_TEST_SPEC%\sub`, []string{"RUNNER_TEST_SPEC=" + dir}, sub},
		{`~`, nil, profile},
	} {
		s := cmdSpec("cd")
		s.Cwd, s.Env = tc.cwd, tc.env
		r := Run(context.Background(), s)
		if r.Err != nil || r.ExitCode != 0 || !strings.EqualFold(strings.TrimSpace(string(r.Stdout)), tc.want) {
			t.Errorf("cwd %q: %+v stdout %q, want %q", tc.cwd, r.Err, r.Stdout, tc.want)
		}
	}
	// An unknown variable stays: that directory does not exist.
	s := cmdSpec("cd")
	s.Cwd = `%RUNNER_TEST_UNSET%\x`
	if r := Run(context.Background(), s); !errors.Is(r.Err, ErrSpawn) {
		t.Errorf("unknown variable: %+v", r)
	}
}

// TestWinExpandCwdMatchesWindows: expandCwd's %NAME% rules are those of
// ExpandEnvironmentStrings (Wine's here, Windows' on Windows).
func TestWinExpandCwdMatchesWindows(t *testing.T) {
	t.Setenv("AA", "x")
	t.Setenv("Bb", "y")
	t.Setenv("EMPTY", "")
	t.Setenv("PCT", "%AA%")
	env := os.Environ()
	for _, tc := range cwdCases {
		if strings.Contains(tc.raw, "%=") {
			continue // hidden per-drive variables: not expanded by the runner
		}
		p, _ := windows.UTF16PtrFromString(tc.raw)
		buf := make([]uint16, 1024)
		n, err := windows.ExpandEnvironmentStrings(p, &buf[0], uint32(len(buf)))
		if err != nil {
			t.Fatal(err)
		}
		want := windows.UTF16ToString(buf[:n])
		if got := expandCwd(tc.raw, env, nil); got != want || got != tc.want {
			t.Errorf("%q: expandCwd %q, ExpandEnvironmentStrings %q, table %q", tc.raw, got, want, tc.want)
		}
	}
}

// TestWinGrantReadWhileLocked: for run_as user the staged files get an ACE
// for the user while the runner holds them locked (share mode read only);
// changing the DACL needs no data access, so the lock must not prevent it.
// The test's own token stands in for the user's, which needs a console
// session and LocalSystem (see TestWinRunAs).
func TestWinGrantReadWhileLocked(t *testing.T) {
	st, err := stageFor(&Spec{Shell: wire.ShellPowerShell, Script: "exit 0", StageDir: natstest.TempDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.remove()
	var tok windows.Token
	if err := windows.OpenProcessToken(windows.CurrentProcess(), windows.TOKEN_QUERY, &tok); err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	if len(st.locks) != 2 {
		t.Fatalf("%d locks, want 2", len(st.locks))
	}
	for _, f := range st.files {
		if err := grantRead(f, tok); err != nil {
			t.Fatalf("grantRead(%s) while locked: %v", f, err)
		}
	}
}
