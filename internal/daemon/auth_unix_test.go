//go:build unix

package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/nats-io/nats.go"
)

// startDaemon runs the kanade-agent binary with args, waits until it has
// written its credentials file and answers a ping through it, and stops it
// at the end of the test.
func startDaemon(t *testing.T, dir string, args ...string) (*exec.Cmd, LocalConn) {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"--data-dir", dir}, args...)...)
	cmd.Env = cleanEnv()
	var stderr natstest.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-waited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-waited
		}
		if t.Failed() {
			t.Logf("agent output:\n%s", stderr.String())
		}
	})
	lc := readLocalConn(t, dir, 30*time.Second)
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		if !strings.Contains(stderr.String(), "agent ready") {
			return errors.New("agent not ready yet")
		}
		return nil
	})
	return cmd, lc
}

// shortDir is a temporary directory with a short path (a Unix socket path
// is limited to about 100 bytes), removed at the end of the test.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// runCLI runs the kanade binary with args as the user cred (nil: this
// process's user) and returns its exit code and output.
func runCLI(t *testing.T, cred *syscall.Credential, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(cliBinary(t), args...)
	cmd.Env = append(cleanEnv(), "HOME=/nonexistent")
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Dir = "/"
	}
	var stdout, stderr natstest.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run kanade: %v", err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// nobody returns the credentials of user nobody; the test is skipped when
// not run as root, which alone can switch users.
func nobody(t *testing.T) *syscall.Credential {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run the kanade CLI as user nobody (CI runs as root)")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
}

