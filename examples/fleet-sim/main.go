// Command fleet-sim runs a fleet of kanade agents of this library in one
// process against one JetStream server (or cluster) and measures what
// issue #10 asks of a fleet:
//
//   - ready: the time from starting N agents (each with its own data dir
//     under a temporary directory, inventory off) to the last one's Ready;
//   - agent memory per agent: the agents run in child processes of at most
//     -per-process agents each (every agent keeps about twelve files and
//     sockets open, a process only so many); their resident sets (VmRSS)
//     and Go heaps in use after a GC, at the end of the window, minus what
//     they held before their agents started, divided by N;
//   - server memory: unless -servers is given the server is this same
//     binary started as a child process (a nats-server provisioned as the
//     daemon provisions its embedded one, with nats-server's limit of
//     1,000 consumers per stream lifted: see server.go), so its resident
//     set is measured alone, exactly: with no agent connected, then at the
//     end of the window; the difference divided by N is the server's cost
//     per agent. The child also reports its JetStream consumers and
//     subscriptions. Against -servers only the consumer count is read;
//   - heartbeats received against expected over -window (heartbeat
//     interval -hb), counted per agent once the fan-outs are answered, and
//     apart while the fan-outs run;
//   - fan-out: the arrival of the results of one command on commands.all,
//     then of one on commands.group.<g> (every -group-every-th agent is
//     put in the group through the agent_groups bucket, and the group's
//     agent_config scope sets a display name, so the simulator knows when
//     the members applied it), p50/p99/max from the publish. The fan-outs
//     start once the fleet settled (the server and the hosts under half a
//     core over a second), and the CPU time the server, the hosts (and
//     their scripts) and the simulator used during the commands.all one is
//     printed with how busy the machine was, so a slow fan-out can be told
//     from a busy machine.
//
// Run it with: go run ./examples/fleet-sim (100 agents, 30 s window), or
// go run ./examples/fleet-sim -full (2,000 agents, 5 minutes). Memory
// figures need Linux (/proc); elsewhere they print as 0.
//
// Against a cluster: -servers nats://a:4222,nats://b:4222,nats://c:4222.
// It must be provisioned already (streams, buckets, object stores), and
// its EXEC stream must take a consumer per agent: nats-server limits a
// stream to 1,000 consumers unless the server config says
// jetstream { limits { default_max_consumers: -1 } } or EXEC was created
// with a max_consumers of at least the fleet size (-1 on the stream does
// not lift the server's default). The simulator writes agent_groups keys
// sim-00000 ... and the agent_config key groups.fleet-sim.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"
)

