package clustertest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/provision"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The sample configurations of docs/examples the tests load.
const (
	permissionsConf = "permissions.conf"
	clusterNodeConf = "cluster-node.conf"
	leafOfficeConf  = "leaf-office.conf"
)

// example returns the path of docs/examples/name. A test binary run
// outside the source tree (Windows binaries under Wine) has no such file:
// then the test is skipped.
func example(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join("..", "..", "docs", "examples", name)
	if _, err := os.Stat(p); err != nil && natstest.UnderWine() {
		t.Skipf("%s not found: this test binary runs outside the source tree (%v)", p, err)
	}
	return p
}

// Users of permissions.conf.
var (
	backendUser = nats.UserInfo("backend", "backend-secret")
	pcPasswords = map[string]string{"pc-a": "pc-a-secret", "pc-b": "pc-b-secret", "pc-c": "pc-c-secret"}
)

// runConfigServer starts a server from the configuration file path, moved
// to a free loopback port and a temporary store. t.Cleanup shuts it down.
func runConfigServer(t *testing.T, path string) *server.Server {
	t.Helper()
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.StoreDir = natstest.TempDir(t)
	opts.NoLog, opts.NoSigs = true, true
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("server from permissions.conf not ready")
	}
	return ns
}

// permEnv is a server from permissions.conf, provisioned, with a backend
// connection.
type permEnv struct {
	ns *server.Server
	nc *nats.Conn
	js jetstream.JetStream
}

func newPermEnv(t *testing.T) *permEnv {
	t.Helper()
	ns := runConfigServer(t, example(t, permissionsConf))
	nc := natstest.Connect(t, ns.ClientURL(), backendUser)
	js := natstest.JetStream(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := provision.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	return &permEnv{ns: ns, nc: nc, js: js}
}

// agentOpts returns the options of the agent of pc with its own user and
// inbox prefix, logging to log.
func (e *permEnv) agentOpts(pc string, log *natstest.Buffer) agent.Options {
	return agent.Options{
		Servers:     []string{e.ns.ClientURL()},
		Credentials: agent.Credentials{User: pc, Password: pcPasswords[pc]},
		InboxPrefix: "_INBOX." + pc,
		Logger:      slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// violations collects the permission violations the server reports to one
// connection.
type violations struct {
	mu   sync.Mutex
	seen []string
}

func (v *violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrPermissionViolation) {
		v.mu.Lock()
		v.seen = append(v.seen, err.Error())
		v.mu.Unlock()
	}
}

// has reports whether a violation for op ("Publish" or "Subscription") to
// subj was reported.
func (v *violations) has(op, subj string) bool {
	want := strings.ToLower(fmt.Sprintf("%s to %q", op, subj))
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, s := range v.seen {
		if strings.Contains(strings.ToLower(s), want) {
			return true
		}
	}
	return false
}

func (v *violations) all() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.seen...)
}

// connectAs connects as pc's user with the agent's inbox prefix, collecting
// the permission violations.
func connectAs(t *testing.T, url, pc string) (*nats.Conn, *violations) {
	t.Helper()
	v := &violations{}
	nc := natstest.Connect(t, url, nats.UserInfo(pc, pcPasswords[pc]),
		nats.CustomInboxPrefix("_INBOX."+pc), nats.ErrorHandler(v.handler))
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !nc.IsConnected() {
			return errors.New("not connected")
		}
		return nil
	})
	return nc, v
}

