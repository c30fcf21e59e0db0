package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/kanade/kanade-agent/embedded"
	"github.com/nats-io/nats.go/jetstream"
)

// serveEnv, when set in the environment, makes the program (or the test
// binary) a server child: it runs an embedded, provisioned JetStream server
// storing in the directory it names, prints "URL <client url>" and then
// answers each "stats" line on stdin with one JSON ServerStats line, until
// stdin closes.
const serveEnv = "KANADE_FLEETSIM_SERVE"

// ServerStats is what the server child reports about itself.
type ServerStats struct {
	// RSS is the child process's resident set (VmRSS), bytes; 0 when unknown.
	RSS uint64 `json:"rss"`
	// HeapInuse is the Go heap in use after a GC, bytes.
	HeapInuse uint64 `json:"heap_inuse"`
	// Goroutines is the number of goroutines.
	Goroutines int `json:"goroutines"`
	// Subscriptions is the server's subscription count (core and internal).
	Subscriptions uint32 `json:"subscriptions"`
	// Clients is the number of client connections.
	Clients int `json:"clients"`
	// Consumers is the number of JetStream consumers on every stream.
	Consumers int `json:"consumers"`
}

// serveChild runs the server child's loop; it returns when stdin closes.
func serveChild(dir string) error {
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	srv, err := embedded.Start(ctx, embedded.Options{StoreDir: dir, Listen: "127.0.0.1:0", Logger: logger})
	if err != nil {
		return err
	}
	defer srv.Close()
	nc, err := srv.Connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	fmt.Printf("URL %s\n", srv.ClientURL())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() != "stats" {
			continue
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		ns := srv.NATSServer()
		st := ServerStats{RSS: procRSS(os.Getpid()), HeapInuse: ms.HeapInuse, Goroutines: runtime.NumGoroutine(),
			Subscriptions: ns.NumSubscriptions(), Clients: ns.NumClients()}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if ai, err := js.AccountInfo(cctx); err == nil {
			st.Consumers = ai.Consumers
		}
		cancel()
		b, _ := json.Marshal(st)
		fmt.Printf("%s\n", b)
	}
	return in.Err()
}

// child is a running server child.
type child struct {
	cmd *exec.Cmd
	in  *os.File
	out *bufio.Scanner
	url string
}

// startChild starts this binary as a server child storing in dir.
func startChild(dir string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-test.run=^$") // the flag is ignored by the program, needed by a test binary
	cmd.Env = append(os.Environ(), serveEnv+"="+dir)
	cmd.Stderr = os.Stderr
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdin = pr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	pr.Close()
	c := &child{cmd: cmd, in: pw, out: bufio.NewScanner(stdout)}
	c.out.Buffer(make([]byte, 64<<10), 1<<20)
	for c.out.Scan() {
		if u, ok := strings.CutPrefix(c.out.Text(), "URL "); ok {
			c.url = u
			return c, nil
		}
	}
	c.close()
	return nil, fmt.Errorf("server child exited before printing its URL")
}

// stats asks the child for its figures.
func (c *child) stats() (ServerStats, error) {
	var st ServerStats
	if _, err := c.in.WriteString("stats\n"); err != nil {
		return st, err
	}
	if !c.out.Scan() {
		return st, fmt.Errorf("server child: no stats: %v", c.out.Err())
	}
	return st, json.Unmarshal(c.out.Bytes(), &st)
}

func (c *child) close() {
	c.in.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// procRSS returns the resident set of process pid from /proc, 0 when
// unknown (not Linux).
func procRSS(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseUint(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}
