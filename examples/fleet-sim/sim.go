package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config sizes a simulation.
type Config struct {
	// N is the number of agents.
	N int
	// Servers are the NATS URLs of an external server or cluster,
	// provisioned already; empty starts a server child (see server.go).
	Servers []string
	// Window is how long heartbeats are counted once every agent is ready.
	Window time.Duration
	// Heartbeat is the agents' heartbeat interval (at least 5 s).
	Heartbeat time.Duration
	// GroupEvery puts every GroupEvery-th agent in group Group (agent_groups).
	GroupEvery int
	// Group is the group of the group fan-out.
	Group string
	// FanoutTimeout bounds the wait for the results of one fan-out.
	FanoutTimeout time.Duration
	// PerProcess is the most agents run by one agent host process
	// (host.go); default 1000.
	PerProcess int
	// Profiles, when set, is a directory where each agent host writes its
	// heap and goroutine profiles at the end of the window.
	Profiles string
	// ReadyTimeout bounds the start of the fleet.
	ReadyTimeout time.Duration
	// SettleCPU is the share of a core (default 0.5) under which the
	// server and the hosts together must fall, over one second, before the
	// fan-outs start; SettleTimeout (default 2 minutes) bounds the wait.
	// Only measured with a server child on Linux (elsewhere no wait).
	SettleCPU     float64
	SettleTimeout time.Duration
	// Log receives progress lines; nil for none.
	Log io.Writer
}

// Heartbeats counts the heartbeats of a period.
type Heartbeats struct {
	// Period is how long they were counted.
	Period time.Duration
	// Expected is N × floor(Period / heartbeat interval); Got counts the
	// heartbeats received; Lost counts the heartbeats missing from an
	// agent's silences longer than 1.5 intervals (see heartbeatCounter.result).
	Expected, Got, Lost int
	// MaxGap is the longest silence of one agent in the period.
	MaxGap time.Duration
}

// Latency is the arrival of a fan-out's results.
type Latency struct {
	Targets, Answered int
	P50, P99, Max     time.Duration
}

// Report is what a simulation measured.
type Report struct {
	N int
	// Ready is the time from the first agent's start to the last one's Ready.
	Ready time.Duration
	// GroupsApplied is the time from Ready until every member of the group
	// runs the group's config scope (it read agent_groups and agent_config).
	GroupsApplied time.Duration
	// Settled is the time from GroupsApplied until the server and the
	// hosts used less than Config.SettleCPU of a core over a second
	// (SettleCPU, what they used over the last one), when the fan-outs start.
	Settled   time.Duration
	SettleCPU float64
	// AgentRSS and AgentHeap are the agent hosts' resident set and Go heap
	// in use (after a GC) per agent, over what the hosts held before their
	// agents started, measured at the end of the window.
	AgentRSS, AgentHeap uint64
	// AgentRSSFreed is the hosts' resident set per agent (over the same
	// start) once their runtimes returned the free heap pages a GC leaves
	// them to the system (debug.FreeOSMemory): what the agents hold, without
	// the pages Go keeps for the heap to grow again (with GOGC=100 up to
	// about as much as the live heap), which AgentRSS counts.
	AgentRSSFreed uint64
	// Server is the server child's figures with no agent connected
	// (Server0) and at the end of the window (Server1); zero values with an
	// external server (Consumers is still read from the account info).
	Server0, Server1 ServerStats
	// Window counts the heartbeats over the window, which starts once the
	// fan-outs are answered; Fanout those sent while the fan-outs ran.
	Window, Fanout Heartbeats
	// All and Group are the commands.all and commands.group.<g> fan-outs.
	All, Group Latency
	// AllCPU is the processor time used during the commands.all fan-out.
	AllCPU CPU
	// AgentStack is the agent hosts' goroutine stacks per agent, and
	// Goroutines their goroutines per agent, at the end of the window.
	AgentStack uint64
	Goroutines float64
	// Threads is the agent hosts' OS threads at the end of the window.
	Threads int
}

