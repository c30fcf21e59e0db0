//go:build unix

package ledger

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
)

const (
	crashDirEnv   = "LEDGER_CRASH_CHILD_DIR"
	crashRoundEnv = "LEDGER_CRASH_CHILD_ROUND"
)

// TestCrashChild is the child side of TestCrashKill: it finishes what it
// recovered, then marks ids launching (half of them also finished) from
// several goroutines as fast as it can, printing each id after the call
// returned, until its parent kills it. A small CompactBytes makes it compact
// often, so kills land mid-compaction too.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("child process of TestCrashKill only")
	}
	round := os.Getenv(crashRoundEnv)
	l, err := Open(dir, Options{CompactBytes: 4 << 10})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(3)
	}
	for _, e := range l.Recovered() {
		if err := l.Finished(e.RequestID); err != nil {
			fmt.Println("ERROR", err)
			os.Exit(3)
		}
		fmt.Println("FINISHED", e.RequestID)
	}
	fmt.Println("READY")
	deadline := time.Now().Add(2 * time.Minute) // if the parent is gone
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				id := fmt.Sprintf("r%s-g%d-%d", round, g, i)
				if ok, _, err := l.Claim(id); err != nil || !ok {
					fmt.Println("ERROR claim", id, ok, err)
					os.Exit(3)
				}
				if err := l.Launching(id, []byte("meta-"+id)); err != nil {
					fmt.Println("ERROR", err)
					os.Exit(3)
				}
				fmt.Println("LAUNCHED", id)
				if i%2 == 0 {
					if err := l.Finished(id); err != nil {
						fmt.Println("ERROR", err)
						os.Exit(3)
					}
					fmt.Println("FINISHED", id)
				}
			}
		}()
	}
	wg.Wait()
	os.Exit(4)
}

// TestCrashKill runs TestCrashChild in a child process, kills it with
// SIGKILL after a number of acknowledged writes, and checks on reopen that
// every id the child printed after Launching is launching or finished, every
// id printed after Finished is finished, and that launching entries carry
// their metadata. Several rounds reuse the directory, so each child also
// recovers the previous one's entries.
func TestCrashKill(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := natstest.TempDir(t)
	launched := map[string]bool{}
	finished := map[string]bool{}
	for round := 0; round < 4; round++ {
		killAfter := 150 + 250*round
		cmd := exec.Command(exe, "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashRoundEnv+"="+strconv.Itoa(round))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		acks, killed := 0, false
		for sc.Scan() {
			line := sc.Text()
			f := strings.Fields(line)
			switch {
			case len(f) == 2 && f[0] == "LAUNCHED":
				launched[f[1]] = true
				acks++
			case len(f) == 2 && f[0] == "FINISHED":
				finished[f[1]] = true
				acks++
			case len(f) > 0 && f[0] == "ERROR":
				t.Errorf("child: %s", line)
			}
			if !killed && acks >= killAfter {
				cmd.Process.Signal(syscall.SIGKILL)
				killed = true
			}
		}
		err = cmd.Wait()
		if !killed {
			t.Fatalf("round %d: child exited before the kill: %v", round, err)
		}
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child did not die of SIGKILL: %v", round, err)
		}

		l, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		rec := map[string]bool{}
		for _, e := range l.Recovered() {
			rec[e.RequestID] = true
			if string(e.Meta) != "meta-"+e.RequestID {
				t.Errorf("round %d: %s recovered with meta %q", round, e.RequestID, e.Meta)
			}
		}
		for id := range launched {
			e, ok := l.Lookup(id)
			switch {
			case !ok || (e.State != StateLaunching && e.State != StateFinished):
				t.Errorf("round %d: %s was acknowledged launching, now %v", round, id, e.State)
			case finished[id] && e.State != StateFinished:
				t.Errorf("round %d: %s was acknowledged finished, now %v", round, id, e.State)
			case e.State == StateLaunching && !rec[id]:
				t.Errorf("round %d: %s launching but not in Recovered", round, id)
			}
		}
		if c := l.CorruptFiles(); len(c) != 0 {
			t.Errorf("round %d: a crash produced corrupt files %v", round, c)
		}
		t.Logf("round %d: %d acknowledged ids so far, %d recovered launching, %d entries",
			round, len(launched), len(rec), len(l.entries))
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
