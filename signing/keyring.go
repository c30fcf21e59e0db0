package signing

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kanade/kanade-agent/wire"
)

// MaxKidLen is the longest kid, in bytes, a keyring accepts and the verifier
// looks up; a longer Kanade-Sig-Kid header is invalid.
const MaxKidLen = 256

// MaxKeyringSize is the largest keyring file or registry string accepted, in bytes.
const MaxKeyringSize = 1 << 20

// FingerprintLen is the length of a key fingerprint in hex digits.
const FingerprintLen = 16

// DefaultMaxAge is the max age of a key whose entry has no max_age_secs
// (upstream: no bound at all). It is shorter than the 7-day retention of
// the EXEC stream, so a signature always expires before the stream could
// drop the message: nothing the stream replays, or anyone re-publishes from
// a capture, can run once it is older than this, even on an agent whose
// dedup memory is empty (a fresh install; upstream's own argument for
// bounding break-glass keys). The cost, which upstream's documentation
// names as its reason for leaving the ordinary key unbounded, is that an
// agent offline for more than 6 days reports the retained commands it
// missed as stale instead of running them late. Set max_age_secs
// explicitly (e.g. 604800) to choose otherwise.
const DefaultMaxAge = 6 * 24 * time.Hour

// maxMaxAge caps a key's max age so that time arithmetic cannot overflow; a
// larger max_age_secs reads as this (permissive), never as a negative bound.
const maxMaxAge = 100 * 365 * 24 * time.Hour

// Entry is one entry of a keyring document: a JSON array of objects with
// these fields. Field names are matched case-sensitively; unknown fields are
// ignored (as upstream does); a repeated field is an error.
type Entry struct {
	// Kid is the key id sent in the Kanade-Sig-Kid header. Required.
	Kid string `json:"kid"`
	// PublicKey is the standard base64 of the 32-byte ed25519 public key. Required.
	PublicKey string `json:"public_key"`
	// Label is a human description of the key; upstream defaults it to the kid.
	Label string `json:"label,omitempty"`
	// MaxAgeSecs bounds how far a signature's time may be from the agent's
	// clock, in seconds; nil (absent or null) means DefaultMaxAge. As
	// upstream, a present value marks a break-glass key: audit_every_use is
	// then forced on, and 0 accepts only a signature made in the very
	// millisecond it is checked (in effect, every signature is stale).
	MaxAgeSecs *uint64 `json:"max_age_secs,omitempty"`
	// AuditEveryUse reports every use of the key (an ObsEvent of kind
	// KindAudit and a warning in the log). Forced on when MaxAgeSecs is set.
	AuditEveryUse bool `json:"audit_every_use,omitempty"`
	// RequireBound refuses upstream's unbound signature form for this key:
	// only subject-bound signatures verify. This agent's own field.
	RequireBound bool `json:"require_bound,omitempty"`
}

// Key is one verified entry of a Keyring.
type Key struct {
	// Kid is the key id, as sent in Kanade-Sig-Kid.
	Kid string
	// PublicKey is the 32-byte ed25519 public key.
	PublicKey ed25519.PublicKey
	// Label is the entry's label, or its kid when it has none.
	Label string
	// MaxAge bounds a signature's age: DefaultMaxAge unless the entry set
	// max_age_secs, capped at 100 years.
	MaxAge time.Duration
	// BreakGlass is set when the entry set max_age_secs (upstream's
	// break-glass policy).
	BreakGlass bool
	// AuditEveryUse is set when every use must be reported.
	AuditEveryUse bool
	// RequireBound is set when only subject-bound signatures verify.
	RequireBound bool
	// Fingerprint is the first FingerprintLen hex digits (lower case) of the
	// SHA-256 of the raw 32-byte public key.
	Fingerprint string
	// Source says where the entry came from (see KeyringError.Source).
	Source string
}

// Keyring is an immutable set of command signing keys, keyed by kid. The zero
// value and nil are empty keyrings. A Keyring is safe for concurrent use.
type Keyring struct {
	keys map[string]Key
	kids []string // sorted
}

// Fingerprint returns the fingerprint of pub: the first FingerprintLen hex
// digits (lower case) of SHA-256 over the raw public key bytes.
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:])[:FingerprintLen]
}

// ParseKeyring parses a keyring document: a JSON array of Entry objects, as
// upstream's parse_keyring reads it. [] is an empty keyring; null, a
// non-array or any bad entry fails the whole keyring. Every public key must
// be standard base64 of exactly 32 bytes, kids must be unique, non-empty, at
// most MaxKidLen bytes without control characters. A UTF-8 BOM and
// surrounding white space are ignored. Errors are *KeyringError.
func ParseKeyring(b []byte) (*Keyring, error) {
	return parseSource(b, "")
}

