package daemon

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/kanade/kanade-agent/internal/session"
)

// binaryVersion is linked into the test binary with -ldflags -X.
const binaryVersion = "9.8.7-bintest"

var (
	binDir    string
	buildOnce sync.Once
	binPath   string
	buildErr  error

	cliOnce     sync.Once
	cliPath     string
	cliBuildErr error
)

func TestMain(m *testing.M) {
	// The agents these tests run in process launch os.Executable() (this
	// test binary) as their session helper: be it.
	if session.IsHelper(os.Args[1:]) {
		os.Exit(Main(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
	}
	var err error
	binDir, err = os.MkdirTemp("", "kanade-agent-bin")
	if err == nil {
		// Tests run the binaries as another user too (nobody).
		err = os.Chmod(binDir, 0o755)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

// binaryEnv names a prebuilt kanade-agent for the binary tests, for
// machines without a Go toolchain (a Windows test binary run under Wine):
//
//	GOOS=windows go build -o kanade-agent.exe \
//	    -ldflags "-X github.com/kanade/kanade-agent/agent.Version=9.8.7-bintest" \
//	    ./cmd/kanade-agent
//
// It must be built with agent.Version set to binaryVersion, as shown.
const binaryEnv = "KANADE_TEST_AGENT_BINARY"

// binary builds cmd/kanade-agent once per test run, with agent.Version set
// to binaryVersion, and returns its path; or returns $KANADE_TEST_AGENT_BINARY
// when that is set. A build failure or a missing binary fails the test.
func binary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(binaryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s: %v", binaryEnv, err)
		}
		return p
	}
	buildOnce.Do(func() {
		name := "kanade-agent"
		if runtime.GOOS == "windows" {
			name += ".exe"
		}
		binPath = filepath.Join(binDir, name)
		gotool := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(gotool); err != nil {
			gotool = "go"
		}
		cmd := exec.Command(gotool, "build", "-o", binPath,
			"-ldflags", "-X github.com/kanade/kanade-agent/agent.Version="+binaryVersion,
			"github.com/kanade/kanade-agent/cmd/kanade-agent")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s(without a Go toolchain, set %s to a prebuilt binary)", err, out, binaryEnv)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// cliEnv names a prebuilt kanade CLI, as binaryEnv does the agent.
const cliEnv = "KANADE_TEST_CLI_BINARY"

// cliBinary builds cmd/kanade once per test run and returns its path, or
// returns $KANADE_TEST_CLI_BINARY when that is set.
func cliBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(cliEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s: %v", cliEnv, err)
		}
		return p
	}
	cliOnce.Do(func() {
		name := "kanade"
		if runtime.GOOS == "windows" {
			name += ".exe"
		}
		cliPath = filepath.Join(binDir, name)
		gotool := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(gotool); err != nil {
			gotool = "go"
		}
		out, err := exec.Command(gotool, "build", "-o", cliPath, "github.com/kanade/kanade-agent/cmd/kanade").CombinedOutput()
		if err != nil {
			cliBuildErr = fmt.Errorf("go build: %v\n%s(without a Go toolchain, set %s to a prebuilt binary)", err, out, cliEnv)
		}
	})
	if cliBuildErr != nil {
		t.Fatal(cliBuildErr)
	}
	return cliPath
}

// cleanEnv is the test's environment without KANADE_* variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KANADE_") {
			env = append(env, kv)
		}
	}
	return env
}

func TestBinaryVersion(t *testing.T) {
	cmd := exec.Command(binary(t), "version")
	cmd.Env = cleanEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kanade-agent version: %v\n%s", err, stderr.String())
	}
	if !strings.HasPrefix(string(out), "kanade-agent "+binaryVersion+" (") {
		t.Fatalf("kanade-agent version printed %q, want the -ldflags version %s", out, binaryVersion)
	}
}

func TestBinaryBadFlagExits2(t *testing.T) {
	cmd := exec.Command(binary(t), "--log-level", "loud")
	cmd.Env = cleanEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != ExitUsage {
		t.Fatalf("exit %v (%v), want %d; stderr %s", cmd.ProcessState, err, ExitUsage, stderr.String())
	}
	if !strings.Contains(stderr.String(), "invalid log-level") {
		t.Fatalf("stderr %q", stderr.String())
	}
}
