package agent_test

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/natstest"
	"golang.org/x/sys/unix"
)

// netnsChildEnv marks a child test process running in its own network
// namespace.
const netnsChildEnv = "AGENT_TEST_IN_NETNS"

// inNetns re-runs the test in a child process in a new network namespace
// (CLONE_NEWNET, root only), so the network changes it makes touch nothing
// outside; it returns true in the child and false in the parent, which
// then only reports the child's outcome. The namespace's lo is brought up
// before the test goes on (the embedded server listens on 127.0.0.1).
func inNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(netnsChildEnv) != "" {
		loUp(t)
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace (CLONE_NEWNET)")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), netnsChildEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child in a new network namespace: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("child did not pass the test:\n%s", out)
	}
	return false
}

func ifreqDo(t *testing.T, name string, fn func(fd int, r *unix.Ifreq) error) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	r, err := unix.NewIfreq(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := fn(fd, r); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func loUp(t *testing.T) {
	t.Helper()
	ifreqDo(t, "lo", func(fd int, r *unix.Ifreq) error {
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, r); err != nil {
			return err
		}
		r.SetUint16(r.Uint16() | unix.IFF_UP)
		return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, r)
	})
}

// A schedule `when: {on: [network_change]}` runs its job after a real
// network change (an address added to lo), seen by the agent's own
// watcher.
func TestScheduleNetworkChange(t *testing.T) {
	if !inNetns(t) {
		return
	}
	e := newEnv(t)
	e.schedBuckets()
	e.putJob("netjob", noopScript)
	e.putSchedule("on-net", "netjob", `{"on":["network_change"]}`, "")
	logs := &natstest.Buffer{}
	dir := natstest.TempDir(t)
	e.start("pc-net", dir, func(o *agent.Options) {
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	waitCatalog(t, dir, "on-net")
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if !strings.Contains(logs.String(), "network watch started") {
			return fmt.Errorf("network watch not started yet")
		}
		return nil
	})
	if n := e.countResultsFor("netjob"); n != 0 {
		t.Fatalf("%d runs before any network change", n)
	}

	// Add 10.77.0.1 to lo (as the alias lo:7).
	ifreqDo(t, "lo:7", func(fd int, r *unix.Ifreq) error {
		if err := r.SetInet4Addr([]byte{10, 77, 0, 1}); err != nil {
			return err
		}
		return unix.IoctlIfreq(fd, unix.SIOCSIFADDR, r)
	})
	// The scheduler fires once the network was quiet for 8 s.
	e.waitResultsFor("netjob", 1, 40*time.Second)
	if !strings.Contains(logs.String(), "10.77.0.1/") {
		t.Errorf("the change is not in the agent's debug log:\n%s", logs.String())
	}
}
