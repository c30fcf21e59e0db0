// Package agent is the kanade endpoint agent as a library: the daemon
// (cmd/kanade-agent) is a thin wrapper around it, and any Go service can
// embed it. It speaks the protocol of docs/protocol.md exactly.
//
//	a, err := agent.New(agent.Options{PcID: "pc-1", DataDir: dir, Servers: urls})
//	if err != nil { ... }
//	err = a.Run(ctx) // until ctx ends; ErrRestart after a self-update
//
// # Lifecycle
//
// New validates Options and touches nothing. Run opens the data directory
// (dedup ledger, outboxes: each locked, so a second agent on the same
// directory fails at once), connects (starting even with no server
// reachable, reconnecting forever), waits with backoff for the protocol's
// streams and buckets, and runs until ctx ends. Ready is closed once
// commands are being received; it never closes when Run fails first (a
// locked data directory, unreadable TLS files, a refused data directory),
// so a host program waits with WaitReady, which returns nil once ready,
// Run's error, ErrStoppedBeforeReady (Run's ctx ended first) or its own
// ctx's error. Every startup step before readiness honours ctx (opening
// the outboxes, dialling, reporting the commands found mid-launch even
// while the disk is full, the startup event): a ctx that ends during
// startup makes Run return nil promptly, and what it did not do yet stays
// on disk for the next start. When ctx ends, Run stops accepting
// commands, kills running scripts and records their results, gives the
// outboxes Options.ShutdownTimeout to flush (skipped when the streams
// were never found: nothing could be delivered), closes everything and
// returns. An Agent runs once.
//
// # Connection
//
// By default the agent dials Options.Servers itself, with
// Options.Credentials, reply subjects under Options.InboxPrefix (default
// "_INBOX"; "_INBOX.<pc_id>" lets a server limit each PC's replies to its
// own prefix) and Options.NATSOptions. A host program that already has a
// connection passes it as Options.Conn instead, and several agents may
// share one: the agent never closes it nor touches its handlers, follows
// its state through nats.Conn.StatusChanged (heartbeats only while
// connected, the gate state marked stale while disconnected and live again
// on reconnect, the outbox drains resuming), removes its subscriptions,
// consumers and listeners when Run returns, and stops Run with an error
// wrapping nats.ErrConnectionClosed if the caller closes it. With Conn,
// Servers, Credentials, NATSOptions and InboxPrefix must be empty. An
// agent connected to a leaf node whose JetStream domain is not the one
// holding the protocol's streams (a branch office) sets Options.JSDomain:
// its JetStream API requests then go to $JS.<domain>.API.
//
// # Commands
//
// The EXEC replay consumer is created by the agent (Options.ExecConsumer
// ExecConsumerCreate, the default, as upstream) or, in bind mode
// (ExecConsumerBind), created and kept in step with the PC's groups by the
// operator ('kanade consumer sync', built by internal/execconsumer as the
// agent would) and only bound to by the agent, whose NATS user then needs
// no right to create consumers: see docs/cluster.md.
//
// Live commands (commands.all, commands.pc.<pc_id>, commands.group.<g> for
// each effective group) and the EXEC replay consumer (agent-<pc_id>, for
// commands published while the agent was away) feed one ordered queue,
// handled by one goroutine at a time, so commands are taken in the order
// they reached the agent. (The queue's goroutines run only while it has
// work, and the agents of one process share a channel and its mover per
// eight: see docs/fleet.md.) Each message's signature is checked as it arrives,
// against the subject it arrived on (the live subscription's, or the
// replayed JetStream message's), before it is queued and without touching
// the disk: while the agent enforces (Options.Enforcing, or with no
// command keys at all, every command refused), unsigned, forged or
// misaddressed messages never take room in the queue, and their refusals
// (exit 123, skipped false) are stored at most 100 at once then one every
// 500 ms (Stats.RefusalsDropped counts the rest). A replayed command on a
// subject that is no longer the agent's is dropped, as upstream. Then the
// pipeline of docs/protocol.md: strict decode; the durable dedup ledger (a
// request_id runs at most once, across restarts; one found mid-launch
// after a crash is reported 121, unless its result was already stored);
// gates 127, 124, 126, 125 (every staleness mode applies the version pin
// and revocation; strict max_cache_age is humantime, "0s" meaning the
// gate state must be live now); jitter; the FIFO limiter
// (max_local_concurrent, live); the run (internal/runner: timeouts,
// whole-tree kill, bounded output); retries; then the job manifest hints,
// in upstream's order: check (the derived Check cached by name, in the
// data dir, served by Agent.Checks), collect (after exit 0: the listed
// files zipped into the collections object store, collect_object set;
// Options.CollectRoots and Options.CollectMaxSize bound what is read),
// emit (after exit 0; a named job's events behind its durable watermark
// are not stored again, KANADE_EMIT_WATERMARK tells the script the mark);
// then EventStarted and the ExecResult (manifest_id always set) through
// durable outboxes; then, after exit 0, the finalize hook, whose own
// ExecResult (request id <request_id>__finalize, parent_result_id the
// run's result_id) is tracked in the dedup ledger so a crash reports it
// with 121 rather than losing it. See emit.go, check.go, collect.go and
// finalize.go. kill.<exec_id> is honoured from acceptance to exit (its
// subscription flushed before the command goes on); while enforcing, only
// a kill signed for its own subject is. A replayed message is acked only
// once its command is durably launching or finished. Malformed, hostile or
// oversized input is refused with a result or a log line and never stops
// the agent; Options.MaxQueued bounds the commands waiting or running.
//
// A payload that is a JSON object with a "kind" key is upstream's command
// envelope, never decoded as a bare command, whether or not the agent
// enforces: kind "kanade.command.v2" is verified by
// signing.Verifier.CheckEnvelope (signature, target_pc_id equal to the
// agent's pc id, expires_at); a verified one runs its command with the
// earlier of expires_at and the command's deadline_at as deadline_at (gate
// 125), a refused one is reported (command_signature_misaddressed,
// _expired, ...) and publishes no result, as upstream; any other kind is
// dropped as malformed, with no result and no signature event.
//
// # Durability
//
// Results, started events, obs events and inventory reports go through
// outbox.Outbox: stored with fsync before the agent moves on, deleted only
// on JetStream's PubAck, published with a Nats-Msg-Id fixed at enqueue. A
// result that cannot be stored (full disk) is held and retried, never
// dropped while the agent runs.
//
// # Reporting
//
// Heartbeats (core NATS, never queued while disconnected, with the outbox
// backlog) go out at once at start, then every heartbeat_interval; a new
// interval starts with a heartbeat at once, as upstream's ticker does. Each
// carries the agent's own load (agent_cpu_pct from the second heartbeat
// on: the first has no baseline; RSS; disk bytes read and written since
// the process started), the last interactive logon (Windows only, from the
// LogonUI registry key), the command keys, enforcement and the command
// signature protocols. Intervals below their floors (wire.Min*) are raised
// to them, so a config cannot make the agent spin. Also: host performance,
// the inventory (package inventory; off with Options.DisableInventory),
// agent_online at each start (source agent:startup, event_record_id
// startup_<uuid>, payload agent_version and boot_time), events of
// Options.ObsSources, and answers to agents.<pc_id>.ping (a heartbeat
// without the periodic fields, as upstream) and logs.fetch.<pc_id>
// (Options.LogFile). While the agent enforces signatures it answers
// logs.fetch only to a request signed by a keyring key at most five
// minutes ago; anything else gets the one-line reply
// "kanade-agent: logs.fetch refused: <reason>". While process_perf_enabled
// is set and process_perf_expires_at has not passed, the top
// process_perf_top_n processes by CPU go out on process_perf.<pc_id> every
// host_perf_interval (internal/procperf; the first a second after it turns
// on, measured from a baseline), and the loop stops at the expiry by
// itself. job.tail.<pc_id> answers with the live output of a run by
// result_id: the last 128 KiB of its stdout and stderr, kept while it runs
// and for a minute after (at most 32 finished runs); it is signed and
// rate-limited like logs.fetch, a refusal answered found false with the
// reason in "error". Stats gives a host program
// the counters; Config the effective configuration, merged live from the
// agent_config bucket over Options.Defaults (a scope that does not decode,
// or has max_local_concurrent 0, is ignored whole: its key keeps its
// previous value).
//
// # Configuration, groups and gate state
//
// The KV buckets are followed without a JetStream consumer: the agent's
// only consumer on the server is its EXEC replay consumer. Core
// subscriptions on the buckets' subjects announce each change (only
// agent_config's global, pcs.<pc_id> and groups.* keys, this pc's key in
// agent_groups and agent_groups_derived, every key of script_current and
// script_status); the announced key is then read from the stream leader.
// At start and after every reconnect the state is read again in full (the
// config and group keys one by one, the gate buckets by a short-lived
// consumer deleted after the walk); a read that fails part way keeps the
// previous state, and a key deleted while the agent was away is noticed.
// The gate state counts as live from that read until the next disconnect.
// One goroutine applies every change, so the effective groups and config
// follow the buckets in order.
//
// # Local scheduler
//
// Unless Options.DisableScheduler, the agent runs its own `runs_on: agent`
// schedules (package scheduler): it follows KV buckets schedules, jobs and
// fleet_config (key freeze) as it follows the others (core subscriptions,
// full re-read after every reconnect, a partial read keeps the previous
// state), keeps them in <DataDir>/scheduler so they fire while the broker
// is down and after a restart without one, and runs each fire's command
// (new request_id and exec_id) through the pipeline above with the
// version pin skipped; its result goes to the results outbox like any
// other. Script objects are cached by SHA-256 in <DataDir>/script_cache (every
// command benefits: a cached object is not fetched again). The agent fires
// the startup trigger when Run starts (once per OS boot) and network_change
// itself when the network configuration changes (package internal/netwatch:
// a link up or down, an address added or removed, a default route changed;
// Options.DisableNetworkWatch turns that off); the host program signals
// logon, lock and unlock (and may signal network_change) with Agent.Trigger.
//
// # Self-update
//
// With Options.SelfUpdate the agent follows target_version: it installs
// the release from agent_releases (digest and, with
// Options.ReleaseKeyringFile, signature checked), waits up to
// Options.UpdateRestartWait for running commands, and Run returns
// ErrRestart, whose ExitCode (64) asks the service manager for a restart.
// The boot sentinel that rolls back a release that cannot start must run
// first thing in the process; the daemon does it (internal/update.Boot), so
// self-update is meant for the daemon, and off by default here.
package agent
