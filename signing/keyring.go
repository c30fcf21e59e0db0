package signing

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
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

// maxMaxAge caps a key's max age so that time arithmetic cannot overflow.
const maxMaxAge = 100 * 365 * 24 * time.Hour

// Key is one verified entry of a Keyring.
type Key struct {
	// Kid is the key id, as sent in Kanade-Sig-Kid.
	Kid string
	// PublicKey is the 32-byte ed25519 public key.
	PublicKey ed25519.PublicKey
	// Label is the entry's human description.
	Label string
	// MaxAge is how old a signature may be; 0 means no limit.
	MaxAge time.Duration
	// Fingerprint is the first FingerprintLen hex digits (lower case) of the
	// SHA-256 of the raw 32-byte public key.
	Fingerprint string
	// Source says where the entry came from (see KeyringError.Source).
	Source string
}

// Keyring is an immutable set of command signing keys, keyed by kid. The zero
// value and nil are empty keyrings. A Keyring is safe for concurrent use.
type Keyring struct {
	keys      map[string]Key
	kids      []string // sorted
	conflicts []string // sorted; see Conflicts
}

// Fingerprint returns the fingerprint of pub: the first FingerprintLen hex
// digits (lower case) of SHA-256 over the raw public key bytes.
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:])[:FingerprintLen]
}

// ParseKeyring parses a keyring: a JSON array of wire.KeyringEntry, as
// decoded by wire.DecodeKeyring. JSON null or [] give an empty keyring. Every
// public key must be standard base64 of exactly 32 bytes, kids must be
// unique, non-empty, at most MaxKidLen bytes without control characters, and
// max_age_secs must not be negative. Errors are *KeyringError.
func ParseKeyring(b []byte) (*Keyring, error) {
	return parseSource(b, "")
}

// NewKeyring builds a keyring from entries, validated as by ParseKeyring.
func NewKeyring(entries []wire.KeyringEntry) (*Keyring, error) {
	return build(entries, "")
}

