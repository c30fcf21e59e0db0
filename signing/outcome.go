package signing

// Outcome is the result of checking a command's signature. Its string form
// is the suffix of the ObsEvent kind reporting it, e.g. "unknown_key" for
// command_signature_unknown_key. The strings are upstream kanade's (see
// docs/protocol.md): the first six for every command, the last four for
// upstream's v2 envelope (CheckEnvelope); this agent also reaches
// misaddressed and clock_ahead with its subject-bound form and its clock
// allowance.
type Outcome string

// The outcomes of Verifier.Check; see the package documentation.
const (
	// OutcomeVerified means the signature verifies under a keyring key and
	// passes the key's policy. Kind command_signature_ok.
	OutcomeVerified Outcome = "ok"
	// OutcomeUnsigned means the message carries none of the four signature
	// headers. Kind command_signature_absent.
	OutcomeUnsigned Outcome = "absent"
	// OutcomeUnprovisioned means the message is signed but the agent holds
	// no keys at all (none provisioned, or the keyring could not be
	// loaded). Kind command_signature_unprovisioned.
	OutcomeUnprovisioned Outcome = "unprovisioned"
	// OutcomeUnknownKid means the message is signed by a kid the agent does
	// not hold while it holds others, even after a reload. Kind
	// command_signature_unknown_key.
	OutcomeUnknownKid Outcome = "unknown_key"
	// OutcomeInvalid means malformed signature headers, an unsupported
	// algorithm, a signature that does not verify, or a form the key
	// refuses (require_bound). Kind command_signature_invalid.
	OutcomeInvalid Outcome = "invalid"
	// OutcomeStale means an authentic signature outside its key's max age.
	// Kind command_signature_stale.
	OutcomeStale Outcome = "stale"
	// OutcomeClockAhead means an authentic signature dated more than
	// MaxClockAhead after the agent's clock (upstream: only for v2
	// envelopes). Kind command_signature_clock_ahead.
	OutcomeClockAhead Outcome = "clock_ahead"
	// OutcomeMisaddressed means an authentic subject-bound signature made
	// for another subject than the one the message arrived on (a command
	// for one PC replayed to another), or an authentic v2 envelope for
	// another pc_id. Kind command_signature_misaddressed.
	OutcomeMisaddressed Outcome = "misaddressed"
	// OutcomeExpired means an authentic v2 envelope whose start deadline
	// (or break-glass key age) has passed. Kind command_signature_expired.
	OutcomeExpired Outcome = "expired"
	// OutcomeEnvelopeRejected means an authentic v2 envelope that is
	// structurally unacceptable: no recipient or expiry, a reversed range,
	// a validity over MaxEnvelopeValidity, an unknown field or an
	// unreadable command. Kind command_signature_envelope_rejected.
	OutcomeEnvelopeRejected Outcome = "envelope_rejected"
)

// KindPrefix starts the kind of every ObsEvent about command signatures.
const KindPrefix = "command_signature_"

// KindAudit is the kind of the ObsEvent reporting one use of a key with
// audit_every_use (see AuditEvent). It is this agent's own: upstream only
// logs such a use.
const KindAudit = KindPrefix + "audit"

// Outcomes lists every Outcome, for tests and metrics.
func Outcomes() []Outcome {
	return []Outcome{OutcomeVerified, OutcomeUnsigned, OutcomeUnprovisioned, OutcomeUnknownKid,
		OutcomeInvalid, OutcomeStale, OutcomeClockAhead, OutcomeMisaddressed, OutcomeExpired, OutcomeEnvelopeRejected}
}

// Kind returns the ObsEvent kind reporting a change to o, e.g.
// "command_signature_absent".
func (o Outcome) Kind() string { return KindPrefix + string(o) }

// String returns o as a string, e.g. "unknown_key".
func (o Outcome) String() string { return string(o) }

// Advice returns what an operator should do about a command refused with
// outcome o, for the refusal's stderr (upstream puts such advice there too);
// "" for OutcomeVerified.
func (o Outcome) Advice() string {
	switch o {
	case OutcomeVerified:
		return ""
	case OutcomeUnsigned:
		return "the command carried no signature and this agent requires one: sign it (kanade exec --key) or have the backend sign"
	case OutcomeUnprovisioned:
		return "this agent holds no command signing keys, so nothing can be verified: provision " + keyringLocation()
	case OutcomeUnknownKid:
		return "signed by a key this agent does not have; it probably missed a key rotation: re-provision its keyring"
	case OutcomeInvalid:
		return "the signature does not match the message: it was altered on the way, or signed by another key than the one it names"
	case OutcomeStale:
		return "the signature is outside its key's max age: compare this machine's clock with the signer's before assuming a replay, then re-issue the command"
	case OutcomeClockAhead:
		return "the signature is dated ahead of this machine's clock by more than the allowance: check this machine's time"
	case OutcomeMisaddressed:
		return "the command was signed for another target; a command captured and re-sent here is refused by design"
	case OutcomeExpired:
		return "the command's start deadline has passed: re-issue it (if it was issued moments ago, this machine's clock is probably ahead)"
	case OutcomeEnvelopeRejected:
		return "the command envelope is malformed or its validity window is not acceptable: re-issue it"
	}
	return "unknown signature outcome"
}

// keyringLocation names where the keyring is provisioned on this system.
func keyringLocation() string {
	if registrySupported {
		return RegistryKey + `\` + RegistryKeysValue
	}
	return DefaultKeysFile
}