// AgentsReady reports whether every agent started; the other figures are
// meaningful only then.
func (r Report) AgentsReady() bool { return r.Ready > 0 }

func (c *Config) setDefaults() {
	if c.N <= 0 {
		c.N = 100
	}
	if c.Window <= 0 {
		c.Window = 30 * time.Second
	}
	if c.Heartbeat < wire.MinHeartbeatInterval {
		c.Heartbeat = wire.MinHeartbeatInterval
	}
	if c.GroupEvery <= 0 {
		c.GroupEvery = 2
	}
	if c.Group == "" {
		c.Group = "fleet-sim"
	}
	if c.FanoutTimeout <= 0 {
		c.FanoutTimeout = 2 * time.Minute
	}
	if c.PerProcess <= 0 {
		c.PerProcess = 1000
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = 10 * time.Minute
	}
	if c.SettleCPU <= 0 {
		c.SettleCPU = 0.5
	}
	if c.SettleTimeout <= 0 {
		c.SettleTimeout = 2 * time.Minute
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// pcID names the i-th simulated agent.
func pcID(i int) string { return fmt.Sprintf("sim-%05d", i) }

// Run runs one simulation: it starts the server (unless c.Servers), N
// agents, measures, and stops everything.
func Run(ctx context.Context, c Config) (rep Report, err error) {
	c.setDefaults()
	rep.N = c.N
	logf := func(format string, args ...any) { fmt.Fprintf(c.Log, format+"\n", args...) }
	dir, err := os.MkdirTemp("", "kanade-fleet-sim-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(dir)

	urls := c.Servers
	var srv *child
	if len(urls) == 0 {
		if srv, err = startChild(filepath.Join(dir, "server")); err != nil {
			return rep, err
		}
		defer srv.close()
		urls = []string{srv.url}
	}
	nc, err := nats.Connect(strings.Join(urls, ","), nats.Name("fleet-sim backend"))
	if err != nil {
		return rep, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return rep, err
	}
	if srv != nil {
		if rep.Server0, err = srv.stats(); err != nil {
			return rep, err
		}
	} else if rep.Server0.Consumers, err = consumers(ctx, js); err != nil {
		return rep, err
	}

	// Groups: every GroupEvery-th agent is in c.Group, whose config scope
	// sets a display name the members report once they applied it.
	display := "fleet-sim group " + c.Group
	groupKV, err := js.KeyValue(ctx, subject.BucketGroups)
	if err != nil {
		return rep, fmt.Errorf("bucket %s: %w", subject.BucketGroups, err)
	}
	cfgKV, err := js.KeyValue(ctx, subject.BucketConfig)
	if err != nil {
		return rep, fmt.Errorf("bucket %s: %w", subject.BucketConfig, err)
	}
	scope, _ := json.Marshal(map[string]string{"client_display_name": display})
	gkey, _ := subject.ConfigGroupKey(c.Group)
	if _, err := cfgKV.Put(ctx, gkey, scope); err != nil {
		return rep, err
	}
	members := 0
	groupDoc, _ := json.Marshal(wire.Groups{Groups: []string{c.Group}})
	for i := 0; i < c.N; i += c.GroupEvery {
		if _, err := groupKV.Put(ctx, pcID(i), groupDoc); err != nil {
			return rep, err
		}
		members++
	}

	// The agents, in hosts of at most PerProcess.
	var hosts []*child
	defer func() {
		var wg sync.WaitGroup
		for _, h := range hosts {
			wg.Add(1)
			go func() { defer wg.Done(); h.close() }()
		}
		wg.Wait()
	}()
	start := time.Now()
	for first := 0; first < c.N; first += c.PerProcess {
		spec, _ := json.Marshal(hostSpec{
			First: first, Count: min(c.PerProcess, c.N-first), Dir: filepath.Join(dir, "agents"), Servers: urls,
			Heartbeat: c.Heartbeat, GroupEvery: c.GroupEvery, Display: display, Profiles: c.Profiles,
		})
		h, err := spawn(hostEnv + "=" + string(spec))
		if err != nil {
			return rep, err
		}
		hosts = append(hosts, h)
	}
	waitAll := func(what string) error {
		errs := make(chan error, len(hosts))
		for _, h := range hosts {
			go func() {
				line, err := h.line()
				if err == nil && line != what {
					err = fmt.Errorf("agent host said %q, want %s", line, what)
				}
				errs <- err
			}()
		}
		timeout := time.After(c.ReadyTimeout)
		for range hosts {
			select {
			case err := <-errs:
				if err != nil {
					return err
				}
			case <-timeout:
				return fmt.Errorf("agents not %s after %s", what, c.ReadyTimeout)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	if err := waitAll("READY"); err != nil {
		return rep, err
	}
	rep.Ready = time.Since(start)
	logf("%d agents ready in %s (%d processes)", c.N, rep.Ready.Round(time.Millisecond), len(hosts))
	if err := waitAll("APPLIED"); err != nil {
		return rep, err
	}
	rep.GroupsApplied = time.Since(start) - rep.Ready
	logf("group %s (%d members) applied %s after ready", c.Group, members, rep.GroupsApplied.Round(time.Millisecond))
	// The fan-outs measure a fleet that is up, not one still starting:
	// wait until the agents' startup work (state snapshots, the gate
	// walks' consumers) is done, seen as the processor time of the server
	// and the hosts falling under SettleCPU.
	settleStart := time.Now()
	rep.SettleCPU = settle(ctx, srv, hosts, c.SettleCPU, c.SettleTimeout)
	rep.Settled = time.Since(settleStart)
	logf("settled %s after the groups applied (server and hosts at %.0f%% of a core)", rep.Settled.Round(time.Millisecond), 100*rep.SettleCPU)

	// Heartbeats during the fan-outs, then over the window.
	hb := newHeartbeatCounter()
	hbSub, err := nc.Subscribe("heartbeat.*", hb.add)
	if err != nil {
		return rep, err
	}
	_ = hbSub.SetPendingLimits(-1, -1)
	if err := nc.Flush(); err != nil {
		return rep, err
	}
	if c.Profiles != "" {
		for _, h := range hosts {
			var ok struct{}
			if err := h.ask("cpu", &ok); err != nil {
				return rep, err
			}
		}
	}
	fanStart := time.Now()
	cpu0 := sampleCPU(srv, hosts)
	shell, script := "sh", "true"
	if runtime.GOOS == "windows" {
		shell, script = "cmd", "rem"
	}
	if rep.All, err = fanout(ctx, nc, subject.CommandsAll, c.N, shell, script, c.FanoutTimeout); err != nil {
		return rep, err
	}
	rep.AllCPU = sampleCPU(srv, hosts).since(cpu0)
	logf("commands.all: %d/%d answered, p50 %s p99 %s max %s", rep.All.Answered, rep.All.Targets,
		rep.All.P50.Round(time.Millisecond), rep.All.P99.Round(time.Millisecond), rep.All.Max.Round(time.Millisecond))
	gsubj, _ := subject.CommandsGroup(c.Group)
	if rep.Group, err = fanout(ctx, nc, gsubj, members, shell, script, c.FanoutTimeout); err != nil {
		return rep, err
	}
	logf("%s: %d/%d answered, p50 %s p99 %s max %s", gsubj, rep.Group.Answered, rep.Group.Targets,
		rep.Group.P50.Round(time.Millisecond), rep.Group.P99.Round(time.Millisecond), rep.Group.Max.Round(time.Millisecond))
	if c.Profiles != "" { // the CPU profiles cover the fan-outs only
		for _, h := range hosts {
			var ok struct{}
			if err := h.ask("cpustop", &ok); err != nil {
				return rep, err
			}
		}
	}
	ids := make([]string, c.N)
	for i := range ids {
		ids[i] = pcID(i)
	}
	windowStart := time.Now()
	rep.Fanout = hb.result(ids, fanStart, windowStart.Sub(fanStart), c.Heartbeat)
	logf("counting heartbeats for %s", c.Window)
	select {
	case <-time.After(c.Window):
	case <-ctx.Done():
		return rep, ctx.Err()
	}
	_ = hbSub.Unsubscribe()
	rep.Window = hb.result(ids, windowStart, c.Window, c.Heartbeat)

	var rss0, rss1, heap0, heap1, stack0, stack1 uint64
	goroutines, threads := 0, 0
	var freed uint64
	logged := map[string]int{}
	failed := 0
	for _, h := range hosts {
		var st hostStats
		if err := h.ask("stats", &st); err != nil {
			return rep, err
		}
		rss0, rss1, heap0, heap1 = rss0+st.RSS0, rss1+st.RSS, heap0+st.Heap0, heap1+st.Heap
		stack0, stack1, goroutines = stack0+st.Stack0, stack1+st.Stack, goroutines+st.Goroutines-st.Goroutines0
		threads += st.Threads
		freed += st.RSSFreed
		for m, n := range st.Logged {
			logged[m] += n
		}
		failed += st.Failed
	}
	if rss1 > rss0 {
		rep.AgentRSS = (rss1 - rss0) / uint64(c.N)
	}
	if freed > rss0 {
		rep.AgentRSSFreed = (freed - rss0) / uint64(c.N)
	}
	if heap1 > heap0 {
		rep.AgentHeap = (heap1 - heap0) / uint64(c.N)
	}
	if stack1 > stack0 {
		rep.AgentStack = (stack1 - stack0) / uint64(c.N)
	}
	rep.Goroutines = float64(goroutines) / float64(c.N)
	rep.Threads = threads
	if srv != nil {
		if rep.Server1, err = srv.stats(); err != nil {
			return rep, err
		}
	} else if rep.Server1.Consumers, err = consumers(ctx, js); err != nil {
		return rep, err
	}
	for m, n := range logged {
		logf("agents logged %6d× %s", n, m)
	}
	if failed > 0 {
		return rep, fmt.Errorf("%d agents failed", failed)
	}
	return rep, nil
}

// heapInuse returns the Go heap in use and the goroutine stacks in use.
func heapInuse() (heap, stack uint64) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, ms.StackInuse
}

func consumers(ctx context.Context, js jetstream.JetStream) (int, error) {
	ai, err := js.AccountInfo(ctx)
	if err != nil {
		return 0, err
	}
	return ai.Consumers, nil
}

// fanout publishes one command on subj and waits for the results of
// targets agents, measuring each result's arrival from the publish.
func fanout(ctx context.Context, nc *nats.Conn, subj string, targets int, shell, script string, timeout time.Duration) (Latency, error) {
	l := Latency{Targets: targets}
	c := wire.Command{ID: wire.AdhocID, RequestID: uuid.NewString(), Shell: shell, Script: script, TimeoutSecs: 60}
	body, err := json.Marshal(c)
	if err != nil {
		return l, err
	}
	rsubj, _ := subject.Result(c.RequestID)
	got := make(chan string, targets)
	var mu sync.Mutex
	seen := map[string]bool{}
	var start time.Time
	lat := make([]time.Duration, 0, targets)
	sub, err := nc.Subscribe(rsubj, func(m *nats.Msg) {
		var r wire.ExecResult
		if json.Unmarshal(m.Data, &r) != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if seen[r.PcID] {
			return
		}
		seen[r.PcID] = true
		lat = append(lat, time.Since(start))
		got <- r.PcID
	})
	if err != nil {
		return l, err
	}
	defer sub.Unsubscribe()
	_ = sub.SetPendingLimits(-1, -1)
	if err := nc.Flush(); err != nil {
		return l, err
	}
	mu.Lock()
	start = time.Now()
	mu.Unlock()
	if err := nc.Publish(subj, body); err != nil {
		return l, err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for l.Answered < targets {
		select {
		case <-got:
			l.Answered++
		case <-t.C:
			return summarize(l, lat, &mu), nil
		case <-ctx.Done():
			return l, ctx.Err()
		}
	}
	return summarize(l, lat, &mu), nil
}

func summarize(l Latency, lat []time.Duration, mu *sync.Mutex) Latency {
	mu.Lock()
	defer mu.Unlock()
	if len(lat) == 0 {
		return l
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[int(p*float64(len(s)-1))] }
	l.P50, l.P99, l.Max = q(0.50), q(0.99), s[len(s)-1]
	return l
}

// heartbeatCounter records when each agent's heartbeats arrive.
type heartbeatCounter struct {
	mu sync.Mutex
	at map[string][]time.Time
}

func newHeartbeatCounter() *heartbeatCounter {
	return &heartbeatCounter{at: map[string][]time.Time{}}
}

func (h *heartbeatCounter) add(m *nats.Msg) {
	pc := strings.TrimPrefix(m.Subject, "heartbeat.")
	now := time.Now()
	h.mu.Lock()
	h.at[pc] = append(h.at[pc], now)
	h.mu.Unlock()
}

// result counts the heartbeats of ids from start over window. Expected is
// len(ids) × floor(window/every). A heartbeat is lost when an agent stays
// silent longer than 1.5 intervals: a gap g between two of its heartbeats
// loses round(g/every) - 1, a silence g from the start to its first
// heartbeat or from its last to the end loses floor(g/every). (Counting
// heartbeats against the expected number would call an agent whose timer
// drifts a few milliseconds per beat "lossy" at the window's edge.)
// MaxGap is the longest silence of one agent.
func (h *heartbeatCounter) result(ids []string, start time.Time, window, every time.Duration) Heartbeats {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := Heartbeats{Period: window}
	per := int(window / every)
	end := start.Add(window)
	late := every + every/2
	for _, id := range ids {
		prev, first := start, true
		for _, t := range h.at[id] {
			if t.Before(start) || t.After(end) {
				continue
			}
			r.Got++
			g := t.Sub(prev)
			r.MaxGap = max(r.MaxGap, g)
			switch {
			case g <= late:
			case first:
				r.Lost += int(g / every)
			default:
				r.Lost += int((g+every/2)/every) - 1
			}
			prev, first = t, false
		}
		g := end.Sub(prev)
		r.MaxGap = max(r.MaxGap, g)
		if g > late {
			r.Lost += int(g / every)
		}
		r.Expected += per
	}
	return r
}

// countingHandler prints the first max records at Warn or above and
// counts them all, by message.
type countingHandler struct {
	max   int64
	n     atomic.Int64
	w     io.Writer
	mu    sync.Mutex
	count map[string]int
}

// counts returns how many records were logged, by level and message.
func (h *countingHandler) counts() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.count)
}

func (h *countingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.count == nil {
		h.count = map[string]int{}
	}
	key := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			key += ": " + a.Value.String()
			return false
		}
		return true
	})
	h.count[key]++
	if h.n.Add(1) > h.max {
		return nil
	}
	return slog.NewTextHandler(h.w, nil).Handle(ctx, r)
}
func (h *countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &attrHandler{h: h, attrs: as}
}
func (h *countingHandler) WithGroup(string) slog.Handler { return h }

// attrHandler carries the attributes of Logger.With (the pc_id) to the counting handler.
type attrHandler struct {
	h     *countingHandler
	attrs []slog.Attr
}

func (a *attrHandler) Enabled(ctx context.Context, l slog.Level) bool { return a.h.Enabled(ctx, l) }
func (a *attrHandler) Handle(ctx context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(a.attrs...)
	return a.h.Handle(ctx, r)
}
func (a *attrHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &attrHandler{h: a.h, attrs: append(slices.Clone(a.attrs), as...)}
}
func (a *attrHandler) WithGroup(string) slog.Handler { return a }