// LoadFile reads and parses the keyring file at path. A missing file gives an
// error wrapping fs.ErrNotExist; content errors are *KeyringError.
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
	b, err := io.ReadAll(io.LimitReader(f, MaxKeyringSize+1))
	if err != nil {
		return nil, fmt.Errorf("signing: keyring file: %w", err)
	}
	if len(b) > MaxKeyringSize {
		return nil, &KeyringError{Source: "file " + path, Entry: -1, Err: fmt.Errorf("%w: over %d bytes", ErrTooLarge, MaxKeyringSize)}
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

// decodeEntries decodes a JSON array of entries.
func decodeEntries(b []byte, source string) ([]wire.KeyringEntry, error) {
	if len(b) > MaxKeyringSize {
		return nil, &KeyringError{Source: source, Entry: -1, Err: fmt.Errorf("%w: over %d bytes", ErrTooLarge, MaxKeyringSize)}
	}
	// A UTF-8 BOM is common in files written by Windows tools.
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	entries, err := wire.DecodeKeyring(b)
	if err != nil {
		return nil, &KeyringError{Source: source, Entry: -1, Err: err}
	}
	return entries, nil
}

// sourcedEntry is a keyring entry and where it came from.
type sourcedEntry struct {
	wire.KeyringEntry
	source string // see KeyringError.Source
	index  int    // index in its source
}

// build validates entries from one source and makes a keyring of them.
func build(entries []wire.KeyringEntry, source string) (*Keyring, error) {
	es := make([]sourcedEntry, len(entries))
	for i, e := range entries {
		es[i] = sourcedEntry{KeyringEntry: e, source: source, index: i}
	}
	return buildSourced(es)
}

// buildSourced validates entries and makes a keyring of them; a kid may
// appear only once among all of them.
func buildSourced(entries []sourcedEntry) (*Keyring, error) {
	k := &Keyring{keys: make(map[string]Key, len(entries))}
	for _, e := range entries {
		key, err := validate(e.KeyringEntry)
		if err != nil {
			return nil, &KeyringError{Source: e.source, Entry: e.index, Kid: shorten(e.Kid), Err: err}
		}
		if prev, dup := k.keys[key.Kid]; dup {
			err := ErrDuplicateKid
			if prev.Source != e.source {
				err = fmt.Errorf("%w: also in %s", ErrDuplicateKid, prev.Source)
			}
			return nil, &KeyringError{Source: e.source, Entry: e.index, Kid: shorten(e.Kid), Err: err}
		}
		key.Source = e.source
		k.keys[key.Kid] = key
		k.kids = append(k.kids, key.Kid)
	}
	slices.Sort(k.kids)
	return k, nil
}

// validate checks one entry and turns it into a Key (without Source).
func validate(e wire.KeyringEntry) (Key, error) {
	if err := ValidKid(e.Kid); err != nil {
		return Key{}, err
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSpace(e.PublicKey))
	switch {
	case err != nil:
		return Key{}, fmt.Errorf("%w: public_key is not standard base64: %v", ErrBadPublicKey, err)
	case len(raw) != ed25519.PublicKeySize:
		return Key{}, fmt.Errorf("%w: public_key decodes to %d bytes, want %d", ErrBadPublicKey, len(raw), ed25519.PublicKeySize)
	}
	if e.MaxAgeSecs < 0 {
		return Key{}, fmt.Errorf("%w: %d is negative", ErrBadMaxAge, e.MaxAgeSecs)
	}
	maxAge := maxMaxAge
	if e.MaxAgeSecs < int64(maxMaxAge/time.Second) {
		maxAge = time.Duration(e.MaxAgeSecs) * time.Second
	}
	pub := ed25519.PublicKey(raw)
	return Key{
		Kid:         e.Kid,
		PublicKey:   pub,
		Label:       e.Label,
		MaxAge:      maxAge,
		Fingerprint: Fingerprint(pub),
	}, nil
}

// ValidKid returns nil if kid is acceptable as a key id in a keyring (and
// so in the signature header): not empty, at most MaxKidLen bytes, valid
// UTF-8, no control character. Otherwise the error wraps ErrBadKid.
func ValidKid(kid string) error {
	switch {
	case kid == "":
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

// Conflicts returns, sorted, the kids for which Merge dropped a secondary
// entry because it differed (in public key or max age) from the primary's.
// The agent should log them.
func (k *Keyring) Conflicts() []string {
	if k == nil {
		return nil
	}
	return slices.Clone(k.conflicts)
}

// Merge returns a keyring holding the keys of both. On a kid in both, the
// primary's entry wins; if the secondary's differs in public key or max age
// its kid is listed in Conflicts (an identical entry, or one differing only
// in label, is not a conflict). The primary's conflicts are kept. Either may
// be nil.
//
// Load merges with the file as primary and the registry as secondary: the
// file wins rather than failing, so a misconfigured registry can never turn
// enforcement off by making the whole keyring unloadable.
func Merge(primary, secondary *Keyring) *Keyring {
	out := &Keyring{keys: make(map[string]Key, primary.Len()+secondary.Len())}
	for _, key := range primary.Keys() {
		out.keys[key.Kid] = key
		out.kids = append(out.kids, key.Kid)
	}
	if primary != nil {
		out.conflicts = slices.Clone(primary.conflicts)
	}
	for _, key := range secondary.Keys() {
		if have, ok := out.keys[key.Kid]; ok {
			if !have.PublicKey.Equal(key.PublicKey) || have.MaxAge != key.MaxAge {
				out.conflicts = append(out.conflicts, key.Kid)
			}
			continue
		}
		out.keys[key.Kid] = key
		out.kids = append(out.kids, key.Kid)
	}
	slices.Sort(out.kids)
	slices.Sort(out.conflicts)
	out.conflicts = slices.Compact(out.conflicts)
	return out
}

// RegistryPath is the registry key the agent reads command keys from on
// Windows; see LoadRegistry.
const RegistryPath = `HKLM\SOFTWARE\kanade\agent\CommandKeys`

// LoadOptions says where Load finds keyrings.
type LoadOptions struct {
	// File is the keyring file; "" means none. A missing file counts as an
	// empty keyring (the daemon always passes its default path).
	File string
	// Registry is the registry key path, normally RegistryPath; "" means none.
	// It is ignored on systems other than Windows. A missing key counts as
	// an empty keyring.
	Registry string
}

// Load reads the keyring file and (on Windows) the registry key named by
// opts and merges them, the file winning on a kid conflict (see Merge). Any
// other error (unreadable, malformed, invalid) fails the whole load; the
// caller should then keep the keyring it had.
func Load(opts LoadOptions) (*Keyring, error) {
	var file, reg *Keyring
	if opts.File != "" {
		k, err := LoadFile(opts.File)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, err
		default:
			file = k
		}
	}
	if opts.Registry != "" && registrySupported {
		k, err := LoadRegistry(opts.Registry)
		if err != nil {
			return nil, err
		}
		reg = k
	}
	return Merge(file, reg), nil
}
