// Package signing signs kanade commands and verifies their signatures, as
// upstream kanade does, plus a subject-bound form of this agent's own.
//
// A backend or the kanade CLI calls [Sign] to attach the signature headers
// to a command (or kill) message for the subject it publishes on; the agent
// keeps a [Verifier] and calls [Verifier.Check] with the subject the message
// arrived on, before anything else looks at the command (docs/protocol.md,
// "Command pipeline").
//
// # Wire format
//
// A signed message carries NATS headers (names are case-sensitive):
//
//	Kanade-Sig          standard base64 (padded) of the 64-byte ed25519 signature
//	Kanade-Sig-Kid      the id of the signing key in the agent's keyring
//	Kanade-Sig-Alg      ed25519 (or absent): upstream's unbound form
//	                    ed25519-subject-v1: this agent's subject-bound form
//	Kanade-Sig-At       signing time, decimal milliseconds since the Unix epoch
//	Kanade-Sig-Subject  bound form only: the subject signed for (a hint)
//
// The unbound form signs [UnboundBytes]: at_ms as 8 bytes big-endian, then
// the body. It is valid on every subject, so a command captured on one PC's
// subject runs on any other. The bound form signs [BoundBytes]:
//
//	"kanade-command-sig-v2" 0x00   22 bytes (BoundDomain)
//	at_ms                          8 bytes, big-endian two's complement
//	len(subject)                   4 bytes, big-endian unsigned
//	subject                        the NATS subject, e.g. commands.pc.<pc_id>
//	body                           the rest: the message body
//
// The verifier puts the arrival subject there, so a bound signature made
// for commands.pc.A fails on commands.pc.B. The algorithm header is not
// signed, but it cannot downgrade a signature: the two forms' signed bytes
// never coincide (the bound form starts with 'k', the unbound form with the
// top byte of at_ms, which is 0x00 or 0xff for every accepted time, see
// [MaxAtMillis]), so a bound signature relabelled unbound, or the reverse,
// does not verify. A key can also refuse the unbound form outright
// (require_bound). Kanade-Sig-Subject is read only after verification
// against the arrival subject failed, to tell a genuine signature made for
// another subject (misaddressed) from a forgery (invalid).
//
// # Outcomes
//
// [Verifier.Check] gives one [Outcome]; the ObsEvent kind is
// command_signature_<outcome> ([Outcome.Kind]), upstream's names:
//
//   - ok: verified under a keyring key and within its policy.
//   - absent: none of the signature headers.
//   - unprovisioned: signed, but the agent holds no keys at all.
//   - unknown_key: signed by a kid the agent lacks while holding others,
//     even after reloading the keyring.
//   - invalid: a missing or repeated header, bad base64 or length, a time
//     that is not an integer within years ±9999, an unsupported algorithm,
//     a signature that does not verify, or an unbound signature by a
//     require_bound key.
//   - stale: authentic, but outside the key's max age. Unbound form: as
//     upstream, |now - at| > max age (both sides). Bound form: now - at >
//     max age.
//   - clock_ahead: authentic, but dated more than [MaxClockAhead] (1 h)
//     after the agent's clock (checked after stale for the unbound form).
//   - misaddressed: an authentic bound signature for another subject, or
//     an authentic v2 envelope for another pc_id.
//   - expired: an authentic v2 envelope past its start deadline (the
//     earlier of expires_at and the command's deadline_at) or past a
//     break-glass key's max age.
//   - envelope_rejected: an authentic v2 envelope with no recipient or
//     expiry, an unknown field, an unreadable command, expires_at before the
//     signing time or more than [MaxEnvelopeValidity] (7 days) after it.
//
// The checks run in upstream's order (headers, algorithm, kid lookup,
// signature, then time), so stale, clock_ahead and misaddressed only ever
// describe an authentic message. Check never panics, whatever the headers
// hold; oversized values are rejected by length before being decoded.
//
// # Upstream's v2 envelope
//
// Upstream kanade also sends a command wrapped in a signed envelope,
// {"kind":"kanade.command.v2","target_pc_id":"PC-A","expires_at":"<RFC 3339>",
// "command":{...}}, signed with the same headers over the exact body. A
// payload that is a JSON object with a "kind" key ([IsEnvelope]) must go to
// [Verifier.CheckEnvelope], never be decoded as a bare command; an unknown
// kind is refused without being reported ([ErrUnknownKind]). An envelope is
// refused unless it verifies, whether or not enforcement is requested, and
// a refused one gets no result (it may not be this agent's). The heartbeat's
// command_protocols is then [CommandProtocols]: ["legacy",
// "kanade.command.v2"].
//
// # Keyring
//
// A keyring document is a JSON array of [Entry]:
//
//	[{"kid":"backend-1","public_key":"<base64 of 32 bytes>","label":"backend",
//	  "max_age_secs":900,"audit_every_use":true,"require_bound":true}]
//
// kid and public_key are required; label defaults to the kid. As upstream,
// an entry with max_age_secs (a non-negative integer; null means absent) is
// a break-glass key: every use is audited, and 0 accepts only a signature
// checked in the very millisecond it was made. Without max_age_secs a key
// gets [DefaultMaxAge] (6 days, shorter than the EXEC stream's 7-day
// retention; upstream has no bound) and audits only with audit_every_use.
// require_bound is this agent's own. [] is an empty keyring; a malformed
// document fails as a whole.
//
// [Sources] reads it as upstream does: on Windows the REG_SZ registry value
// HKLM\SOFTWARE\kanade\agent\CommandKeys, elsewhere the file
// /etc/kanade/command-keys.json ([DefaultSources]). Enforcement is requested
// by the registry value RequireSignedCommands or the file
// /etc/kanade/require-signed-commands holding 1, true or yes
// ([Sources.EnforceRequested]). Files are refused when they or their
// directory are owned by another user than root (or the agent's own) or are
// writable by group or others (fsutil.CheckTrusted).
//
// The verifier reloads the keyring when a signature names an unknown kid, at
// most every 30 s (every 1 s while enforcing), and on [Verifier.Refresh]
// ([Verifier.Heartbeat]), which the agent calls every heartbeat so that
// revoking a key takes effect within a heartbeat interval.
// An unchanged document is not parsed again; an absent one empties the
// keyring; an unreadable or invalid one leaves the keyring as it was.
//
// # Enforcing
//
// When enforcement is requested, only ok commands run; the others get an
// ExecResult with exit code wire.ExitRefused (123) and result_id
// [RefusalResultID], and do not use up their dedup entry. Unlike upstream,
// which declines to enforce with an empty keyring, an enforcing verifier
// with no keys (none provisioned, an empty array, or a keyring that cannot
// be read) refuses every command (absent or unprovisioned), logs that
// loudly, and keeps reporting enforcing: true in the heartbeat. Provision
// the keys out of band (registry, file): the agent reloads them without a
// restart. [Outcome.Advice] words what to do for the refusal's stderr. When not
// enforcing, every command runs but its outcome is still reported.
//
// # Observations
//
// Each change of outcome (not each message) is reported as an ObsEvent of
// kind command_signature_<outcome>, source "command_signature", payload
// [Payload] ({"from": previous kind or null, "to": kind, ...}) and
// event_record_id [RecordID] ("<kind>:<at_ms>"), as upstream does; a
// [Tracker] decides and builds it. Every check that names a key with
// audit_every_use is also reported, whatever its outcome, by an ObsEvent of
// kind command_signature_audit ([AuditEvent]; upstream only logs it).
package signing
