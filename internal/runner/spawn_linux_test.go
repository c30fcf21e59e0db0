package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
)

// openFiles opens n distinct descriptors on /dev/null (raising the soft
// open file limit if it must; the test is skipped when the hard limit is
// too low) and closes them when the test ends.
func openFiles(t *testing.T, n int) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if want := uint64(n + 500); lim.Cur < want {
		old := lim
		lim.Cur = want
		if lim.Max < want {
			lim.Max = want
		}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Skipf("cannot raise the open file limit to %d: %v", want, err)
		}
		t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
	}
	files := make([]*os.File, 0, n)
	t.Cleanup(func() {
		for _, f := range files {
			f.Close()
		}
	})
	for range n {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
}

// childCPU returns the CPU time of the reaped children so far.
func childCPU(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runsCPU runs sh -c true n times and returns the children's CPU per run.
func runsCPU(t *testing.T, n int) time.Duration {
	t.Helper()
	before := childCPU(t)
	for range n {
		if r := Run(context.Background(), sh("true")); r.Err != nil || r.ExitCode != 0 {
			t.Fatalf("exit %d, err %v", r.ExitCode, r.Err)
		}
	}
	return (childCPU(t) - before) / time.Duration(n)
}

// A script's start must not cost more because the agent's process holds
// many descriptors (a process embedding a thousand agents holds about
// twelve thousand): forked from the calling thread, each child copied and
// closed them all, about 4 ms of CPU per script against 0.7 ms.
//
// Not parallel: the children's CPU is the whole process's.
func TestSpawnCostIndependentOfOpenFiles(t *testing.T) {
	const runs = 40
	runsCPU(t, 5) // warm up (and start the spawner)
	few := runsCPU(t, runs)
	openFiles(t, 12000)
	many := runsCPU(t, runs)
	t.Logf("child CPU per script: %v with few descriptors open, %v with 12,000 more", few, many)
	if many > 2*few+500*time.Microsecond {
		t.Fatalf("a script costs %v of CPU with 12,000 descriptors open, %v without", many, few)
	}
}

// The spawner's thread keeps a table of its own with only the descriptors
// it needs: none of the process's files (it would keep them open after the
// agent closed them), none of the runs' pipe ends (the output would never
// reach EOF).
func TestSpawnerTableStaysSmall(t *testing.T) {
	openFiles(t, 500)
	for range 3 {
		if r := Run(context.Background(), sh("echo hi")); r.Err != nil || string(r.Stdout) != "hi\n" {
			t.Fatalf("stdout %q, err %v", r.Stdout, r.Err)
		}
	}
	n, err := spawnerFiles()
	if err != nil {
		t.Fatal(err)
	}
	// 0, 1, 2, the socket, /dev/null, the poller's epoll and eventfd.
	if n > 8 {
		t.Fatalf("the spawner's table holds %d descriptors", n)
	}
}

// spawnerFiles returns the number of descriptors in the spawner thread's
// table.
func spawnerFiles() (int, error) {
	spawnerOnce.Do(func() { theSpawner, _ = newSpawner() })
	s := theSpawner
	if s == nil {
		return 0, errors.New("no spawner thread")
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/self/task/%d/fd", s.tid))
	return len(ents), err
}

// threads returns the number of OS threads of this process.
func threads(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads: in /proc/self/status")
	return 0
}

// A running script holds no OS thread while the runner waits for it: a
// process whose thousand agents run a script at once would otherwise grow
// a thread per script, and keep them. (The runtime gives a thread blocked
// in a system call a replacement only when other goroutines want to run:
// busy goroutines stand for the agents' other work.)
func TestRunningScriptsHoldNoThreads(t *testing.T) {
	const n = 64
	dir := t.TempDir()
	stop := make(chan struct{})
	defer close(stop)
	for range 4 {
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
					runtime.Gosched()
				}
			}
		}()
	}
	before := threads(t)
	done := make(chan Result, n)
	for i := range n {
		s := sh(`touch "$DIR/started.$I"; while [ ! -e "$DIR/go" ]; do sleep 0.05; done`)
		s.Env = []string{"DIR=" + dir, "I=" + strconv.Itoa(i)}
		go func() { done <- Run(context.Background(), s) }()
	}
	natstest.CheckFor(t, 60*time.Second, 10*time.Millisecond, func() error {
		m, err := filepath.Glob(filepath.Join(dir, "started.*"))
		if err != nil || len(m) < n {
			return fmt.Errorf("%d of %d scripts started (%v)", len(m), n, err)
		}
		return nil
	})
	during := threads(t)
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for range n {
		if r := <-done; r.Err != nil || r.ExitCode != 0 {
			t.Fatalf("exit %d, err %v", r.ExitCode, r.Err)
		}
	}
	t.Logf("%d threads before, %d with %d scripts running", before, during, n)
	if during >= before+n/2 {
		t.Fatalf("%d threads with %d scripts running, %d before", during, n, before)
	}
}