// TestPermissionsAgentEndToEnd runs two agents, each with its own user of
// docs/examples/permissions.conf and its own inbox prefix: commands on the
// pc, group and all subjects run, with a script_object read from scripts
// and output over 256 KiB offloaded to result_output; results are stored;
// heartbeats arrive; a ping is answered; and the server reports no
// permission violation to either agent.
func TestPermissionsAgentEndToEnd(t *testing.T) {
	e := newPermEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	groups, err := e.js.KeyValue(ctx, subject.BucketGroups)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := groups.Put(ctx, "pc-a", []byte(`{"groups":["office"]}`)); err != nil {
		t.Fatal(err)
	}
	scripts, err := e.js.ObjectStore(ctx, subject.ObjectScripts)
	if err != nil {
		t.Fatal(err)
	}
	script := []byte(echoScript("from-object"))
	if _, err := scripts.PutBytes(ctx, "hello/1", script); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(script)

	beats, err := e.nc.SubscribeSync(subject.HeartbeatAll)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	logs := map[string]*natstest.Buffer{"pc-a": {}, "pc-b": {}}
	var agents []*running
	for _, pc := range []string{"pc-a", "pc-b"} {
		agents = append(agents, startAgents(t, e.agentOpts(pc, logs[pc]), pc)...)
	}
	natstest.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		m, err := beats.NextMsg(time.Second)
		if err != nil {
			return err
		}
		if m.Subject == "heartbeat.pc-a" {
			return nil
		}
		return fmt.Errorf("heartbeat on %s", m.Subject)
	})

	fromObject := command("")
	fromObject.Script, fromObject.ScriptObject, fromObject.ScriptObjectSHA256 = "", "hello/1", hex.EncodeToString(sum[:])
	publishCommand(t, e.js, "commands.pc.pc-a", fromObject)
	group := command(echoScript("group"))
	publishCommand(t, e.js, "commands.group.office", group)
	big := command(bigOutputScript)
	publishCommand(t, e.js, subject.CommandsAll, big)
	// A collect job uploads its bundle to the collections object store.
	collected := filepath.Join(natstest.TempDir(t), "collect-me.txt")
	if err := os.WriteFile(collected, []byte("collected"), 0o644); err != nil {
		t.Fatal(err)
	}
	paths, _ := json.Marshal(map[string][]string{"files": {collected}})
	coll := command(echoScript(string(paths))) // cmd's echo prints quotes as they are
	if runtime.GOOS != "windows" {
		coll = command("echo '" + string(paths) + "'")
	}
	coll.Collect = &wire.CollectHint{Name: "perm-collect"}
	publishCommand(t, e.js, "commands.pc.pc-b", coll)

	checkOne := func(c wire.Command, pcs []string, check func(wire.ExecResult) error) {
		t.Helper()
		natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
			rs, err := resultsFor(e.js, c.RequestID)
			if err != nil {
				return err
			}
			if len(rs) != len(pcs) {
				return fmt.Errorf("%d results of %s, want %d", len(rs), c.RequestID, len(pcs))
			}
			for i, s := range rs {
				if s.result.PcID != pcs[i] && len(pcs) == 1 {
					return fmt.Errorf("result from %s", s.result.PcID)
				}
				if err := check(s.result); err != nil {
					return err
				}
			}
			return nil
		})
	}
	checkOne(fromObject, []string{"pc-a"}, func(r wire.ExecResult) error {
		if r.ExitCode != 0 || r.Stdout != "from-object"+nl {
			return fmt.Errorf("script_object: exit %d stdout %q stderr %q", r.ExitCode, r.Stdout, r.Stderr)
		}
		return nil
	})
	checkOne(coll, []string{"pc-b"}, func(r wire.ExecResult) error {
		if r.ExitCode != 0 || !strings.HasPrefix(r.CollectObject, "pc-b/") {
			return fmt.Errorf("collect: exit %d collect_object %q stderr %q", r.ExitCode, r.CollectObject, r.Stderr)
		}
		return nil
	})
	checkOne(group, []string{"pc-a"}, func(r wire.ExecResult) error {
		if r.ExitCode != 0 || r.Stdout != "group"+nl {
			return fmt.Errorf("group: exit %d stdout %q stderr %q", r.ExitCode, r.Stdout, r.Stderr)
		}
		return nil
	})
	out, err := e.js.ObjectStore(ctx, subject.ObjectResultOutput)
	if err != nil {
		t.Fatal(err)
	}
	checkOne(big, []string{"pc-a", "pc-b"}, func(r wire.ExecResult) error {
		if r.ExitCode != 0 || r.StdoutObject == "" || r.Stdout != "" {
			return fmt.Errorf("big output from %s: exit %d stdout_object %q stderr %q", r.PcID, r.ExitCode, r.StdoutObject, r.Stderr)
		}
		b, err := out.GetBytes(ctx, r.StdoutObject)
		if err != nil {
			return err
		}
		if len(b) < 300_000 {
			return fmt.Errorf("%s holds %d bytes", r.StdoutObject, len(b))
		}
		return nil
	})

	reply, err := e.nc.Request("agents.pc-a.ping", nil, 5*time.Second)
	if err != nil {
		t.Fatalf("ping: %v", err)
	}
	var hb wire.Heartbeat
	if err := json.Unmarshal(reply.Data, &hb); err != nil || hb.PcID != "pc-a" {
		t.Fatalf("ping reply %q: %v", reply.Data, err)
	}
	waitOutboxesEmpty(t, agents, 20*time.Second)
	for pc, log := range logs {
		if s := log.String(); strings.Contains(strings.ToLower(s), "permissions violation") {
			t.Errorf("agent %s hit a permission violation:\n%s", pc, grepLines(s, "ermissions"))
		}
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestPermissionsIsolation connects with pc-a's credentials and checks that
// the server refuses everything that would read another PC's commands or
// replies, or speak for another PC: each refusal is the server's
// permission violation for that very subject. What pc-a may do (its own
// subjects) draws no violation, so the checks can tell.
func TestPermissionsIsolation(t *testing.T) {
	e := newPermEnv(t)
	nc, v := connectAs(t, e.ns.ClientURL(), "pc-a")

	// Allowed: no violation.
	for _, s := range []string{"commands.all", "commands.pc.pc-a", "commands.group.office", "kill.x", "_INBOX.pc-a.x",
		"$KV.agent_groups.pc-a", "$KV.agent_config.pcs.pc-a", "$KV.agent_config.groups.office"} {
		if _, err := nc.SubscribeSync(s); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{"heartbeat.pc-a", "host_perf.pc-a"} {
		if err := nc.Publish(s, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	deniedSubs := []string{
		"commands.pc.pc-b", "commands.pc.*", "commands.>", ">",
		"agents.pc-b.ping", "logs.fetch.pc-b", "job.tail.pc-b",
		"_INBOX.pc-b.>", "_INBOX.>", "_INBOX.*.>",
		"heartbeat.pc-b", "results.>", "$JS.ACK.EXEC.agent-pc-b.>",
		// pc-b's groups and config changes.
		"$KV.agent_groups.pc-b", "$KV.agent_groups_derived.pc-b", "$KV.agent_config.pcs.pc-b", "$KV.agent_config.>",
	}
	for _, s := range deniedSubs {
		if _, err := nc.SubscribeSync(s); err != nil {
			t.Fatal(err)
		}
	}
	deniedPubs := []string{
		// Speaking for pc-b.
		"heartbeat.pc-b", "host_perf.pc-b", "process_perf.pc-b", "obs.pc-b", "events.started.e1.pc-b", "inventory.pc-b.software",
		// Commanding or killing anyone.
		"commands.pc.pc-b", "commands.all", "commands.group.office", "kill.e1",
		// Changing its own groups or config.
		"$KV.agent_groups.pc-a", "$KV.agent_config.pcs.pc-a",
		// Reading pc-b's commands through EXEC: pc-b's consumer, a consumer
		// of its own name filtered to pc-b's subject, an ephemeral or legacy
		// durable consumer, a direct or API get of a stored message.
		"$JS.API.CONSUMER.CREATE.EXEC.agent-pc-b",
		"$JS.API.CONSUMER.CREATE.EXEC.agent-pc-a.commands.pc.pc-b",
		"$JS.API.CONSUMER.CREATE.EXEC",
		"$JS.API.CONSUMER.CREATE.EXEC.eph",
		"$JS.API.CONSUMER.DURABLE.CREATE.EXEC.agent-pc-a",
		"$JS.API.CONSUMER.MSG.NEXT.EXEC.agent-pc-b",
		"$JS.API.DIRECT.GET.EXEC.commands.pc.pc-b",
		"$JS.API.DIRECT.GET.EXEC",
		"$JS.API.STREAM.MSG.GET.EXEC",
		"$JS.ACK.EXEC.agent-pc-b.1.1.1.1.0",
		// Watching or reading pc-b's groups and config, reading results.
		"$JS.API.CONSUMER.CREATE.KV_agent_groups.w.$KV.agent_groups.pc-b",
		"$JS.API.DIRECT.GET.KV_agent_groups.$KV.agent_groups.pc-b",
		"$JS.API.DIRECT.GET.KV_agent_groups_derived.$KV.agent_groups_derived.pc-b",
		"$JS.API.DIRECT.GET.KV_agent_config.$KV.agent_config.pcs.pc-b",
		"$JS.API.DIRECT.GET.KV_agent_groups",
		"$JS.API.STREAM.MSG.GET.KV_agent_groups",
		"$JS.API.CONSUMER.CREATE.RESULTS.r",
		// Administration.
		"$JS.API.STREAM.PURGE.RESULTS", "$JS.API.STREAM.DELETE.EXEC", "$JS.API.STREAM.UPDATE.EXEC",
		"$JS.API.CONSUMER.DELETE.EXEC.agent-pc-b", "$JS.API.STREAM.NAMES", "$JS.API.CONSUMER.LIST.EXEC",
	}
	for _, s := range deniedPubs {
		if err := nc.Publish(s, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		for _, s := range deniedSubs {
			if !v.has("Subscription", s) {
				return fmt.Errorf("subscribing %s was not refused", s)
			}
		}
		for _, s := range deniedPubs {
			if !v.has("Publish", s) {
				return fmt.Errorf("publishing on %s was not refused", s)
			}
		}
		return nil
	})
	for _, s := range []string{"commands.all", "commands.pc.pc-a", "commands.group.office", "kill.x", "_INBOX.pc-a.x",
		"$KV.agent_groups.pc-a", "$KV.agent_config.pcs.pc-a", "$KV.agent_config.groups.office"} {
		if v.has("Subscription", s) {
			t.Errorf("subscribing its own %s was refused", s)
		}
	}
	for _, s := range []string{"heartbeat.pc-a", "host_perf.pc-a"} {
		if v.has("Publish", s) {
			t.Errorf("publishing its own %s was refused", s)
		}
	}

	// Through the JetStream client too: pc-a can neither create pc-b's
	// consumer nor an ephemeral one on EXEC.
	js := natstest.JetStream(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := js.CreateOrUpdateConsumer(ctx, subject.StreamExec, jetstream.ConsumerConfig{
		Durable: "agent-pc-b", FilterSubjects: []string{"commands.all", "commands.pc.pc-b"}}); err == nil {
		t.Error("pc-a created pc-b's EXEC consumer")
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	if _, err := js.OrderedConsumer(ctx2, subject.StreamExec, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"commands.pc.pc-b"}}); err == nil {
		t.Error("pc-a created an ordered consumer on EXEC")
	}
	if t.Failed() {
		t.Logf("violations seen: %q", v.all())
	}
}

// TestPermissionsKnownGaps shows what permissions.conf cannot prevent, as
// docs/cluster.md says: with pc-a's credentials one can (1) store a result
// claiming to be pc-b's (results.<request_id> carries no pc id), (2) set
// the filters of its own EXEC consumer to pc-b's subject (the filters of a
// multi-filter consumer travel in the request body, which subject
// permissions do not see) and so read pc-b's stored commands, and (3) write
// any object of result_output. Gap 2 exists only for a PC allowed to create
// its consumer (create mode, pc-a): pc-c, whose agent runs in bind mode,
// may not, so it cannot read pc-b's stored commands. If this test fails,
// the server or the protocol closed a gap: update docs/cluster.md.
func TestPermissionsKnownGaps(t *testing.T) {
	e := newPermEnv(t)
	nc, v := connectAs(t, e.ns.ClientURL(), "pc-a")
	js := natstest.JetStream(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// (1) A result as pc-b.
	now := time.Now().UTC()
	forged := wire.ExecResult{ResultID: uuid.NewString(), RequestID: uuid.NewString(), PcID: "pc-b",
		ManifestID: wire.AdhocID, Stdout: "forged", StartedAt: now, FinishedAt: now}
	b, _ := json.Marshal(forged)
	if _, err := js.Publish(ctx, "results."+forged.RequestID, b); err != nil {
		t.Fatalf("gap (1) closed? %v", err)
	}
	rs, err := resultsFor(e.js, forged.RequestID)
	if err != nil || len(rs) != 1 || rs[0].result.PcID != "pc-b" {
		t.Fatalf("gap (1): %v %+v", err, rs)
	}

	// (2) pc-b's stored command, read through pc-a's own consumer.
	secret := command(echoScript("for-pc-b-only"))
	publishCommand(t, e.js, "commands.pc.pc-b", secret)
	cons, err := js.CreateOrUpdateConsumer(ctx, subject.StreamExec, jetstream.ConsumerConfig{
		Durable: "agent-pc-a", FilterSubjects: []string{"commands.all", "commands.pc.pc-b"},
		DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy, AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("gap (2) closed? %v", err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for m := range batch.Messages() {
		if m.Subject() != "commands.pc.pc-b" || !bytes.Contains(m.Data(), []byte(secret.RequestID)) {
			t.Fatalf("gap (2): read %s %q", m.Subject(), m.Data())
		}
		got++
	}
	if got != 1 {
		t.Fatalf("gap (2): read %d messages (%v)", got, batch.Error())
	}

	// (2) is closed in bind mode: pc-c, with the same try, is refused.
	cnc, cv := connectAs(t, e.ns.ClientURL(), "pc-c")
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	defer cancelShort()
	if _, err := natstest.JetStream(t, cnc).CreateOrUpdateConsumer(short, subject.StreamExec, jetstream.ConsumerConfig{
		Durable: "agent-pc-c", FilterSubjects: []string{"commands.all", "commands.pc.pc-b"},
		DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy, AckPolicy: jetstream.AckExplicitPolicy}); err == nil {
		t.Fatal("gap (2) open in bind mode: pc-c created a consumer filtered to pc-b's commands")
	}
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if !cv.has("Publish", "$JS.API.CONSUMER.CREATE.EXEC.agent-pc-c") {
			return errors.New("pc-c creating its consumer was not refused")
		}
		return nil
	})

	// (3) An object of result_output named as pc-b's output.
	out, err := js.ObjectStore(ctx, subject.ObjectResultOutput)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := out.PutBytes(ctx, forged.RequestID+"/pc-b/stdout", []byte("forged")); err != nil {
		t.Fatalf("gap (3) closed? %v", err)
	}
	if s := v.all(); len(s) > 0 {
		t.Fatalf("violations: %q", s)
	}
}
