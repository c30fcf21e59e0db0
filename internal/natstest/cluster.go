package natstest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/provision"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ClusterOptions configures RunClusterWith. The zero value is a provisioned
// three-node JetStream cluster named "kanade" with every stream, bucket and
// object store of the protocol at three replicas.
type ClusterOptions struct {
	// Nodes is the number of servers; default 3.
	Nodes int
	// Name is the cluster name, and the prefix of each server_name
	// (<name>-0, <name>-1, ...); default "kanade".
	Name string
	// Replicas is the replica count of what is provisioned; default
	// min(Nodes, 3).
	Replicas int
	// Bare skips provisioning: the cluster has no streams, buckets or
	// object stores.
	Bare bool
	// Ready bounds the wait for the cluster to elect its JetStream meta
	// leader and for provisioning; default 30 s.
	Ready time.Duration
}

// GlobalAccount is the account of every stream of a server without
// accounts configured, for the JetStream*Leader lookups.
const GlobalAccount = server.DEFAULT_GLOBAL_ACCOUNT

// Cluster is an in-process JetStream cluster on loopback: every server has
// its own client port, cluster port and store directory, and routes to
// every other server through a link the cluster controls, so a node can be
// cut off as if its process had died (Crash) and not only shut down (Stop).
type Cluster struct {
	t     testing.TB
	opts  ClusterOptions
	nodes []*Node
	// links[i][j] carries the routes node i solicits to node j.
	links [][]*link
	// holes[i] is the cluster address node i advertises: a listener that
	// closes every connection, so route gossip never bypasses the links.
	holes []*link
}

// Node is one server of a Cluster.
type Node struct {
	c     *Cluster
	index int
	name  string
	dir   string

	front *front // holds the client port for the test's life (front.go)

	mu sync.Mutex
	ns *server.Server
	// clusterPort is the cluster listener's port, -1 until first picked;
	// atomic, as the links read it while the node starts.
	clusterPort atomic.Int64
	started     bool // once started, the ports are kept
}

// RunCluster starts an n-node JetStream cluster with every stream, bucket
// and object store of the protocol provisioned at min(n, 3) replicas, and
// waits until it has a meta leader and everything is created. t.Cleanup
// shuts it down.
func RunCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	return RunClusterWith(t, ClusterOptions{Nodes: n})
}

// RunClusterWith starts a cluster configured by o. t.Cleanup shuts it down.
//
// Under Wine it skips the test: clustered JetStream cannot run there, as
// nats-server's raft snapshots remove files with os.RemoveAll, which Wine 8
// does not implement (unlinkat: "Invalid function", .ci/wine/README.md),
// and the meta group stops on that "critical write error".
func RunClusterWith(t testing.TB, o ClusterOptions) *Cluster {
	t.Helper()
	if UnderWine() {
		t.Skip("natstest: clustered JetStream does not run under Wine (nats-server's raft snapshot calls os.RemoveAll, which Wine lacks)")
	}
	if o.Nodes <= 0 {
		o.Nodes = 3
	}
	if o.Name == "" {
		o.Name = "kanade"
	}
	if o.Replicas <= 0 {
		o.Replicas = min(o.Nodes, 3)
	}
	if o.Ready <= 0 {
		o.Ready = 30 * time.Second
	}
	c := &Cluster{t: t, opts: o}
	for i := range o.Nodes {
		f, err := newFront(0)
		if err != nil {
			t.Fatalf("natstest: cluster listen: %v", err)
		}
		t.Cleanup(f.close) // after c.shutdown (cleanups run last first)
		c.nodes = append(c.nodes, &Node{c: c, index: i, name: fmt.Sprintf("%s-%d", o.Name, i),
			dir: TempDir(t), front: f})
		c.nodes[i].clusterPort.Store(-1)
	}
	c.links = make([][]*link, o.Nodes)
	for i := range o.Nodes {
		c.links[i] = make([]*link, o.Nodes)
		for j := range o.Nodes {
			if i != j {
				l, err := newLink(c.nodes[j].clusterAddr)
				if err != nil {
					t.Fatalf("natstest: cluster link: %v", err)
				}
				c.links[i][j] = l
			}
		}
		h, err := newLink(func() string { return "" })
		if err != nil {
			t.Fatalf("natstest: cluster link: %v", err)
		}
		c.holes = append(c.holes, h)
	}
	t.Cleanup(c.shutdown)
	for _, nd := range c.nodes {
		if err := nd.start(); err != nil {
			t.Fatalf("natstest: cluster: %v", err)
		}
	}
	c.WaitMetaLeader(o.Ready)
	if !o.Bare {
		c.Provision(o.Replicas, o.Ready)
	}
	return c
}