func main() {
	if spec := os.Getenv(hostEnv); spec != "" {
		if err := runHost(spec); err != nil {
			fmt.Fprintln(os.Stderr, "fleet-sim host:", err)
			os.Exit(1)
		}
		return
	}
	if dir := os.Getenv(serveEnv); dir != "" {
		if err := serveChild(dir); err != nil {
			fmt.Fprintln(os.Stderr, "fleet-sim server:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fleet-sim:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("fleet-sim", flag.ContinueOnError)
	n := fs.Int("n", 100, "number of agents")
	servers := fs.String("servers", "", "comma-separated NATS URLs of a provisioned server or cluster (default: start one)")
	window := fs.Duration("window", 30*time.Second, "heartbeat counting window, from the moment every agent is ready")
	hb := fs.Duration("hb", 5*time.Second, "heartbeat interval (at least 5s)")
	every := fs.Int("group-every", 2, "every n-th agent is in the group of the group fan-out")
	perProc := fs.Int("per-process", 1000, "most agents run by one agent host process (each agent keeps about 12 files open)")
	profiles := fs.String("profiles", "", "directory where each agent host writes heap and goroutine profiles at the end")
	full := fs.Bool("full", false, "the issue's full run: -n 2000 -window 5m (explicit -n and -window win)")
	_ = fs.Bool("test.run", false, "ignored (lets the server child be a test binary too)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *full {
		if !set["n"] {
			*n = 2000
		}
		if !set["window"] {
			*window = 5 * time.Minute
		}
	}
	c := Config{N: *n, Window: *window, Heartbeat: *hb, GroupEvery: *every, PerProcess: *perProc, Profiles: *profiles, Log: out}
	if *servers != "" {
		c.Servers = strings.Split(*servers, ",")
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	rep, err := Run(ctx, c)
	if rep.AgentsReady() {
		printReport(out, c, rep)
	}
	return err
}

func printReport(w io.Writer, c Config, r Report) {
	kib := func(b uint64) string { return fmt.Sprintf("%.0f KiB", float64(b)/1024) }
	mib := func(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	fmt.Fprintf(w, "\n== fleet-sim: %d agents ==\n", r.N)
	fmt.Fprintf(w, "ready:            %s (all %d)\n", r.Ready.Round(time.Millisecond), r.N)
	fmt.Fprintf(w, "agent side:       %s RSS (%s once free pages are returned), %s Go heap, %s stacks per agent; %.1f goroutines per agent, %d OS threads in all\n",
		kib(r.AgentRSS), kib(r.AgentRSSFreed), kib(r.AgentHeap), kib(r.AgentStack), r.Goroutines, r.Threads)
	if r.Server0.RSS > 0 {
		per := uint64(0)
		if r.Server1.RSS > r.Server0.RSS {
			per = (r.Server1.RSS - r.Server0.RSS) / uint64(r.N)
		}
		fmt.Fprintf(w, "server:           %s RSS (%s alone), %s per agent; Go heap %s; %d goroutines\n",
			mib(r.Server1.RSS), mib(r.Server0.RSS), kib(per), mib(r.Server1.HeapInuse), r.Server1.Goroutines)
		fmt.Fprintf(w, "server objects:   %d consumers (%.2f per agent), %d subscriptions (%.1f per agent), %d clients\n",
			r.Server1.Consumers, perAgent(r.Server1.Consumers-r.Server0.Consumers, r.N),
			r.Server1.Subscriptions, perAgent(int(r.Server1.Subscriptions)-int(r.Server0.Subscriptions), r.N), r.Server1.Clients)
	} else {
		fmt.Fprintf(w, "server:           external; %d consumers (%.2f per agent)\n",
			r.Server1.Consumers, perAgent(r.Server1.Consumers-r.Server0.Consumers, r.N))
	}
	for _, h := range []struct {
		name string
		h    Heartbeats
	}{{"heartbeats:", r.Window}, {"  in fan-outs:", r.Fanout}} {
		fmt.Fprintf(w, "%-17s %d received, %d expected (%s, every %s), %d lost, longest gap %s\n", h.name,
			h.h.Got, h.h.Expected, h.h.Period.Round(time.Millisecond), c.Heartbeat, h.h.Lost, h.h.MaxGap.Round(time.Millisecond))
	}
	for _, f := range []struct {
		name string
		l    Latency
	}{{"commands.all", r.All}, {"commands.group", r.Group}} {
		fmt.Fprintf(w, "%-17s %d/%d answered; p50 %s, p99 %s, max %s\n", f.name+":", f.l.Answered, f.l.Targets,
			f.l.P50.Round(time.Millisecond), f.l.P99.Round(time.Millisecond), f.l.Max.Round(time.Millisecond))
	}
	if u := r.AllCPU; u.Period > 0 && u.Cores > 0 {
		pct := func(d time.Duration) string {
			return fmt.Sprintf("%.0f%%", 100*d.Seconds()/u.Period.Seconds())
		}
		per := func(d time.Duration) string {
			return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)/float64(max(r.All.Answered, 1)))
		}
		fmt.Fprintf(w, "fan-out CPU:      over %s: agent hosts %s (%s of a core, %s per result; their scripts %s), server %s (%s, %s per result), simulator %s (%s); machine busy %s of %d cores\n",
			u.Period.Round(time.Millisecond), u.Hosts, pct(u.Hosts), per(u.Hosts), u.Scripts, u.Server, pct(u.Server), per(u.Server), u.Sim, pct(u.Sim),
			fmt.Sprintf("%.0f%%", 100*u.Machine.Seconds()/u.Period.Seconds()/float64(u.Cores)), u.Cores)
	}
	fmt.Fprintf(w, "groups applied:   %s after ready; settled %s later (server and hosts at %.0f%% of a core)\n",
		r.GroupsApplied.Round(time.Millisecond), r.Settled.Round(time.Millisecond), 100*r.SettleCPU)
}

func perAgent(n, agents int) float64 {
	if agents == 0 {
		return 0
	}
	return float64(n) / float64(agents)
}
