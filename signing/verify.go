package signing

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// MaxClockAhead is how far after the agent's clock Kanade-Sig-At may be
// before an authentic signature is clock_ahead (upstream's
// FUTURE_SKEW_ALLOWANCE). Exactly MaxClockAhead ahead is still accepted.
const MaxClockAhead = time.Hour

// DefaultReloadInterval is the least time between two keyring reloads
// triggered by signatures with an unknown kid (upstream RELOAD_MIN_INTERVAL):
// anyone who can publish a command can name a kid, so the trigger is
// rate-limited.
const DefaultReloadInterval = 30 * time.Second

// DefaultEnforcingReloadInterval replaces DefaultReloadInterval when
// enforcement is requested, since a skipped reload then refuses a command
// (upstream RELOAD_FORCED_MIN_INTERVAL).
const DefaultEnforcingReloadInterval = time.Second

// Decision is the full result of Verifier.Check on one message.
type Decision struct {
	// Outcome is what the check found.
	Outcome Outcome
	// Kid is the Kanade-Sig-Kid header, made safe to log (valid UTF-8, at
	// most 64 bytes); empty when absent.
	Kid string
	// Label and Fingerprint describe the keyring key the kid named; empty
	// when no key matched.
	Label, Fingerprint string
	// Bound is set when the message used the subject-bound form.
	Bound bool
	// Subject is the arrival subject the check was made for, made safe to log.
	Subject string
	// Reason explains an outcome other than verified in a short phrase of
	// the package's own words; header values appear only shortened.
	Reason string
	// At is the signing time when Kanade-Sig-At parsed, else zero.
	At time.Time
	// Audit is set when the key the kid named has audit_every_use: the
	// agent must report this use (see AuditEvent), whatever the outcome.
	Audit bool
	// Reload says what an unknown kid made the verifier do: "reloaded",
	// "unchanged", "rate-limited", "reload-failed"; empty otherwise.
	Reload string
	// Enforcing is whether enforcement was requested at the time of the
	// check. It does not depend on the keyring: an enforcing verifier with
	// no keys refuses every command.
	Enforcing bool
	// Allowed is whether the command may go on: not enforcing, or verified.
	// When false the agent refuses it with exit code 123.
	Allowed bool
}

// KeySource reads a keyring document (a JSON array of Entry) for a
// Verifier, at start and on every reload. Sources is the standard one.
type KeySource interface {
	// ReadKeys returns the document. present is false when nothing is
	// provisioned, which is an empty keyring; an error means the source
	// exists but cannot be used (the verifier then keeps the keys it has).
	ReadKeys() (doc []byte, present bool, err error)
	// String names the source for logs and errors.
	String() string
}

// Options configure a Verifier made by New.
type Options struct {
	// Source is where the keyring is read from at start, when a signature
	// names an unknown kid (rate-limited), and on Refresh. Nil means the
	// fixed Keyring, never reloaded.
	Source KeySource
	// Keyring is the keyring when Source is nil; nil means empty.
	Keyring *Keyring
	// Enforce requests enforcement: only verified commands may run. With
	// no keys (none provisioned, or the keyring unreadable) every command
	// is then refused.
	Enforce bool
	// ReloadInterval is the least time between two reloads triggered by an
	// unknown kid. Default: DefaultReloadInterval.
	ReloadInterval time.Duration
	// EnforcingReloadInterval replaces ReloadInterval while Enforce is set.
	// Default: DefaultEnforcingReloadInterval.
	EnforcingReloadInterval time.Duration
	// Log receives load, reload and enforcement messages. Default: slog.Default().
	Log *slog.Logger
}

// Verifier checks command signatures against a keyring and decides whether a
// command may run. Its methods are safe for concurrent use; a check sees one
// snapshot of the keyring and the enforcement switch.
type Verifier struct {
	keyring   atomic.Pointer[Keyring]
	enforcing atomic.Bool
	emptyWarn atomic.Bool // the empty-keyring-while-enforcing error was logged
	src       KeySource
	log       *slog.Logger
	interval  time.Duration
	forced    time.Duration

	rlMu       sync.Mutex
	lastReload time.Time

	mu          sync.Mutex // serialises pulls
	loaded      bool       // lastDoc/lastPresent describe the keyring
	lastDoc     []byte
	lastPresent bool
	loadErr     error
}

