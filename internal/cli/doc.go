// Package cli is the kanade operator command line: everything the kanade
// binary (cmd/kanade) does except calling os.Exit, so that tests run it in
// process against an embedded NATS server and real agents. [Main] runs it
// with the process's stdin and environment; [Run] takes them as an [Env].
//
// # Commands
//
//	kanade exec (--pc ID | --group G | --all) [--shell sh|cmd|powershell|pwsh]
//	            [--timeout-secs N] [--exec-id ID] [--key FILE] [--wait D] [--json] SCRIPT... | -
//	kanade ping PC
//	kanade logs PC [--tail N] [--key FILE]
//	kanade kill EXEC_ID [--key FILE]
//	kanade tail PC RESULT_ID [--follow] [--every D] [--key FILE]
//	kanade schedule put FILE | ls [--json] | rm ID
//	kanade job put FILE | ls [--json] | rm ID
//	kanade obs tail [--pc PC] [--since D] [--count N] [--json]
//	kanade provision [--check] [--max-bytes SIZE] [--replicas N]
//	kanade consumer sync [--pc PC ...] [--watch] | ls
//	kanade keygen --kid KID --out FILE [--force] [--label TEXT] [--max-age-secs N]
//	kanade release put --version V --file BINARY [--key FILE] [--force]
//	kanade release ls [--keyring FILE]
//	kanade version
//	kanade help [COMMAND]
//
// exec publishes an ad hoc wire.Command (id "adhoc-run", a new request_id,
// an exec_id that defaults to a new UUID so that kill can name it) with
// core NATS on commands.pc.<ID>, commands.group.<G> or commands.all, signed
// with signing.SignHeader when --key names a key file. Before publishing it
// opens an ordered consumer on stream RESULTS filtered to
// results.<request_id>, so no result is missed. Output an agent offloaded
// to the result_output object store is fetched from there.
//
// ping and logs are requests on agents.<pc>.ping and logs.fetch.<pc>
// ({"tail_lines":N}); kill publishes on kill.<exec_id>. tail is a request
// on job.tail.<pc> (wire.JobTailRequest, reply wire.JobTailReply): the live
// output of one run; --key signs logs, kill and tail requests in the
// subject-bound form, as an enforcing agent requires. schedule and job put
// a JSON document validated with wire.Schedule / wire.Job Validate into KV
// schedules / jobs under its id (job inlines execute.script_file), list and
// delete them (job rm refuses a job a schedule uses and writes REVOKED into
// script_status, as upstream). obs tail follows stream OBS_EVENTS with an
// ordered consumer. provision runs provision.ProvisionWith and lists what
// exists. consumer sync creates and updates the agents' durable EXEC
// consumers agent-<pc> with execconsumer.Config (the agent's own filters
// and settings) for agents run in bind mode, and with --watch follows the
// groups buckets; consumer ls lists them. keygen writes an ed25519 private
// key file ({"kid","private_key"}, read back by [LoadKey]) and prints the
// public wire.KeyringEntry for the agents' keyring. release put publishes a
// binary to the agent_releases object store with update.PutRelease.
//
// # Global flags
//
// --nats-url (KANADE_NATS_URL, default nats://127.0.0.1:4222, a
// comma-separated list), --nats-creds, --nats-nkey, --nats-token,
// --nats-user and --nats-password, --tls-ca, --tls-cert and --tls-key (each
// with its KANADE_* variable, as the agent's), and --timeout
// (KANADE_TIMEOUT, default 30s), which bounds connecting and each request.
// They go before or after the command name; exec takes every flag before
// its script. A flag overrides its variable, which overrides the
// default. The connection is named "kanade-cli".
//
// # Exit codes
//
//   - 0: success.
//   - 1: runtime failure (no connection, missing stream, malformed reply,
//     file errors), printed as one line on stderr.
//   - 2: usage error (bad flag, argument or environment variable).
//   - exec --pc: the script's exit code when it is in 0..255 (the reserved
//     codes 121..127 included: 123 is a refused signature), 1 when it is
//     not (-1: killed, timed out or failed to spawn; Windows codes over
//     255), see [ScriptExitCode]; 2 when no result came within --wait
//     (the agent is offline and the command waits in stream EXEC, or the
//     agent started it and it still runs: exec watches the started events
//     and says which).
//   - exec --group / --all: 0 when every result within --wait had exit
//     code 0, 1 when one did not, 2 when none came.
package cli
