// Package wire holds the JSON types of the kanade agent protocol
// (see PROTOCOL.md): commands sent to agents, the results, events, heartbeats,
// host performance samples and inventory reports agents send back, and the
// documents kept in the configuration buckets.
//
// The types are plain structs whose json tags are the contract: field names
// are snake_case and optional fields are omitted when empty. Decode functions
// ([DecodeCommand] and friends) ignore unknown fields, so a newer backend can
// add fields, but reject malformed JSON and documents that break the
// protocol's rules with an error that says what is wrong. Nothing in this
// package panics on input from the network.
package wire
