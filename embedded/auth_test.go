package embedded_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/embedded"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestDefaultHasNoListener: by default the server opens no TCP port, and
// an in-process connection reaches the provisioned streams.
func TestDefaultHasNoListener(t *testing.T) {
	srv := start(t, embedded.Options{Listen: noListen})
	if srv.Listening() || srv.ClientURL() != "" || srv.NATSServer().Addr() != nil {
		t.Fatalf("Listening %v, ClientURL %q, Addr %v: want no TCP listener", srv.Listening(), srv.ClientURL(), srv.NATSServer().Addr())
	}
	nc, err := srv.Connect()
	if err != nil {
		t.Fatalf("in-process Connect: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	checkProvisioned(t, js)
}

// TestTokenRequired: with a token, TCP clients without it are refused, with
// it they get in (TestServeLocal shows in-process connections need it too).
func TestTokenRequired(t *testing.T) {
	srv := start(t, embedded.Options{Token: "s3cret"})
	if _, err := nats.Connect(srv.ClientURL(), nats.Timeout(5*time.Second)); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("TCP connect without the token = %v, want an authorization violation", err)
	}
	if _, err := nats.Connect(srv.ClientURL(), nats.Token("wrong"), nats.Timeout(5*time.Second)); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("TCP connect with a wrong token = %v, want an authorization violation", err)
	}
	checkProvisioned(t, connect(t, srv.ClientURL(), nats.Token("s3cret")))
	nc, err := srv.Connect()
	if err != nil {
		t.Fatalf("Server.Connect: %v", err)
	}
	nc.Close()
}

func TestNonLoopbackListenRefusedWithoutToken(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		_, err := embedded.Start(context.Background(), embedded.Options{StoreDir: natstest.TempDir(t), Listen: listen})
		if !errors.Is(err, embedded.ErrInsecureListen) {
			t.Errorf("Listen %q without a token: Start = %v, want ErrInsecureListen", listen, err)
		}
	}
	for _, host := range []string{"127.0.0.1", "127.8.9.1", "::1", "localhost", "LOCALHOST"} {
		if !embedded.IsLoopback(host) {
			t.Errorf("IsLoopback(%q) = false", host)
		}
	}
	for _, host := range []string{"", "0.0.0.0", "::", "10.0.0.1", "example.com", "localhost.example.com"} {
		if embedded.IsLoopback(host) {
			t.Errorf("IsLoopback(%q) = true", host)
		}
	}
}

// unixDialer dials the local socket whatever the URL says.
type unixDialer struct{ path string }

func (d unixDialer) Dial(_, _ string) (net.Conn, error) { return net.Dial("unix", d.path) }

// shortTempDir is a temporary directory with a short path: a Unix socket
// path is limited to about 100 bytes.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ke")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestServeLocal(t *testing.T) {
	dir := shortTempDir(t)
	sock := filepath.Join(dir, "nats.sock")
	// A stale socket from a crash is replaced.
	stale, err := net.Listen("unix", sock)
	if err != nil {
		if runtime.GOOS == "windows" {
			t.Skipf("no Unix domain sockets here: %v", err)
		}
		t.Fatal(err)
	}
	if ul, ok := stale.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false)
	}
	stale.Close()

	srv := start(t, embedded.Options{Listen: noListen, Token: "s3cret"})
	if err := srv.ServeLocal(sock); err != nil {
		t.Fatalf("ServeLocal: %v", err)
	}
	if runtime.GOOS != "windows" {
		st, err := os.Stat(sock)
		if err != nil {
			t.Fatal(err)
		}
		if m := st.Mode().Perm(); m != 0o600 {
			t.Errorf("socket mode %v, want 0600", m)
		}
	}
	d := nats.SetCustomDialer(unixDialer{sock})
	if _, err := nats.Connect("nats://local", d, nats.Timeout(5*time.Second)); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("local connect without the token = %v, want an authorization violation", err)
	}
	nc, err := nats.Connect("nats://local", d, nats.Token("s3cret"), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("local connect with the token: %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	checkProvisioned(t, js)

	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if !nc.IsClosed() && nc.IsConnected() {
			return errors.New("the local client is still connected after Close")
		}
		return nil
	})
	nc.Close()
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after Close: %v, want it removed", err)
	}
	if err := srv.ServeLocal(sock); !errors.Is(err, embedded.ErrClosed) {
		t.Errorf("ServeLocal after Close = %v, want ErrClosed", err)
	}
}

func TestServeLocalRefusesAFile(t *testing.T) {
	dir := shortTempDir(t)
	path := filepath.Join(dir, "nats.sock")
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := start(t, embedded.Options{Listen: noListen})
	err := srv.ServeLocal(path)
	if !errors.Is(err, embedded.ErrLocalPath) {
		t.Fatalf("ServeLocal over a file = %v, want ErrLocalPath", err)
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), "precious") {
		t.Fatalf("the file was touched: %q", b)
	}
}