// New returns a verifier configured by o. With a Source it loads the keyring
// now; a failure is logged loudly and kept (LoadError), the verifier starts
// with no keys, and, when enforcing, refuses every command until a reload
// succeeds.
func New(o Options) *Verifier {
	v := &Verifier{src: o.Source, log: o.Log, interval: o.ReloadInterval, forced: o.EnforcingReloadInterval}
	if v.log == nil {
		v.log = slog.Default()
	}
	if v.interval <= 0 {
		v.interval = DefaultReloadInterval
	}
	if v.forced <= 0 {
		v.forced = DefaultEnforcingReloadInterval
	}
	v.enforcing.Store(o.Enforce)
	v.keyring.Store(o.Keyring)
	v.lastReload = time.Now()
	if v.src != nil {
		v.keyring.Store(&Keyring{})
		if err := v.pull().err; err != nil {
			v.log.Error("command keyring could not be loaded: starting with no keys", "source", v.src.String(), "err", err, "enforcing", o.Enforce)
		}
	}
	v.warnEmpty(v.keyring.Load())
	return v
}

// NewVerifier returns a verifier with the fixed keyring k (nil means empty),
// never reloaded, and enforcement requested when enforcing.
func NewVerifier(k *Keyring, enforcing bool) *Verifier {
	return New(Options{Keyring: k, Enforce: enforcing})
}

// SetKeyring replaces the keyring; nil means empty. A later reload from the
// Source replaces it in turn.
func (v *Verifier) SetKeyring(k *Keyring) {
	v.keyring.Store(k)
	v.warnEmpty(k)
}

// Keyring returns the current keyring, never nil.
func (v *Verifier) Keyring() *Keyring {
	if k := v.keyring.Load(); k != nil {
		return k
	}
	return &Keyring{}
}

// Fingerprints returns the current keyring's "kid:fingerprint" list, for
// the heartbeat's command_keys.
func (v *Verifier) Fingerprints() []string { return v.Keyring().Fingerprints() }

// SetEnforcing requests enforcement or not.
func (v *Verifier) SetEnforcing(on bool) {
	v.enforcing.Store(on)
	v.warnEmpty(v.keyring.Load())
}

// Enforcing reports whether enforcement is requested: then only verified
// commands run, and with no keys none does. This is the heartbeat's
// enforcing field. (Upstream declines to enforce with an empty keyring;
// this agent refuses instead, see the package documentation.)
func (v *Verifier) Enforcing() bool { return v.enforcing.Load() }

// Allowed reports whether a command with outcome o may run now: always when
// not enforcing, else only when o is verified.
func (v *Verifier) Allowed(o Outcome) bool {
	return !v.Enforcing() || o == OutcomeVerified
}

// LoadError returns why the last keyring load or reload failed, or nil if
// it succeeded (or there is no Source). After a failed reload the verifier
// keeps the keys it had.
func (v *Verifier) LoadError() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.loadErr
}

// Refresh re-reads the Source, ignoring the rate limit, and adopts what it
// holds if it changed: a document identical to the last one is not parsed
// again; an absent one empties the keyring (revocation); an unreadable or
// invalid one leaves the keyring alone and is returned. The agent calls it
// once per heartbeat (as upstream does), so the heartbeat interval bounds
// how long a revoked key keeps working. Without a Source it does nothing.
func (v *Verifier) Refresh() error {
	if v.src == nil {
		return nil
	}
	return v.pull().err
}

// Heartbeat refreshes the keyring (see Refresh) and returns what the
// heartbeat reports, read together: command_keys ("kid:fingerprint", sorted)
// and enforcing. err is the refresh error, for the log; the keys are then
// the ones kept. Upstream refreshes on every heartbeat the same way.
func (v *Verifier) Heartbeat() (commandKeys []string, enforcing bool, err error) {
	err = v.Refresh()
	return v.Fingerprints(), v.Enforcing(), err
}

// Check verifies the signature headers hdr (nil means none) over body for
// the subject the message arrived on, at time now, and decides whether the
// command may run. An unknown kid makes it reload the keyring first when
// the rate limit allows (see Options). It never panics, whatever hdr holds.
func (v *Verifier) Check(subject string, hdr nats.Header, body []byte, now time.Time) Decision {
	d, k := v.withReload(now, func(k *Keyring) (Decision, bool) { return check(k, subject, hdr, body, now) })
	d.Enforcing = v.enforcing.Load()
	d.Allowed = !d.Enforcing || d.Outcome == OutcomeVerified
	if d.Enforcing {
		v.warnEmpty(k)
	}
	return d
}

// withReload runs check against the keyring and, when it reports an unknown
// kid, reloads the keyring if the rate limit allows and runs it again. A kid
// still unknown gives unprovisioned (no keys) or unknown_key. It returns the
// keyring the decision was made against.
func (v *Verifier) withReload(now time.Time, check func(*Keyring) (Decision, bool)) (Decision, *Keyring) {
	k := v.keyring.Load()
	d, unknown := check(k)
	if !unknown {
		return d, k
	}
	r := v.reloadIfDue(now)
	if r.name == reloadDone {
		k = v.keyring.Load()
		d, unknown = check(k)
	}
	d.Reload = r.name
	if unknown {
		if k.Len() == 0 {
			d.Outcome, d.Reason = OutcomeUnprovisioned, "signed, but this agent holds no command keys"
		} else {
			d.Outcome, d.Reason = OutcomeUnknownKid, "kid not in keyring"
		}
	}
	return d, k
}