// NewKeyring builds a keyring from entries, validated as by ParseKeyring.
func NewKeyring(entries []Entry) (*Keyring, error) {
	return build(entries, "")
}

// LoadFile reads and parses the keyring file at path, without the ownership
// check that Sources applies. A missing file gives an error wrapping
// fs.ErrNotExist; content errors are *KeyringError.
func LoadFile(path string) (*Keyring, error) {
	b, err := readFileLimited(path)
	if err != nil {
		return nil, err
	}
	return parseSource(b, "file "+path)
}

func readFileLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("signing: keyring file: %w", err)
	}
	defer f.Close()
	return readLimited(f, "file "+path)
}

func readLimited(r io.Reader, source string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxKeyringSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUnreadable, source, err)
	}
	if len(b) > MaxKeyringSize {
		return nil, &KeyringError{Source: source, Entry: -1, Err: fmt.Errorf("%w: over %d bytes", ErrTooLarge, MaxKeyringSize)}
	}
	return b, nil
}

func parseSource(b []byte, source string) (*Keyring, error) {
	entries, err := decodeEntries(b, source)
	if err != nil {
		return nil, err
	}
	return build(entries, source)
}

// DecodeEntries decodes a keyring document into its entries without
// validating keys (see ParseKeyring for the document's rules).
func DecodeEntries(b []byte) ([]Entry, error) { return decodeEntries(b, "") }

// decodeEntries decodes a JSON array of entries strictly.
func decodeEntries(b []byte, source string) ([]Entry, error) {
	if len(b) > MaxKeyringSize {
		return nil, &KeyringError{Source: source, Entry: -1, Err: fmt.Errorf("%w: over %d bytes", ErrTooLarge, MaxKeyringSize)}
	}
	b = bytes.TrimSpace(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")))
	bad := func(entry int, format string, args ...any) error {
		return &KeyringError{Source: source, Entry: entry, Err: fmt.Errorf(format, args...)}
	}
	var raws []json.RawMessage
	if len(b) == 0 || b[0] != '[' {
		return nil, bad(-1, "%w: keyring: want a JSON array of entries", wire.ErrInvalid)
	}
	if err := json.Unmarshal(b, &raws); err != nil {
		return nil, bad(-1, "%w: keyring: malformed JSON: %v", wire.ErrInvalid, err)
	}
	entries := make([]Entry, 0, len(raws))
	for i, raw := range raws {
		e, err := decodeEntry(raw)
		if err != nil {
			return nil, &KeyringError{Source: source, Entry: i, Kid: shorten(e.Kid), Err: err}
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// decodeEntry decodes one entry object: case-sensitive field names, no
// repeated field, unknown fields ignored. On error the returned entry holds
// whatever kid was read, for the message.
func decodeEntry(raw json.RawMessage) (Entry, error) {
	var e Entry
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return e, fmt.Errorf("%w: not a JSON object", ErrBadEntry)
	}
	seen := map[string]bool{}
	var haveKid, havePub bool
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return e, fmt.Errorf("%w: %v", ErrBadEntry, err)
		}
		name, _ := t.(string)
		if seen[name] {
			return e, fmt.Errorf("%w: field %q repeated", ErrBadEntry, shorten(name))
		}
		seen[name] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return e, fmt.Errorf("%w: %v", ErrBadEntry, err)
		}
		isNull := string(v) == "null"
		switch name {
		case "kid":
			haveKid = !isNull
			if err := json.Unmarshal(v, &e.Kid); err != nil || isNull {
				return e, fmt.Errorf("%w: kid must be a string", ErrBadEntry)
			}
		case "public_key":
			havePub = !isNull
			if err := json.Unmarshal(v, &e.PublicKey); err != nil || isNull {
				return e, fmt.Errorf("%w: public_key must be a string", ErrBadEntry)
			}
		case "label":
			if err := json.Unmarshal(v, &e.Label); err != nil {
				return e, fmt.Errorf("%w: label must be a string or null", ErrBadEntry)
			}
		case "max_age_secs":
			if isNull {
				continue
			}
			n, err := strconv.ParseUint(string(v), 10, 64)
			if err != nil {
				return e, fmt.Errorf("%w: %s is not a non-negative integer", ErrBadMaxAge, shorten(string(v)))
			}
			e.MaxAgeSecs = &n
		case "audit_every_use", "require_bound":
			var on bool
			if err := json.Unmarshal(v, &on); err != nil || isNull {
				return e, fmt.Errorf("%w: %s must be true or false", ErrBadEntry, name)
			}
			if name == "audit_every_use" {
				e.AuditEveryUse = on
			} else {
				e.RequireBound = on
			}
		}
	}
	if !haveKid || !havePub {
		return e, fmt.Errorf("%w: kid and public_key are required", ErrBadEntry)
	}
	return e, nil
}

