// Package wire holds the JSON types of the kanade agent protocol
// (see docs/protocol.md): commands sent to agents, the results, events,
// heartbeats, host performance samples and inventory reports agents send
// back, and the documents kept in the configuration buckets.
//
// The types follow upstream kanade's Rust serde types byte for byte where
// upstream defines them: the same field names, JSON types, field order, and
// the same choice between omitting an unset field and sending it as null.
// Fields upstream does not have are marked (ours) and come last. Durations
// are humantime strings ("0s", "5min", "1h 30m", "2days"), read by
// [ParseDuration] and written by [FormatDuration].
//
// Decode functions ([DecodeCommand] and friends) ignore unknown fields, so a
// newer backend can add fields, but reject malformed JSON and documents that
// break the protocol's rules with an error that wraps [ErrInvalid] and says
// what is wrong. Nothing in this package panics on input from the network.
package wire