// warnEmpty logs, once per change to that state, that enforcement is
// requested with no keys.
func (v *Verifier) warnEmpty(k *Keyring) {
	if !v.enforcing.Load() || k.Len() > 0 {
		v.emptyWarn.Store(false)
		return
	}
	if !v.emptyWarn.Swap(true) {
		src := "none"
		if v.src != nil {
			src = v.src.String()
		}
		v.log.Error("ENFORCING command signatures with NO command keys: every command is refused until a keyring is provisioned", "source", src)
	}
}

const (
	reloadDone        = "reloaded"
	reloadUnchanged   = "unchanged"
	reloadRateLimited = "rate-limited"
	reloadFailed      = "reload-failed"
)

type reloadResult struct {
	name string
	err  error
}

// reloadIfDue pulls the keyring unless one was pulled for an unknown kid
// less than the rate limit ago. A clock that went back counts as due.
func (v *Verifier) reloadIfDue(now time.Time) reloadResult {
	if v.src == nil {
		return reloadResult{name: reloadUnchanged}
	}
	floor := v.interval
	if v.enforcing.Load() {
		floor = v.forced
	}
	v.rlMu.Lock()
	if !now.Before(v.lastReload) && now.Sub(v.lastReload) < floor {
		v.rlMu.Unlock()
		return reloadResult{name: reloadRateLimited}
	}
	v.lastReload = now
	v.rlMu.Unlock()
	return v.pull()
}

// pull reads the source and adopts its keyring if it changed.
func (v *Verifier) pull() reloadResult {
	v.mu.Lock()
	defer v.mu.Unlock()
	doc, present, err := v.src.ReadKeys()
	if err != nil {
		v.loadErr = err
		if v.loaded {
			v.log.Warn("command keyring reload failed: keeping the keys already loaded", "source", v.src.String(), "err", err)
		}
		return reloadResult{name: reloadFailed, err: err}
	}
	if v.loaded && present == v.lastPresent && bytes.Equal(doc, v.lastDoc) {
		v.loadErr = nil
		return reloadResult{name: reloadUnchanged}
	}
	k := &Keyring{}
	if present {
		k, err = parseSource(doc, v.src.String())
		if err != nil {
			v.loadErr = err
			if v.loaded {
				v.log.Warn("command keyring changed but is invalid: keeping the keys already loaded", "source", v.src.String(), "err", err)
			}
			return reloadResult{name: reloadFailed, err: err}
		}
	}
	v.keyring.Store(k)
	v.lastDoc, v.lastPresent, v.loaded, v.loadErr = bytes.Clone(doc), present, true, nil
	v.log.Info("command keyring loaded", "source", v.src.String(), "kids", k.Kids())
	v.warnEmpty(k)
	return reloadResult{name: reloadDone}
}

// authStatus says how far authenticate got.
type authStatus int

const (
	authDone    authStatus = iota // the decision is final
	authUnknown                   // the kid is not in the keyring
	authOK                        // authentic; the time policy remains
)