// build validates entries from one source and makes a keyring of them; a
// kid may appear only once.
func build(entries []Entry, source string) (*Keyring, error) {
	k := &Keyring{keys: make(map[string]Key, len(entries))}
	for i, e := range entries {
		key, err := validate(e)
		if err != nil {
			return nil, &KeyringError{Source: source, Entry: i, Kid: shorten(e.Kid), Err: err}
		}
		if _, dup := k.keys[key.Kid]; dup {
			return nil, &KeyringError{Source: source, Entry: i, Kid: shorten(e.Kid), Err: ErrDuplicateKid}
		}
		key.Source = source
		k.keys[key.Kid] = key
		k.kids = append(k.kids, key.Kid)
	}
	slices.Sort(k.kids)
	return k, nil
}

// validate checks one entry and turns it into a Key (without Source).
func validate(e Entry) (Key, error) {
	if err := ValidKid(e.Kid); err != nil {
		return Key{}, err
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(e.PublicKey)
	switch {
	case err != nil:
		return Key{}, fmt.Errorf("%w: public_key is not standard base64: %v", ErrBadPublicKey, err)
	case len(raw) != ed25519.PublicKeySize:
		return Key{}, fmt.Errorf("%w: public_key decodes to %d bytes, want %d", ErrBadPublicKey, len(raw), ed25519.PublicKeySize)
	}
	key := Key{
		Kid:           e.Kid,
		PublicKey:     ed25519.PublicKey(raw),
		Label:         e.Label,
		MaxAge:        DefaultMaxAge,
		AuditEveryUse: e.AuditEveryUse,
		RequireBound:  e.RequireBound,
		Fingerprint:   Fingerprint(raw),
	}
	if key.Label == "" {
		key.Label = e.Kid
	}
	if e.MaxAgeSecs != nil {
		key.BreakGlass, key.AuditEveryUse = true, true
		key.MaxAge = maxMaxAge
		if *e.MaxAgeSecs < uint64(maxMaxAge/time.Second) {
			key.MaxAge = time.Duration(*e.MaxAgeSecs) * time.Second
		}
	}
	return key, nil
}

// Entry returns the keyring entry describing k, as Entry would be written
// for a keyring document.
func (k Key) Entry() Entry {
	e := Entry{Kid: k.Kid, PublicKey: base64.StdEncoding.EncodeToString(k.PublicKey), Label: k.Label,
		AuditEveryUse: k.AuditEveryUse && !k.BreakGlass, RequireBound: k.RequireBound}
	if k.BreakGlass {
		secs := uint64(k.MaxAge / time.Second)
		e.MaxAgeSecs = &secs
	}
	return e
}

// ValidKid returns nil if kid is acceptable as a key id in a keyring (and
// so in the signature header): not empty, at most MaxKidLen bytes, valid
// UTF-8, no control character. Otherwise the error wraps ErrBadKid.
func ValidKid(kid string) error {
	switch {
	case strings.TrimSpace(kid) == "":
		return fmt.Errorf("%w: empty", ErrBadKid)
	case len(kid) > MaxKidLen:
		return fmt.Errorf("%w: %d bytes, at most %d", ErrBadKid, len(kid), MaxKidLen)
	case !utf8.ValidString(kid):
		return fmt.Errorf("%w: not valid UTF-8", ErrBadKid)
	case strings.ContainsFunc(kid, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("%w: holds a control character", ErrBadKid)
	}
	return nil
}

// shorten makes an untrusted or overlong string safe to print: valid UTF-8,
// at most 64 bytes, ending in "…" when cut. It is idempotent.
func shorten(s string) string {
	const max = 64
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= max {
		return s
	}
	cut := max - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// Len returns the number of keys; 0 for a nil keyring.
func (k *Keyring) Len() int {
	if k == nil {
		return 0
	}
	return len(k.kids)
}

// Lookup returns the key with the given kid.
func (k *Keyring) Lookup(kid string) (Key, bool) {
	if k == nil {
		return Key{}, false
	}
	key, ok := k.keys[kid]
	return key, ok
}

// Keys returns the keys sorted by kid.
func (k *Keyring) Keys() []Key {
	if k == nil {
		return nil
	}
	out := make([]Key, 0, len(k.kids))
	for _, kid := range k.kids {
		out = append(out, k.keys[kid])
	}
	return out
}

// Kids returns the kids, sorted.
func (k *Keyring) Kids() []string {
	if k == nil {
		return nil
	}
	return slices.Clone(k.kids)
}

// Fingerprints returns "kid:fingerprint" for each key, sorted by kid, for the
// heartbeat's command_keys. It is never nil, so the field is always sent as
// an array. A kid may itself hold ':'; the fingerprint follows the last one.
func (k *Keyring) Fingerprints() []string {
	out := make([]string, 0, k.Len())
	for _, key := range k.Keys() {
		out = append(out, key.Kid+":"+key.Fingerprint)
	}
	return out
}