// shutdown stops every node, then closes the links.
func (c *Cluster) shutdown() {
	var wg sync.WaitGroup
	for _, nd := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nd.shutdown()
		}()
	}
	wg.Wait()
	for _, row := range c.links {
		for _, l := range row {
			if l != nil {
				l.close()
			}
		}
	}
	for _, h := range c.holes {
		h.close()
	}
}

// Size returns the number of nodes.
func (c *Cluster) Size() int { return len(c.nodes) }

// Node returns node i (0-based).
func (c *Cluster) Node(i int) *Node { return c.nodes[i] }

// URLs returns every node's client URL, in node order. They do not change
// across Stop, Crash and Start.
func (c *Cluster) URLs() []string {
	out := make([]string, len(c.nodes))
	for i, nd := range c.nodes {
		out[i] = nd.URL()
	}
	return out
}

// URL returns URLs joined with commas, as nats.Connect takes a server list.
func (c *Cluster) URL() string { return strings.Join(c.URLs(), ",") }

// start starts the node: first on free ports, later on the same ports and
// store directory. It solicits routes to every node that has a cluster
// port already, through the links.
func (nd *Node) start() error {
	c := nd.c
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.ns != nil {
		return nil
	}
	// Every node routes to every other from the start (JetStream in a
	// cluster refuses to start without routes); a link to a node not up
	// yet refuses the connection and nats-server retries every second.
	var routes []*url.URL
	for j := range c.nodes {
		if j != nd.index {
			routes = append(routes, &url.URL{Scheme: "nats-route", Host: c.links[nd.index][j].addr()})
		}
	}
	opts := &server.Options{
		ServerName: nd.name,
		Host:       "127.0.0.1",
		Port:       -1, // any: clients use the front's port, which the servers gossip
		// The front's address, not the server's own, is what clients
		// learn from the cluster's INFO (connect_urls).
		ClientAdvertise: nd.front.addr(),
		JetStream:       true,
		StoreDir:        nd.dir,
		NoLog:           true,
		NoSigs:          true,
		Cluster: server.ClusterOpts{
			Name:      c.opts.Name,
			Host:      "127.0.0.1",
			Port:      int(nd.clusterPort.Load()),
			Advertise: c.holes[nd.index].addr(),
		},
		Routes: routes,
	}
	var lastErr error
	// A just-closed port can take a moment to be reusable; retry briefly.
	// Before the first start the cluster port is picked free here, so the
	// links know it before the server listens; taken meanwhile, another
	// is picked.
	for range 20 {
		if nd.clusterPort.Load() <= 0 || !nd.started {
			p, err := freePort()
			if err != nil {
				return fmt.Errorf("node %s: %w", nd.name, err)
			}
			nd.clusterPort.Store(int64(p))
		}
		opts.Cluster.Port = int(nd.clusterPort.Load())
		ns, err := server.NewServer(opts)
		if err != nil {
			return fmt.Errorf("node %s: new server: %w", nd.name, err)
		}
		go ns.Start()
		if ns.ReadyForConnections(5 * time.Second) {
			nd.ns = ns
			nd.started = true
			nd.front.setTarget(ns.Addr().String())
			return nil
		}
		ns.Shutdown()
		ns.WaitForShutdown()
		lastErr = fmt.Errorf("node %s (client port %d, cluster port %d) not ready", nd.name, nd.front.port(), nd.clusterPort.Load())
		time.Sleep(50 * time.Millisecond)
	}
	return lastErr
}

// clusterAddr returns the node's cluster listener as host:port, "" before
// its first start. It stays the same while the node is down.
func (nd *Node) clusterAddr() string {
	p := nd.clusterPort.Load()
	if p <= 0 {
		return ""
	}
	return fmt.Sprintf("127.0.0.1:%d", p)
}

