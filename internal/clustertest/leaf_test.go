package clustertest_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/provision"
	"github.com/kanade/kanade-agent/subject"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// TestSampleConfigs checks that every sample configuration parses and says
// what docs/cluster.md says it does.
func TestSampleConfigs(t *testing.T) {
	hub, err := server.ProcessConfigFile(example(t, clusterNodeConf))
	if err != nil {
		t.Fatal(err)
	}
	if !hub.JetStream || hub.JetStreamDomain != "hub" || hub.Cluster.Name != "kanade" || len(hub.Routes) != 3 || hub.LeafNode.Port != 7422 {
		t.Errorf("cluster-node.conf: jetstream %v domain %q cluster %q routes %d leaf port %d",
			hub.JetStream, hub.JetStreamDomain, hub.Cluster.Name, len(hub.Routes), hub.LeafNode.Port)
	}
	leaf, err := server.ProcessConfigFile(example(t, leafOfficeConf))
	if err != nil {
		t.Fatal(err)
	}
	if leaf.JetStream || len(leaf.LeafNode.Remotes) != 1 || len(leaf.LeafNode.Remotes[0].URLs) != 3 {
		t.Errorf("leaf-office.conf: jetstream %v remotes %+v", leaf.JetStream, leaf.LeafNode.Remotes)
	}
	if _, err := server.ProcessConfigFile(example(t, permissionsConf)); err != nil {
		t.Fatal(err)
	}
}

// TestLeafOfficeHubJetStream runs the hub of cluster-node.conf (one node,
// JetStream domain "hub") and the branch-office leaf node of
// leaf-office.conf without JetStream of its own: an agent connected to the
// leaf with Options.JSDomain "hub" gets commands from the hub's backend on
// its pc subject, commands.all and, once its KV watch of agent_groups (a
// JetStream API request that must reach the hub) has told it its group,
// commands.group.<g>; its results are stored in the hub's RESULTS. (Without
// JSDomain the agent's JetStream API requests get no responder through the
// leaf connection, even from a hub without a domain: seen with
// nats-server 2.15; live commands and result publishes would still pass,
// so a group command is what tells.)
func TestLeafOfficeHubJetStream(t *testing.T) { leafOffice(t, false) }

// TestLeafOfficeOwnDomain is TestLeafOfficeHubJetStream with the leaf
// running JetStream in a domain of its own (office-1): with JSDomain "hub"
// the agent works as well (without it, its requests would be answered by
// the office's JetStream, which lacks the protocol's streams).
func TestLeafOfficeOwnDomain(t *testing.T) { leafOffice(t, true) }

func leafOffice(t *testing.T, ownDomain bool) {
	// The hub: cluster-node.conf as a single node (no routes), on free ports.
	hubOpts, err := server.ProcessConfigFile(example(t, clusterNodeConf))
	if err != nil {
		t.Fatal(err)
	}
	hubOpts.Cluster, hubOpts.Routes = server.ClusterOpts{}, nil
	hubOpts.Host, hubOpts.Port = "127.0.0.1", -1
	hubOpts.LeafNode.Host, hubOpts.LeafNode.Port = "127.0.0.1", freePort(t)
	hubOpts.StoreDir = natstest.TempDir(t)
	hub := startServer(t, hubOpts)
	backend := natstest.Connect(t, hub.ClientURL(), nats.UserInfo("backend", "backend-secret"))
	js := natstest.JetStream(t, backend)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := provision.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}

	// The office: leaf-office.conf, its remote pointed at the hub.
	leafOpts, err := server.ProcessConfigFile(example(t, leafOfficeConf))
	if err != nil {
		t.Fatal(err)
	}
	leafOpts.Host, leafOpts.Port = "127.0.0.1", -1
	remote := leafOpts.LeafNode.Remotes[0]
	u := *remote.URLs[0]
	u.Host = fmt.Sprintf("127.0.0.1:%d", hubOpts.LeafNode.Port)
	remote.URLs = []*url.URL{&u}
	if ownDomain {
		leafOpts.JetStream, leafOpts.JetStreamDomain = true, "office-1"
		leafOpts.StoreDir = natstest.TempDir(t)
	}
	leaf := startServer(t, leafOpts)
	natstest.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		if leaf.NumLeafNodes() != 1 || hub.NumLeafNodes() != 1 {
			return errors.New("leaf node not connected to the hub")
		}
		return nil
	})

	opts := agent.Options{Servers: []string{leaf.ClientURL()}, Credentials: agent.Credentials{User: "agent", Password: "agent-secret"}}
	opts.JSDomain = "hub"
	// The agent learns its group from agent_groups through a KV watch:
	// a JetStream API request, which must reach the hub.
	groups, err := js.KeyValue(ctx, subject.BucketGroups)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := groups.Put(ctx, "pc-office", []byte(`{"groups":["office-1"]}`)); err != nil {
		t.Fatal(err)
	}
	agents := startAgents(t, opts, "pc-office")
	cmd := command(echoScript("office"))
	publishCommand(t, js, "commands.pc.pc-office", cmd)
	waitResults(t, js, agents, []string{"pc-office"}, cmd.RequestID, "office"+nl, 30*time.Second)
	all := command(echoScript("all"))
	publishCommand(t, js, subject.CommandsAll, all)
	waitResults(t, js, agents, []string{"pc-office"}, all.RequestID, "all"+nl, 30*time.Second)
	group := command(echoScript("group"))
	natstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		// Published again until the agent has joined the group (its
		// subscription follows the watch); the ledger runs it once.
		publishCommand(t, js, "commands.group.office-1", group)
		if rs, err := resultsFor(js, group.RequestID); err != nil || len(rs) == 0 {
			return fmt.Errorf("no result of the group command yet (%v)", err)
		}
		return nil
	})
	waitResults(t, js, agents, []string{"pc-office"}, group.RequestID, "group"+nl, 30*time.Second)
}

// startServer starts a server with opts (no logging, no signals) and waits
// until it accepts clients. t.Cleanup shuts it down.
func startServer(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
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
		t.Fatalf("server %s not ready", opts.ServerName)
	}
	return ns
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
