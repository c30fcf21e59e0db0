package signing

// Outcome is the result of checking a command's signature. Its string form
// is the suffix of the ObsEvent kind reporting it, e.g. "unknown_key" for
// command_signature_unknown_key. The strings are upstream kanade's (see
// docs/protocol.md); only "misaddressed" and "clock_ahead" are reached
// solely through this agent's subject-bound signatures or its clock check.
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
	// MaxClockAhead after the agent's clock. Kind command_signature_clock_ahead.
	OutcomeClockAhead Outcome = "clock_ahead"
	// OutcomeMisaddressed means an authentic subject-bound signature made
	// for another subject than the one the message arrived on (a command
	// for one PC replayed to another). Kind command_signature_misaddressed.
	OutcomeMisaddressed Outcome = "misaddressed"
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
		OutcomeInvalid, OutcomeStale, OutcomeClockAhead, OutcomeMisaddressed}
}

// Kind returns the ObsEvent kind reporting a change to o, e.g.
// "command_signature_absent".
func (o Outcome) Kind() string { return KindPrefix + string(o) }

// String returns o as a string, e.g. "unknown_key".
func (o Outcome) String() string { return string(o) }
