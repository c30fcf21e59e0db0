package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/wire"
)

// hostEnv, when set in the environment, makes the program (or the test
// binary) an agent host: it runs the agents its JSON hostSpec names, prints
// "READY" once all are ready and "APPLIED" once the group's members run
// the group's config scope, answers each "stats" line on stdin with one
// JSON hostStats line (and "cpu" and "cpustop" with "{}"), and stops its agents when
// stdin closes.
//
// Agents run in hosts of at most Config.PerProcess agents because each
// keeps about twelve files and sockets open (ledger, four outboxes, the
// connection) and a process may have only so many.
const hostEnv = "KANADE_FLEETSIM_AGENTS"

// hostSpec is what one agent host runs.
type hostSpec struct {
	// First and Count select the agents pcID(First) .. pcID(First+Count-1).
	First, Count int
	// Dir holds the agents' data dirs.
	Dir string
	// Servers are the NATS URLs.
	Servers []string
	// Heartbeat is the agents' heartbeat interval.
	Heartbeat time.Duration
	// GroupEvery and Display: agents whose index is a multiple of
	// GroupEvery must come to run the config display name Display.
	GroupEvery int
	Display    string
	// Profiles, when set, is a directory where the host writes its heap
	// and goroutine profiles (host-<First>.heap, .goroutine) at each
	// stats, and a CPU profile (.cpu) from a "cpu" line to the next
	// "cpustop" or stats.
	Profiles string
}

// hostStats is an agent host's memory, before its agents started (RSS0,
// Heap0) and now, and what its agents logged at Warn or above.
type hostStats struct {
	RSS0, RSS, Heap0, Heap uint64
	// Stack0 and Stack are the goroutine stacks in use, Goroutines0 and
	// Goroutines the number of goroutines, before and now.
	Stack0, Stack           uint64
	Goroutines0, Goroutines int
	// Threads is the number of OS threads now.
	Threads int
	// RSSFreed is the resident set once the runtime returned its free
	// pages to the system (debug.FreeOSMemory), read after RSS.
	RSSFreed uint64
	Logged   map[string]int
	Failed   int
}

func runHost(specJSON string) error {
	var h hostSpec
	if err := json.Unmarshal([]byte(specJSON), &h); err != nil {
		return err
	}
	if _, err := raiseFileLimit(); err != nil {
		fmt.Fprintln(os.Stderr, "fleet-sim host: cannot raise the open file limit:", err)
	}
	runtime.GC()
	st := hostStats{RSS0: procRSS(os.Getpid()), Goroutines0: runtime.NumGoroutine()}
	st.Heap0, st.Stack0 = heapInuse()
	quiet := &countingHandler{max: 5, w: os.Stderr}
	logger := slog.New(quiet)
	defaults := wire.DefaultConfig(1)
	defaults.HeartbeatInterval = h.Heartbeat
	agents := make([]*agent.Agent, h.Count)
	for i := range agents {
		id := pcID(h.First + i)
		a, err := agent.New(agent.Options{
			PcID: id, DataDir: filepath.Join(h.Dir, id), Servers: h.Servers,
			Logger: logger, DisableInventory: true, Defaults: &defaults, Version: "fleet-sim",
		})
		if err != nil {
			return err
		}
		agents[i] = a
	}
	ctx, stop := context.WithCancel(context.Background())
	var runs sync.WaitGroup
	var mu sync.Mutex
	for _, a := range agents {
		runs.Add(1)
		go func() {
			defer runs.Done()
			if err := a.Run(ctx); err != nil {
				mu.Lock()
				st.Failed++
				mu.Unlock()
				fmt.Fprintf(os.Stderr, "fleet-sim host: agent %s: %v\n", a.PcID(), err)
			}
		}()
	}
	go func() {
		for _, a := range agents {
			<-a.Ready()
		}
		fmt.Println("READY")
		for i, a := range agents {
			if (h.First+i)%h.GroupEvery != 0 {
				continue
			}
			for a.Config().ClientDisplayName != h.Display {
				time.Sleep(20 * time.Millisecond) // polling an agent's state, no event to wait on
			}
		}
		fmt.Println("APPLIED")
	}()
	in := bufio.NewScanner(os.Stdin)
	var cpu *os.File
	stopCPU := func() {
		if cpu != nil {
			pprof.StopCPUProfile()
			cpu.Close()
			cpu = nil
		}
	}
	for in.Scan() {
		switch in.Text() {
		case "cpu":
			// The CPU profile runs from here to the next stats.
			if h.Profiles != "" && cpu == nil {
				var err error
				if cpu, err = os.Create(filepath.Join(h.Profiles, fmt.Sprintf("host-%05d.cpu", h.First))); err == nil {
					_ = pprof.StartCPUProfile(cpu)
				}
			}
			fmt.Println("{}")
			continue
		case "cpustop":
			stopCPU()
			fmt.Println("{}")
			continue
		case "stats":
		default:
			continue
		}
		stopCPU()
		runtime.GC()
		mu.Lock()
		st.RSS, st.Goroutines = procRSS(os.Getpid()), runtime.NumGoroutine()
		st.Heap, st.Stack = heapInuse()
		st.Threads = int(procStatus(os.Getpid(), "Threads:"))
		debug.FreeOSMemory()
		st.RSSFreed = procRSS(os.Getpid())
		st.Logged = quiet.counts()
		if h.Profiles != "" {
			writeProfiles(filepath.Join(h.Profiles, fmt.Sprintf("host-%05d", h.First)))
		}
		b, _ := json.Marshal(st)
		mu.Unlock()
		fmt.Printf("%s\n", b)
	}
	stop()
	runs.Wait()
	return nil
}

// writeProfiles writes the heap and goroutine profiles to base.heap and
// base.goroutine (go tool pprof reads them).
func writeProfiles(base string) {
	for _, p := range []string{"heap", "goroutine"} {
		f, err := os.Create(base + "." + p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fleet-sim host:", err)
			return
		}
		_ = pprof.Lookup(p).WriteTo(f, 0)
		f.Close()
	}
}