func (nd *Node) shutdown() {
	nd.mu.Lock()
	ns := nd.ns
	nd.ns = nil
	nd.mu.Unlock()
	if ns != nil {
		nd.front.setTarget("")
		ns.Shutdown()
		ns.WaitForShutdown()
	}
}

// Name returns the node's server_name, <cluster name>-<index>.
func (nd *Node) Name() string { return nd.name }

// Index returns the node's index in the cluster.
func (nd *Node) Index() int { return nd.index }

// URL returns the node's client URL, nats://127.0.0.1:<port>, stable
// across Stop, Crash and Start.
func (nd *Node) URL() string { return "nats://" + nd.Addr() }

// Addr returns host:port of the node's client listener (held by the test
// for its life, in front of the server: front.go).
func (nd *Node) Addr() string { return nd.front.addr() }

// StoreDir returns the node's JetStream store directory.
func (nd *Node) StoreDir() string { return nd.dir }

// NATS returns the running *server.Server, or nil while the node is down.
func (nd *Node) NATS() *server.Server {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.ns
}

// Running reports whether the node is up.
func (nd *Node) Running() bool { return nd.NATS() != nil }

// setLinks brings every link to or from node i up or down; down also cuts
// the connections they carry.
func (c *Cluster) setLinks(i int, up bool) {
	for j := range c.nodes {
		if j == i {
			continue
		}
		for _, l := range []*link{c.links[i][j], c.links[j][i]} {
			l.setUp(up)
		}
	}
}

// Stop shuts node i down cleanly, as a server stopped by its service
// manager: it hands its raft leaderships over first (nats-server steps
// down every leader it holds before closing), so the others take over at
// once. The store directory and ports are kept for Start.
func (c *Cluster) Stop(i int) { c.nodes[i].shutdown() }

// Crash cuts node i off from the cluster at once, as a killed process or a
// lost machine: every route to and from it is closed with nothing handed
// over, and then it is shut down (its clients are disconnected). The
// others notice only by missing raft heartbeats and elect new leaders
// after their election timeout (4 to 9 s in nats-server). The store
// directory and ports are kept for Start.
func (c *Cluster) Crash(i int) {
	c.setLinks(i, false)
	c.nodes[i].shutdown()
}

// Start starts node i again on the same ports and store directory, with
// routes to every other node, after Stop or Crash. It does nothing if the
// node runs, and fails the test if it cannot start.
func (c *Cluster) Start(i int) {
	c.t.Helper()
	c.setLinks(i, true)
	if err := c.nodes[i].start(); err != nil {
		c.t.Errorf("natstest: cluster: restart: %v", err)
	}
}

// MetaLeader returns the index of the running node that is the JetStream
// meta leader, or -1 if there is none.
func (c *Cluster) MetaLeader() int {
	for i, nd := range c.nodes {
		if ns := nd.NATS(); ns != nil && ns.JetStreamIsLeader() {
			return i
		}
	}
	return -1
}

// WaitMetaLeader waits up to within for a meta leader that every running
// node follows, and returns its index; it fails the test otherwise.
func (c *Cluster) WaitMetaLeader(within time.Duration) int {
	c.t.Helper()
	leader := -1
	CheckFor(c.t, within, 20*time.Millisecond, func() error {
		if leader = c.MetaLeader(); leader < 0 {
			return errors.New("no JetStream meta leader")
		}
		for _, nd := range c.nodes {
			if ns := nd.NATS(); ns != nil && !ns.JetStreamIsCurrent() {
				return fmt.Errorf("node %s does not follow the meta leader yet", nd.name)
			}
		}
		return nil
	})
	return leader
}

// StreamLeader returns the index of the running node that leads stream
// (in the global account), or -1 if none does.
func (c *Cluster) StreamLeader(stream string) int {
	for i, nd := range c.nodes {
		if ns := nd.NATS(); ns != nil && ns.JetStreamIsStreamLeader(GlobalAccount, stream) {
			return i
		}
	}
	return -1
}

// WaitStreamLeader waits up to within until a running node leads stream
// and returns its index; it fails the test otherwise.
func (c *Cluster) WaitStreamLeader(stream string, within time.Duration) int {
	c.t.Helper()
	leader := -1
	CheckFor(c.t, within, 20*time.Millisecond, func() error {
		if leader = c.StreamLeader(stream); leader < 0 {
			return fmt.Errorf("stream %s has no leader", stream)
		}
		return nil
	})
	return leader
}