// TestEmbeddedListenRequiresToken: with a TCP listener, another local user
// (nobody) who cannot read the credentials file cannot run anything
// through the embedded server; root, who can, does, with --data-dir or
// with KANADE_DATA_DIR beside --nats-url.
func TestEmbeddedListenRequiresToken(t *testing.T) {
	cred := nobody(t)
	base := shortDir(t)
	dir := filepath.Join(base, "data")
	port := freePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	_, lc := startDaemon(t, dir, "--pc-id", "auth-pc", "--embedded-listen", fmt.Sprintf("127.0.0.1:%d", port))
	if lc.URL != url {
		t.Fatalf("credentials file URL %q, want %q", lc.URL, url)
	}
	if st, err := os.Stat(LocalConnPath(dir)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
	// The data directory and its parent are opened to nobody, so only
	// the file's own mode keeps the token from them.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	script := "id -u"
	code, stdout, stderr := runCLI(t, cred, "--nats-url", url, "--timeout", "10s", "exec", "--pc", "auth-pc", script)
	if code == 0 || strings.Contains(stdout, "0\n") || !strings.Contains(strings.ToLower(stderr), "authorization violation") {
		t.Fatalf("nobody with --nats-url: exit %d, stdout %q, stderr %q; want an authorization violation", code, stdout, stderr)
	}
	code, stdout, stderr = runCLI(t, cred, "--data-dir", dir, "--timeout", "10s", "exec", "--pc", "auth-pc", script)
	if code == 0 || !strings.Contains(stderr, "cannot be read") {
		t.Fatalf("nobody with --data-dir: exit %d, stdout %q, stderr %q; want the credentials refused", code, stdout, stderr)
	}
	// root without the file's token is refused as well: the port itself
	// is closed to clients without it.
	code, _, stderr = runCLI(t, nil, "--nats-url", url, "--data-dir", t.TempDir(), "--timeout", "10s", "exec", "--pc", "auth-pc", script)
	if code == 0 || !strings.Contains(strings.ToLower(stderr), "no "+LocalConnFile) && !strings.Contains(strings.ToLower(stderr), "authorization violation") {
		t.Fatalf("root without the token: exit %d, stderr %q", code, stderr)
	}

	code, stdout, stderr = runCLI(t, nil, "--data-dir", dir, "--timeout", "20s", "exec", "--pc", "auth-pc", script)
	if code != 0 || stdout != "0\n" {
		t.Fatalf("root with --data-dir: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	cmd := exec.Command(cliBinary(t), "--nats-url", url, "--timeout", "20s", "exec", "--pc", "auth-pc", script)
	cmd.Env = append(cleanEnv(), "KANADE_DATA_DIR="+dir)
	out, err := cmd.Output()
	if err != nil || string(out) != "0\n" {
		t.Fatalf("root with --nats-url and KANADE_DATA_DIR: %v, stdout %q", err, out)
	}
}

// TestEmbeddedDefaultOpensNoPort: started with defaults, the agent's
// embedded server holds no listening TCP socket (the old default address
// 127.0.0.1:4222 does not answer), and the kanade CLI run as root reaches
// it through the local socket without any flag but the data directory.
func TestEmbeddedDefaultOpensNoPort(t *testing.T) {
	const oldDefault = "127.0.0.1:4222"
	busy := false
	if c, err := net.DialTimeout("tcp", oldDefault, time.Second); err == nil {
		c.Close()
		busy = true // something else on this machine uses it
	}
	dir := filepath.Join(shortDir(t), "data")
	// A configured pc id is kept verbatim, case included.
	cmd, lc := startDaemon(t, dir, "--pc-id", "NoPort-PC")
	if lc.URL != "" || lc.Socket != LocalSocketPath(dir) {
		t.Fatalf("credentials file %+v: want no URL and the socket %s", lc, LocalSocketPath(dir))
	}
	ls, err := tcpListeners(cmd.Process.Pid)
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		t.Log("listening sockets not checked on this OS")
	case err != nil:
		t.Fatal(err)
	case len(ls) > 0:
		t.Fatalf("the agent listens on TCP %v, want no port", ls)
	}
	if busy {
		t.Logf("%s was in use before the agent started; not dialled", oldDefault)
	} else if c, err := net.DialTimeout("tcp", oldDefault, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s accepts connections with the default settings", oldDefault)
	}

	if os.Geteuid() == 0 {
		code, stdout, stderr := runCLI(t, nil, "--data-dir", dir, "--timeout", "20s", "exec", "--pc", "NoPort-PC", "echo hi")
		if code != 0 || stdout != "hi\n" {
			t.Fatalf("kanade exec through the local socket: exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		code, _, stderr = runCLI(t, nil, "--data-dir", dir, "--timeout", "2s", "ping", "noport-pc")
		if code == 0 || !(strings.Contains(stderr, "no agent answers") || strings.Contains(stderr, "no reply")) {
			t.Fatalf("ping of the lower-cased pc id: exit %d, stderr %q; want no agent", code, stderr)
		}
	}
	// An in-process look at the same server through the socket: a client
	// without the token is refused.
	nc, err := nats.Connect("nats://local", nats.SetCustomDialer(unixDialer(lc.Socket)), nats.Timeout(5*time.Second))
	if err == nil {
		nc.Close()
		t.Fatal("the local socket admits a client without the token")
	}
}

// TestEmbeddedListenAllInterfacesNeedsToken: --embedded-listen 0.0.0.0
// is served only with the token (the embedded package refuses it
// without one: TestNonLoopbackListenRefusedWithoutToken).
func TestEmbeddedListenAllInterfacesNeedsToken(t *testing.T) {
	dir := filepath.Join(shortDir(t), "data")
	port := freePort(t)
	_, lc := startDaemon(t, dir, "--pc-id", "all-pc", "--embedded-listen", fmt.Sprintf("0.0.0.0:%d", port))
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	if _, err := nats.Connect(url, nats.Timeout(5*time.Second)); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("connect without the token = %v, want an authorization violation", err)
	}
	nc, err := nats.Connect(url, nats.Token(lc.Token), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("connect with the token: %v", err)
	}
	nc.Close()
}

// unixDialer dials a Unix socket whatever the URL.
type unixDialer string

func (d unixDialer) Dial(_, _ string) (net.Conn, error) { return net.Dial("unix", string(d)) }