// authenticate checks the headers and the signature over body for subject
// against k, without any time policy. With envelope set, a require_bound
// key accepts the unbound form (an upstream v2 envelope names its recipient
// in the signed body).
func authenticate(k *Keyring, subject string, hdr nats.Header, body []byte, envelope bool) (d Decision, key Key, atMs int64, st authStatus) {
	d = Decision{Outcome: OutcomeInvalid, Subject: shorten(subject)}
	if len(hdr[HeaderSig]) == 0 && len(hdr[HeaderKid]) == 0 && len(hdr[HeaderAlg]) == 0 &&
		len(hdr[HeaderAt]) == 0 && len(hdr[HeaderSubject]) == 0 {
		d.Outcome, d.Reason = OutcomeUnsigned, "no signature headers"
		return d, key, 0, authDone
	}
	invalid := func(reason string) (Decision, Key, int64, authStatus) {
		d.Reason = reason
		return d, key, atMs, authDone
	}
	kid, why := single(hdr, HeaderKid)
	if why != "" {
		return invalid(why)
	}
	d.Kid = shorten(kid)
	sig, why := single(hdr, HeaderSig)
	if why != "" {
		return invalid(why)
	}
	atStr, why := single(hdr, HeaderAt)
	if why != "" {
		return invalid(why)
	}
	atMs, ok := parseAt(atStr)
	if !ok {
		return invalid(HeaderAt + " is not decimal milliseconds since the epoch within years 1..9999")
	}
	d.At = time.UnixMilli(atMs)
	switch algs := hdr[HeaderAlg]; {
	case len(algs) == 0 || (len(algs) == 1 && algs[0] == AlgEd25519):
	case len(algs) == 1 && algs[0] == AlgEd25519Subject:
		d.Bound = true
	case len(algs) > 1:
		return invalid("repeated " + HeaderAlg + " header")
	default:
		return invalid(fmt.Sprintf("unsupported %s %q", HeaderAlg, shorten(algs[0])))
	}
	if len(kid) > MaxKidLen {
		return invalid(fmt.Sprintf("%s is %d bytes, at most %d", HeaderKid, len(kid), MaxKidLen))
	}
	key, ok = k.Lookup(kid)
	if !ok {
		return d, key, atMs, authUnknown
	}
	d.Label, d.Fingerprint, d.Audit = shorten(key.Label), key.Fingerprint, key.AuditEveryUse
	if len(sig) != sigB64Len {
		return invalid(fmt.Sprintf("%s is %d bytes, want %d", HeaderSig, len(sig), sigB64Len))
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(sig)
	if err != nil || len(raw) != ed25519.SignatureSize {
		return invalid(HeaderSig + " is not standard base64 of 64 bytes")
	}
	if d.Bound {
		if !ed25519.Verify(key.PublicKey, BoundBytes(atMs, subject, body), raw) {
			claimed, why := single(hdr, HeaderSubject)
			if why == "" && claimed != subject && ValidSubject(claimed) == nil &&
				ed25519.Verify(key.PublicKey, BoundBytes(atMs, claimed, body), raw) {
				d.Outcome = OutcomeMisaddressed
				d.Reason = fmt.Sprintf("signed for subject %q, arrived on %q", shorten(claimed), d.Subject)
				return d, key, atMs, authDone
			}
			return invalid("signature does not verify for this subject and body")
		}
		return d, key, atMs, authOK
	}
	if key.RequireBound && !envelope {
		return invalid("key requires subject-bound signatures (" + HeaderAlg + ": " + AlgEd25519Subject + ")")
	}
	if !ed25519.Verify(key.PublicKey, UnboundBytes(atMs, body), raw) {
		return invalid("signature does not verify for this body")
	}
	return d, key, atMs, authOK
}

// check does the work of Check against one keyring, except the decision and
// the reload. unknown is set when the kid is not in k; the outcome is then
// to be decided by the caller.
func check(k *Keyring, subject string, hdr nats.Header, body []byte, now time.Time) (d Decision, unknown bool) {
	d, key, _, st := authenticate(k, subject, hdr, body, false)
	switch st {
	case authUnknown:
		return d, true
	case authDone:
		return d, false
	}
	if d.Bound {
		if ahead := d.At.Sub(now); ahead > MaxClockAhead {
			d.Outcome = OutcomeClockAhead
			d.Reason = fmt.Sprintf("signed %s ahead of the agent's clock, at most %s", ahead.Round(time.Second), MaxClockAhead)
			return d, false
		}
		if age := now.Sub(d.At); age > key.MaxAge {
			d.Outcome = OutcomeStale
			d.Reason = fmt.Sprintf("signed %s ago, key allows %s", age.Round(time.Millisecond), key.MaxAge)
			return d, false
		}
		d.Outcome, d.Reason = OutcomeVerified, ""
		return d, false
	}
	// Upstream's rule for the unbound form: the key's bound applies to
	// both sides of the agent's clock.
	if age := now.Sub(d.At); age > key.MaxAge || -age > key.MaxAge {
		d.Outcome = OutcomeStale
		d.Reason = fmt.Sprintf("signed %s from the agent's clock, key allows %s", age.Abs().Round(time.Millisecond), key.MaxAge)
		return d, false
	}
	if ahead := d.At.Sub(now); ahead > MaxClockAhead {
		d.Outcome = OutcomeClockAhead
		d.Reason = fmt.Sprintf("signed %s ahead of the agent's clock, at most %s", ahead.Round(time.Second), MaxClockAhead)
		return d, false
	}
	d.Outcome, d.Reason = OutcomeVerified, ""
	return d, false
}

// single returns the one value of header name, or a reason why there is not
// exactly one.
func single(hdr nats.Header, name string) (value, reason string) {
	vs := hdr[name]
	switch {
	case len(vs) == 0:
		return "", "missing " + name + " header"
	case len(vs) > 1:
		return "", "repeated " + name + " header"
	}
	return vs[0], ""
}

// parseAt parses Kanade-Sig-At as upstream does (a decimal i64, optional
// sign) and accepts it when its magnitude is at most MaxAtMillis.
func parseAt(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 20 {
		return 0, false
	}
	digits := s
	if digits[0] == '+' || digits[0] == '-' {
		digits = digits[1:]
	}
	if digits == "" {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > MaxAtMillis || n < -MaxAtMillis {
		return 0, false
	}
	return n, true
}
