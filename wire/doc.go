// Package wire holds the JSON types of the kanade agent protocol
// (see docs/protocol.md): commands sent to agents, the results, events,
// heartbeats, host performance samples and inventory reports agents send
// back, and the documents kept in the configuration buckets.
//
// # Upstream compatibility
//
// The types follow upstream kanade's Rust serde types where upstream
// defines them: the same field names and JSON types, the same field order,
// and the same choice between omitting an unset field and sending it as
// null. Fields upstream does not have are marked (ours) and come last, so
// [Marshal] writes upstream's bytes followed by ours. Floats are written as
// serde_json writes an f64 ("1.0", null for NaN).
//
// Durations are humantime strings ("0s", "5min", "1h 30m", "2days"), read
// by [ParseDuration] and written by [FormatDuration]. A malformed
// staleness max_cache_age reads as 0 (fail closed); a malformed ConfigScope
// duration gives the built-in default; intervals have floors
// ([MinHeartbeatInterval] and friends) so no scope can make a fleet spin.
//
// # Decoding
//
// Decode functions ([DecodeCommand] and friends) and [Unmarshal] decode as
// serde does, not as encoding/json does: a key matches a field only in its
// exact case (any other spelling, "SCRIPT" or "ſcript", is an unknown field
// and is ignored), and a struct field given twice is an error, at every
// nesting level. Unknown fields are ignored, so a newer backend can add
// fields. Malformed JSON and documents that break the protocol's rules give
// an error that wraps [ErrInvalid] and says what is wrong. Nothing in this
// package panics on input from the network.
//
// # Job manifest hints
//
// A [Command] carries upstream's job-manifest hints typed: [Emit] (with
// upstream's documentation-only watermark_path), [CheckHint], [CollectHint]
// and [FinalizeCommand]. They decode with upstream's defaults
// (status_field "status", detail_field "detail", fleet and health true,
// files_field "files", run_as "system") and required fields (a hint
// without its name, a finalize without shell, script or timeout_secs is an
// error, as serde's), and encode as upstream's serde derive does. A check
// or collect job's stdout payload is read with [FencedPayload]; a collect
// max_size with [ParseSize]; the agent's health-check result is a [Check].
package wire
