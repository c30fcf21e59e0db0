package signing

// Outcome is the result of checking a command's signature. Its string form
// is the suffix of the ObsEvent kind, e.g. "unknown_kid".
type Outcome string

// The outcomes of Verifier.Check; see the package documentation.
const (
	// OutcomeVerified means the signature verifies under a keyring key and is in time.
	OutcomeVerified Outcome = "verified"
	// OutcomeUnsigned means there is no Kanade-Sig header.
	OutcomeUnsigned Outcome = "unsigned"
	// OutcomeUnknownKid means the headers are well-formed but the kid is not in the keyring.
	OutcomeUnknownKid Outcome = "unknown_kid"
	// OutcomeInvalid means malformed signature headers or a signature that does not verify.
	OutcomeInvalid Outcome = "invalid"
	// OutcomeStale means an authentic signature older than the key's max_age_secs.
	OutcomeStale Outcome = "stale"
	// OutcomeClockAhead means an authentic signature more than MaxClockAhead in the future.
	OutcomeClockAhead Outcome = "clock_ahead"
)

// KindPrefix starts the kind of every ObsEvent about command signatures.
const KindPrefix = "command_signature_"

// Outcomes lists every Outcome, for tests and metrics.
func Outcomes() []Outcome {
	return []Outcome{OutcomeVerified, OutcomeUnsigned, OutcomeUnknownKid, OutcomeInvalid, OutcomeStale, OutcomeClockAhead}
}

// Kind returns the ObsEvent kind reporting a change to o, e.g.
// "command_signature_unsigned".
func (o Outcome) Kind() string { return KindPrefix + string(o) }

// String returns o as a string, e.g. "clock_ahead".
func (o Outcome) String() string { return string(o) }
