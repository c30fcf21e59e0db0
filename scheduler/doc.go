// Package scheduler is the agent-side scheduler of `runs_on: agent`
// schedules (upstream kanade's local_scheduler): it fires the schedules
// of KV bucket schedules that target this agent, builds each fire's
// command from the job (manifest) of KV bucket jobs, and hands it to the
// agent's command pipeline, also while the broker is unreachable. See
// docs/protocol.md for the documents ([wire.Schedule], [wire.Job],
// [wire.Freeze]).
//
// # What fires
//
// A schedule runs here when runs_on is agent, enabled is true and its
// target matches the agent (all, its pc id, or one of its groups, read
// at each fire). Its `when` decides the fires:
//
//   - per_pc: polled every Options.PollInterval (upstream: every minute at
//     second 0); it fires until a run exits 0, then never again (once) or
//     again once `every` has passed since that success. Completions are
//     kept by "<schedule>::<job>" in local_completions.json, recorded only
//     when Completed reports exit code 0.
//   - per_target: backend-only; skipped.
//   - calendar: "HH:MM" on days, or a one-shot "YYYY-MM-DD HH:MM", in the
//     schedule's tz (local or utc). Lowered to a 6-field cron with a
//     seconds field ("0 <min> <hour> * * <dow>", robfig/cron/v3), as
//     upstream lowers it for its croner engine; nth ("tue#2") and last
//     ("friL") weekdays are kept as filters. A fire missed while the agent
//     was stopped is not made up for, as upstream.
//   - on: [startup, logon, lock, unlock, network_change]: fired through
//     Trigger. startup fires once per OS boot: the boot time is recorded
//     per schedule in startup_markers.json, and a restart of the agent
//     within the same boot (boot times within 120 s) does not fire again;
//     with starting_deadline, only when the agent came up within that long
//     after boot. The marker is recorded before the gates, as upstream: a
//     startup blocked by a freeze is not deferred. network_change is
//     debounced (Options.NetworkDebounce, 8 s).
//
// # Gates
//
// Each fire passes, in upstream's order: the fleet freeze (KV
// fleet_config key freeze: absent is not frozen; no bounds freezes; a
// value or bound that does not decode freezes), active {from, until}
// ([from, until); an unparseable bound is ignored), constraints.skip_dates
// and constraints.window (in tz; unparseable blocks), constraints.require
// (ac_power, idle, cpu_below, network: every set requirement must hold),
// the job in the cache, the in-flight claim (a fire while the schedule's
// previous run has not completed is skipped; the claim lapses after
// jitter + timeout + retries + 60 s unless Options.Live says the command
// is still queued or running), and the per_pc completion (an every that
// does not parse skips every fire).
//
// # Unsupported (exit 122)
//
// A schedule needing what this agent cannot sense or source fails closed:
// the job does not run, no completion is recorded, and Options.Skip stores
// a skipped result (wire.ExitUnsupported, skipped true; stderr
// UnsupportedNote) so the operator sees why. That is a constraints.require
// whose sensor reports not known (ac_power: no /sys/class/power_supply on
// Linux, ACLineStatus unknown on Windows; idle: no Options.Idle or it
// cannot tell; cpu_below: no CPU sample; network: no routing tables on
// Linux, no or an unknown connectivity hint on Windows), checked at the
// require gate of each fire; and a when.on kind this host never emits
// (not in Options.Events, DefaultEvents by OS, and never passed to
// Trigger), checked whenever Run wakes (a schedule change wakes it; at
// least once a minute) past the freeze and active gates (the
// schedule's other kinds still fire). A machine with no power supply at
// all (a desktop, a server) is on AC, not unsupported. The result is
// reported once per schedule and reason per Scheduler (agent start), so a
// per-minute poll cannot flood the results outbox; a different reason, a
// re-created schedule or a Skip that failed reports again. The schedule
// runs as soon as what it needs becomes supported.
//
// # Commands
//
// A fire builds a command with new request_id and exec_id (UUIDv4) and,
// when the schedule has a starting_deadline, deadline_at = the fire's
// instant + starting_deadline (BuildCommand), so jitter or a wait for a
// slot cannot start it later (exit 125); a starting_deadline that does
// not parse skips the fire. The agent runs it through its pipeline with
// the version pin skipped and reports the outcome with Completed.
//
// # Durable state
//
// Options.Dir holds the last known schedules, jobs (with the SHA-256 of
// their script objects) and freeze, so the scheduler fires while the
// broker is down and after a restart without a broker; the completions;
// and the startup markers. Every file is replaced atomically.
package scheduler
