package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/kanade/kanade-agent/provision"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
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
//
// The server is a nats-server with JetStream on a free loopback port,
// provisioned with the protocol's streams, buckets and object stores
// (provision.Ensure, as the daemon's embedded server), configured as a
// fleet's server must be: every agent holds a durable consumer on the EXEC
// stream, and nats-server limits a stream to 1,000 consumers unless told
// otherwise (jetstream { limits { default_max_consumers: -1 } } in a
// server config), so the limit is lifted.
func serveChild(dir string) error {
	ctx := context.Background()
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true,
		JetStreamLimits: server.JSLimitOpts{DefaultMaxConsumers: -1},
	})
	if err != nil {
		return err
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		return fmt.Errorf("server not ready")
	}
	defer func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}()
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = provision.Ensure(pctx, js)
	cancel()
	if err != nil {
		return err
	}
	fmt.Printf("URL %s\n", ns.ClientURL())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() != "stats" {
			continue
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
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

// child is a running child process of the simulator (a server or an
// agent host): it answers lines on its stdin with lines on its stdout.
type child struct {
	cmd *exec.Cmd
	in  *os.File
	out *bufio.Scanner
	url string
}

// startChild starts this binary as a server child storing in dir.
func startChild(dir string) (*child, error) {
	c, err := spawn(serveEnv + "=" + dir)
	if err != nil {
		return nil, err
	}
	line, err := c.line()
	if u, ok := strings.CutPrefix(line, "URL "); err == nil && ok {
		c.url = u
		return c, nil
	}
	c.close()
	return nil, fmt.Errorf("server child: %q, %v", line, err)
}

// spawn starts this binary with env added to its environment.
func spawn(env string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-test.run=^$") // ignored by the program, needed by a test binary
	cmd.Env = append(os.Environ(), env)
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
	c.out.Buffer(make([]byte, 64<<10), 16<<20)
	return c, nil
}

// line reads the child's next line.
func (c *child) line() (string, error) {
	if !c.out.Scan() {
		if err := c.out.Err(); err != nil {
			return "", err
		}
		return "", fmt.Errorf("child exited")
	}
	return c.out.Text(), nil
}

// ask sends a request line and decodes the JSON answer line into v.
func (c *child) ask(req string, v any) error {
	if _, err := c.in.WriteString(req + "\n"); err != nil {
		return err
	}
	line, err := c.line()
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(line), v)
}

// stats asks a server child for its figures.
func (c *child) stats() (ServerStats, error) {
	var st ServerStats
	err := c.ask("stats", &st)
	return st, err
}

// close closes the child's stdin, which stops it, and waits for it.
func (c *child) close() {
	c.in.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// procRSS returns the resident set of process pid from /proc, 0 when
// unknown (not Linux).
func procRSS(pid int) uint64 { return procStatus(pid, "VmRSS:") << 10 }

// procStatus returns the number of field (with its colon) of
// /proc/<pid>/status, 0 when unknown (not Linux).
func procStatus(pid int, field string) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseUint(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}
