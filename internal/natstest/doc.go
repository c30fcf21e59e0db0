// Package natstest is the project's test harness: embedded NATS servers with
// JetStream, a delay/fault TCP proxy, and a polling helper. It is imported by
// the tests of every other package and is not API.
//
// # Servers
//
//	s := natstest.RunServer(t)             // JetStream, protocol streams provisioned
//	s := natstest.RunBareServer(t)         // JetStream, no streams (for "wait for streams" tests)
//	s := natstest.RunServerWith(t, natstest.Options{StoreDir: dir, Port: p, Bare: true, MaxPayload: 1 << 20})
//	s.URL()                                // nats://127.0.0.1:<port>; stable across Restart (held by a relay)
//	s.Port(), s.StoreDir(), s.NATS()       // the running *server.Server (changes on Restart)
//	s.Shutdown()                           // stop (idempotent); the broker is down
//	s.Start()                              // start again on the same port and store dir
//	s.Restart()                            // Shutdown then Start
//
// Every server stores in TempDir(t) unless told otherwise, runs with NoLog
// and NoSigs, is waited for with ReadyForConnections, and is shut down (and
// waited for) by t.Cleanup. Start after Shutdown reuses the store, so
// streams and their messages survive, as with a real broker restart.
//
// The client port (Port, default a free one) is held by the test for its
// whole life: a relay listens there and forwards to the server, which
// listens on a port of its own; while the server is down the relay accepts
// and closes at once, as a refused connection looks. go test runs packages
// in parallel processes: a port freed by a Shutdown could otherwise be
// taken by another package's server, and this test's agents would
// reconnect to it (and another's to this one). Cluster nodes have the same
// relay (their routes go through links the cluster holds). Benchmarks use
// Options{Direct: true}, which skips the relay.
//
// # Clusters
//
//	c := natstest.RunCluster(t, 3)          // 3 JetStream nodes, protocol provisioned at R3, meta leader elected
//	c := natstest.RunClusterWith(t, natstest.ClusterOptions{Nodes: 3, Bare: true}) // nothing provisioned
//	c.URLs(), c.URL()                      // every node's client URL; URL joins them with commas
//	c.Node(i).Name(), .URL(), .NATS()      // one node: server_name <cluster>-<i>, client URL, *server.Server
//	c.StreamLeader("RESULTS")              // index of the node leading a stream, -1 if none
//	c.WaitStreamLeader("RESULTS", 30*time.Second)
//	c.WaitStreamCurrent("RESULTS", 30*time.Second) // leader elected, every running replica caught up
//	c.Stop(i)                              // clean shutdown: the node hands its leaderships over first
//	c.Crash(i)                             // routes cut at once, then shut down: as a killed process
//	c.Start(i)                             // again on the same ports and store directory
//	natstest.ProvisionReplicas(ctx, js, 3) // provision.ProvisionWith(..., Options{Replicas: 3})
//
// The nodes listen on loopback (client and cluster ports picked free at
// the first start and kept), each with its own TempDir store, and route to
// each other through links the cluster controls: Crash closes them, so
// the others learn of the loss only from missing raft heartbeats and elect
// new leaders after their election timeout (4 to 9 s), as after a real
// crash; Stop lets nats-server step its leaders down first. Route gossip
// cannot bypass the links (each node advertises an address that refuses
// connections). A cluster starts and is provisioned in about 2 s.
//
// # Clients
//
//	nc := natstest.Connect(t, s.URL())      // fast reconnect (20 ms, forever); closed by t.Cleanup
//	js := natstest.JetStream(t, nc)         // jetstream.New, fails the test on error
//
// # Proxy
//
//	p := natstest.NewProxy(t, s.Addr(), 25*time.Millisecond) // 25 ms each way = 50 ms RTT
//	nc := natstest.Connect(t, p.URL())
//	p.Cut()     // close every current connection (the client reconnects)
//	p.Pause()   // refuse new connections (accept and close at once): the broker looks dead
//	p.Resume()  // accept again
//	p.Close()   // stop; safe to call twice (second returns an error wrapping net.ErrClosed)
//
// The proxy delays each direction by the given one-way delay without
// limiting throughput: a reader goroutine timestamps each chunk as it
// arrives and queues it, a writer goroutine writes each chunk when its time
// comes, so many chunks are in flight at once (like a long fat pipe, not a
// sleep per read).
//
// # Temporary directories
//
//	dir := natstest.TempDir(t)              // like t.TempDir, but removed file by file
//
// TempDir is t.TempDir for tests that also run under Wine, where
// os.RemoveAll (t.TempDir's cleanup) fails: its cleanup removes the tree
// bottom-up with os.Remove, retrying briefly on Windows while a file is
// still busy. Tests in this repository use it instead of t.TempDir.
//
// # Polling
//
//	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error { ... })
//
// CheckFor calls f every interval until it returns nil, and fails the test
// with f's last error when total has passed. Tests wait with CheckFor (or
// channels), never with time.Sleep.
//
// # Concurrency
//
// Server and Proxy methods are safe for concurrent use. Helpers that take a
// testing.TB call t.Fatal and so must run on the test's goroutine.
package natstest