// WaitStreamCurrent waits up to within until stream has a leader and every
// running node that holds a replica of it is caught up.
func (c *Cluster) WaitStreamCurrent(stream string, within time.Duration) {
	c.t.Helper()
	CheckFor(c.t, within, 20*time.Millisecond, func() error {
		if c.StreamLeader(stream) < 0 {
			return fmt.Errorf("stream %s has no leader", stream)
		}
		for _, nd := range c.nodes {
			if ns := nd.NATS(); ns != nil && !ns.JetStreamIsStreamCurrent(GlobalAccount, stream) {
				return fmt.Errorf("stream %s on node %s is not current", stream, nd.name)
			}
		}
		return nil
	})
}

// Streams returns the name of every JetStream stream of the protocol: the
// streams, then the streams behind the KV buckets (KV_<bucket>) and the
// object stores (OBJ_<bucket>).
func Streams() []string {
	var out []string
	for _, s := range provision.Streams() {
		out = append(out, s.Name)
	}
	for _, b := range provision.Buckets() {
		out = append(out, "KV_"+b.Bucket)
	}
	for _, o := range provision.ObjectStores() {
		out = append(out, "OBJ_"+o.Bucket)
	}
	return out
}

// Provision creates every stream, bucket and object store of the protocol
// that is missing, with the settings of package provision and the given
// number of replicas, retrying until within has passed while the cluster is still
// placing peers. It fails the test on error.
func (c *Cluster) Provision(replicas int, within time.Duration) {
	c.t.Helper()
	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		c.t.Fatalf("natstest: cluster: connect to provision: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		c.t.Fatalf("natstest: cluster: %v", err)
	}
	CheckFor(c.t, within, 50*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return ProvisionReplicas(ctx, js, replicas)
	})
}

// ProvisionReplicas creates every stream, bucket and object store of the
// protocol that is missing with the given number of replicas
// (provision.ProvisionWith). It changes nothing that exists.
func ProvisionReplicas(ctx context.Context, js jetstream.JetStream, replicas int) error {
	_, err := provision.ProvisionWith(ctx, js, provision.Options{Replicas: replicas})
	return err
}

// link is a TCP forwarder carrying routes from one node to another. Down,
// it closes every connection it accepts; it dials its target anew for
// each connection, so the target may restart on the same port.
type link struct {
	ln     net.Listener
	target func() string

	mu    sync.Mutex
	up    bool
	done  bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// newLink listens on a free loopback port and forwards to target(); a
// target of "" refuses every connection.
func newLink(target func() string) (*link, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := &link{ln: ln, target: target, up: true, conns: map[net.Conn]struct{}{}}
	l.wg.Add(1)
	go l.accept()
	return l, nil
}

func (l *link) addr() string { return l.ln.Addr().String() }

func (l *link) accept() {
	defer l.wg.Done()
	for {
		in, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		up := l.up && !l.done
		l.mu.Unlock()
		target := ""
		if up {
			target = l.target()
		}
		if target == "" {
			_ = in.Close()
			continue
		}
		l.wg.Add(1)
		go l.forward(in, target)
	}
}

func (l *link) forward(in net.Conn, target string) {
	defer l.wg.Done()
	out, err := net.DialTimeout("tcp", target, 2*time.Second)
	if err != nil {
		_ = in.Close()
		return
	}
	l.mu.Lock()
	if !l.up || l.done {
		l.mu.Unlock()
		_ = in.Close()
		_ = out.Close()
		return
	}
	l.conns[in], l.conns[out] = struct{}{}, struct{}{}
	l.mu.Unlock()
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		_ = dst.Close()
		_ = src.Close()
	}
	wg.Add(2)
	go pipe(out, in)
	go pipe(in, out)
	wg.Wait()
	l.mu.Lock()
	delete(l.conns, in)
	delete(l.conns, out)
	l.mu.Unlock()
}

// setUp brings the link up or down; down closes its connections too.
func (l *link) setUp(up bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.up = up
	if !up {
		for c := range l.conns {
			_ = c.Close()
		}
	}
}

func (l *link) close() {
	l.mu.Lock()
	l.done = true
	for c := range l.conns {
		_ = c.Close()
	}
	l.mu.Unlock()
	_ = l.ln.Close()
	l.wg.Wait()
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
