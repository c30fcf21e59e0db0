// Package execconsumer is the one definition of a PC's durable EXEC replay
// consumer agent-<pc_id> (docs/protocol.md, section 3): its name, its
// filter subjects and its configuration. The agent (which creates the
// consumer itself, or in bind mode only binds to it) and the operator CLI
// (kanade consumer sync, which creates and updates it for bind-mode
// agents) both build it here, so the two cannot drift.
//
// The filters are commands.all, commands.pc.<pc_id> and commands.group.<g>
// for each effective group of the PC: the union of its agent_groups and
// agent_groups_derived lists, sorted, without duplicates, a group name that
// cannot be a subject token left out (the agent drops such names too).
// The configuration is deliver policy last per subject, explicit acks, an
// ack wait of AckWait and at most MaxAckPending unacknowledged messages.
package execconsumer
