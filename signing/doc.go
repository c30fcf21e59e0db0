// Package signing signs kanade commands and verifies their signatures.
//
// A backend or CLI calls [Sign] to attach the signature headers to a command
// message; the agent keeps a [Verifier] and calls [Verifier.Check] on every
// command before anything else looks at it (PROTOCOL.md, "Command pipeline"
// step 2).
//
// # Wire format
//
// A signed message carries four NATS headers (header names are
// case-sensitive, as in nats.go):
//
//	Kanade-Sig      standard base64 (padded) of the 64-byte ed25519 signature
//	Kanade-Sig-Kid  the id of the signing key in the agent's keyring
//	Kanade-Sig-Alg  ed25519
//	Kanade-Sig-At   when it was signed, decimal milliseconds since the Unix epoch
//
// The signed bytes are at_ms as 8 bytes big-endian followed by the raw
// message body ([SignedBytes]). Each header must appear at most once.
//
// # Outcomes
//
// [Verifier.Check] gives one [Outcome]:
//
//   - verified: the signature verifies under the named key, it is not stale
//     and not from the future.
//   - unsigned: there is no Kanade-Sig header.
//   - unknown_kid: well-formed, but the kid is not in the keyring.
//   - invalid: anything malformed (bad base64, wrong length, wrong or missing
//     algorithm, bad or missing timestamp, missing kid, a repeated header) or
//     a signature that does not verify (e.g. a tampered body).
//   - stale: the signature verifies but at_ms is older than the key's
//     max_age_secs (only when set).
//   - clock_ahead: the signature verifies but at_ms is more than [MaxClockAhead]
//     (1 h) ahead of the agent's clock.
//
// The time checks come after the signature check, so stale and clock_ahead
// only ever describe an authentic message; a forged timestamp is invalid.
// Check never panics, whatever the headers hold: oversized values are
// rejected by length before being decoded.
//
// # Enforcing
//
// Enforcing is a config switch ([Verifier.SetEnforcing]) and applies only
// when the keyring is non-empty: an empty keyring never enforces. When
// enforcing, only verified commands are allowed; refused ones get an
// ExecResult with exit code wire.ExitRefused (123) and result_id
// [RefusalResultID], and do not use up their dedup entry. When not enforcing,
// every command is allowed but the outcome is still observed. The keyring and
// the switch can be changed at any time from any goroutine; config changes
// apply live.
//
// # Keyring
//
// A keyring is a JSON array of wire.KeyringEntry. It is loaded from a file
// ([LoadFile]) and, on Windows, from the registry ([LoadRegistry],
// [RegistryPath]); [Load] reads both and merges them with [Merge], where the
// file wins a kid conflict. See [LoadRegistry] for the registry layout.
// [Keyring.Fingerprints] gives the heartbeat's command_keys list.
//
// # Observations
//
// Each change of outcome (not each message) is reported by the agent as an
// ObsEvent of kind command_signature_<outcome> ([Outcome.Kind]) from source
// wire.SourceCommandSign. A [Tracker] decides when the outcome changed and
// builds the event; its payload is a [Payload].
package signing
