package update_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/kanade/kanade-agent/internal/fsutil"
	"github.com/kanade/kanade-agent/internal/update"
)

// TestHelperProcess is not a test: run as a child with
// UPDATE_TEST_HELPER=1 it prints "ready" and waits for stdin to close, so
// its executable file is a running image while the parent swaps it.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("UPDATE_TEST_HELPER") != "1" {
		return
	}
	os.Stdout.WriteString("ready\n")
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// TestSwapRunningExecutable swaps the binary of a running process: on
// Windows a running image cannot be overwritten or deleted, but it can be
// renamed, which is what the swap relies on.
func TestSwapRunningExecutable(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	e.exe = filepath.Join(e.dir, "running-agent.exe")
	if err := copyFile(self, e.exe); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(e.exe, "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "UPDATE_TEST_HELPER=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	defer func() {
		if !exited {
			_ = stdin.Close()
			_ = cmd.Wait()
		}
	}()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}

	// What the swap avoids: replacing the running image in one rename. On
	// Windows this fails (sharing violation / access denied); Unix allows it.
	probe := filepath.Join(e.dir, "probe")
	if err := os.WriteFile(probe, []byte("probe"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := fsutil.Rename(probe, e.exe); err == nil {
		t.Logf("%s: renaming over a running executable succeeded; restoring it", runtime.GOOS)
		if err := copyFile(self, e.exe); err != nil {
			t.Fatal(err)
		}
	} else {
		t.Logf("%s: renaming over a running executable fails as expected: %v", runtime.GOOS, err)
		_ = os.Remove(probe)
	}

	e.put(t, "1.2.0", newBinary, nil, "")
	u := e.updater(t, "1.0.0", nil)
	if _, err := u.Consider(context.Background(), cfg("1.2.0")); !errors.Is(err, update.ErrRestart) {
		t.Fatalf("swap of a running executable: %v", err)
	}
	wantFile(t, e.exe, newBinary)
	old, err := os.Stat(e.exe + ".old")
	if st, _ := os.Stat(self); err != nil || old.Size() != st.Size() {
		t.Fatalf(".old: %v, %v", old, err)
	}
	_ = stdin.Close()
	exited = true
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
