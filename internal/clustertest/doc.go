// Package clustertest holds the tests of the agent and its outboxes
// against a three-node JetStream cluster started in-process
// (natstest.RunCluster), and of the per-agent permissions of
// docs/examples/permissions.conf on a real server loaded from that file.
// It has no API: everything is in its _test.go files.
//
// What the tests prove:
//
//   - An outbox draining thousands of results while the RESULTS stream
//     leader crashes delivers every one exactly once (none lost, none stored
//     twice: each Nats-Msg-Id and result_id appears once in the stream),
//     whether its connection was on the crashed node or on a survivor.
//   - A commands.all fan-out to 20 agents connected with every node's URL,
//     with the EXEC stream leader crashing mid-run, gets exactly one result
//     from every agent, and the agents run the next commands on all PCs,
//     with the node still down and after it is back.
//   - An agent with its own user of docs/examples/permissions.conf runs a
//     command, stores its result and sends heartbeats; with one PC's
//     credentials nobody can read another PC's commands (live or through
//     an EXEC consumer), its replies, nor publish a result, heartbeat or
//     event as another PC.
package clustertest
