package update

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/kanade/kanade-agent/signing"
	"github.com/nats-io/nats.go/jetstream"
)

// Object metadata keys of a signed release, and the domain string of the
// signed bytes (docs/protocol.md, "Self-update").
const (
	// MetaSig holds the standard base64 (padded) of the 64-byte ed25519 signature.
	MetaSig = "kanade-sig"
	// MetaSigKid holds the kid of the signing key in the release keyring.
	MetaSigKid = "kanade-sig-kid"
	// MetaFlags holds the release flags (see Flags), comma separated; absent
	// or empty for none. The signature covers it.
	MetaFlags = "kanade-release-flags"
	// SignedPrefix starts the bytes a release signature covers (see SignedBytes).
	SignedPrefix = "kanade-release-v2\x00"
)

// FlagAllowDowngrade is the release flag that lets an agent running a
// newer version install this release (see Flags.AllowDowngrade).
const FlagAllowDowngrade = "allow-downgrade"

// MaxFlagsLen is the longest MetaFlags value accepted, in bytes.
const MaxFlagsLen = 256

// Flags are the options a release carries in MetaFlags, covered by its
// signature. The zero value is no flag.
type Flags struct {
	// AllowDowngrade lets agents running a higher version install this
	// release (flag "allow-downgrade"). Without it, or Options.AllowDowngrade,
	// a release whose version is lower than the running one is refused.
	AllowDowngrade bool
}

// String returns the canonical MetaFlags value of f: the flag names in a
// fixed order, comma separated; "" for none.
func (f Flags) String() string {
	if f.AllowDowngrade {
		return FlagAllowDowngrade
	}
	return ""
}

// ParseFlags decodes a MetaFlags value: "" (no flag) or flag names
// separated by commas, each known and at most once. Anything else wraps
// ErrReleaseFlags: an agent refuses a release with a flag it does not know
// rather than ignore what the publisher asked for.
func ParseFlags(s string) (Flags, error) {
	var f Flags
	if s == "" {
		return f, nil
	}
	if len(s) > MaxFlagsLen {
		return f, fmt.Errorf("%w: %d bytes, at most %d", ErrReleaseFlags, len(s), MaxFlagsLen)
	}
	for _, name := range strings.Split(s, ",") {
		switch name {
		case FlagAllowDowngrade:
			if f.AllowDowngrade {
				return f, fmt.Errorf("%w: %q given twice", ErrReleaseFlags, name)
			}
			f.AllowDowngrade = true
		default:
			return f, fmt.Errorf("%w: unknown flag %q", ErrReleaseFlags, shorten(name))
		}
	}
	return f, nil
}

// MaxVersionLen is the longest version, in bytes, that ValidVersion accepts.
const MaxVersionLen = 128

// digestPrefix starts the object store's digest string.
const digestPrefix = "SHA-256="

// ValidVersion reports whether v can name a release: 1 to MaxVersionLen
// bytes of ASCII letters, digits and . _ + - (for example 1.2.0, v2.0.0-rc.1,
// 1.4.2+win). It wraps ErrInvalidVersion otherwise.
func ValidVersion(v string) error {
	if v == "" || len(v) > MaxVersionLen {
		return fmt.Errorf("%w: %d bytes, want 1 to %d", ErrInvalidVersion, len(v), MaxVersionLen)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '+' || c == '-') {
			return fmt.Errorf("%w: %q holds byte %#x", ErrInvalidVersion, v, c)
		}
	}
	if v == "." || v == ".." {
		return fmt.Errorf("%w: %q", ErrInvalidVersion, v)
	}
	return nil
}

// ParseDigest decodes an object store digest, "SHA-256=" followed by the
// base64url (padded, as nats.go writes it; unpadded is accepted too) of the
// 32-byte SHA-256. An empty string wraps ErrNoDigest, anything else that is
// not of that form wraps ErrBadDigest.
func ParseDigest(s string) ([sha256.Size]byte, error) {
	var d [sha256.Size]byte
	if s == "" {
		return d, ErrNoDigest
	}
	rest, ok := strings.CutPrefix(s, digestPrefix)
	if !ok {
		return d, fmt.Errorf("%w: %q does not start with %s", ErrBadDigest, shorten(s), digestPrefix)
	}
	raw, err := base64.URLEncoding.Strict().DecodeString(rest)
	if err != nil {
		raw, err = base64.RawURLEncoding.Strict().DecodeString(rest)
	}
	if err != nil || len(raw) != sha256.Size {
		return d, fmt.Errorf("%w: %q is not the base64url of %d bytes", ErrBadDigest, shorten(s), sha256.Size)
	}
	copy(d[:], raw)
	return d, nil
}

// FormatDigest returns d in the object store's form, "SHA-256=<base64url>".
func FormatDigest(d [sha256.Size]byte) string {
	return digestPrefix + base64.URLEncoding.EncodeToString(d[:])
}

// SignedBytes returns the exact bytes a release signature covers:
//
//	"kanade-release-v2" 0x00 <version> 0x00 <the 32 raw SHA-256 bytes> 0x00 <flags>
//
// The version is the object name (ASCII, no NUL, see ValidVersion), the
// digest the SHA-256 of the binary and flags the MetaFlags value (ASCII, no
// NUL; "" for none). Every field but the digest is free of NUL and the
// digest has a fixed length, so the encoding is unambiguous. Binding the
// name as well as the digest means a signed binary cannot be re-published
// under another version (an old, vulnerable release renamed as the new
// target); binding the flags means nobody but the signer can allow a
// downgrade.
func SignedBytes(version string, digest [sha256.Size]byte, flags string) []byte {
	b := make([]byte, 0, len(SignedPrefix)+len(version)+1+sha256.Size+1+len(flags))
	b = append(b, SignedPrefix...)
	b = append(b, version...)
	b = append(b, 0)
	b = append(b, digest[:]...)
	b = append(b, 0)
	return append(b, flags...)
}

// SignRelease signs the release version whose content has SHA-256 digest,
// with flags, with priv as key kid, and returns the object metadata to
// publish it with: MetaSig (standard base64 of the signature over
// SignedBytes), MetaSigKid and, when flags is not zero, MetaFlags. The
// backend or CLI passes it as jetstream.ObjectMeta.Metadata (PutRelease
// does). Like ed25519.Sign it panics if len(priv) is not
// ed25519.PrivateKeySize.
func SignRelease(priv ed25519.PrivateKey, kid, version string, digest [sha256.Size]byte, flags Flags) map[string]string {
	sig := ed25519.Sign(priv, SignedBytes(version, digest, flags.String()))
	m := map[string]string{
		MetaSig:    base64.StdEncoding.EncodeToString(sig),
		MetaSigKid: kid,
	}
	if fs := flags.String(); fs != "" {
		m[MetaFlags] = fs
	}
	return m
}

// PutRelease publishes binary as release version in the agent_releases
// object store obs, with flags, signed with priv as key kid when priv is
// not nil (unsigned, the flags are stored all the same, for agents that do
// not check signatures). It is the publishing side of Updater for the
// backend, the CLI and tests.
func PutRelease(ctx context.Context, obs jetstream.ObjectStore, version string, binary []byte, priv ed25519.PrivateKey, kid string, flags Flags) (*jetstream.ObjectInfo, error) {
	if err := ValidVersion(version); err != nil {
		return nil, err
	}
	meta := jetstream.ObjectMeta{Name: version}
	switch {
	case priv != nil:
		meta.Metadata = SignRelease(priv, kid, version, sha256.Sum256(binary), flags)
	case flags != Flags{}:
		meta.Metadata = map[string]string{MetaFlags: flags.String()}
	}
	info, err := obs.Put(ctx, meta, bytes.NewReader(binary))
	if err != nil {
		return nil, fmt.Errorf("update: put release %s: %w", version, err)
	}
	return info, nil
}

// releaseMeta returns the value of key in the object's metadata, or else in
// its headers (matched without regard to case), and whether it was found.
func releaseMeta(info *jetstream.ObjectInfo, key string) (string, bool) {
	if v, ok := info.Metadata[key]; ok {
		return v, true
	}
	for k, vs := range info.Headers {
		if strings.EqualFold(k, key) && len(vs) > 0 {
			return vs[0], true
		}
	}
	return "", false
}

// ReleaseFlags returns the flags in info's metadata (MetaFlags), without
// checking any signature. It wraps ErrReleaseFlags for a malformed value.
func ReleaseFlags(info *jetstream.ObjectInfo) (Flags, error) {
	s, _ := releaseMeta(info, MetaFlags)
	return ParseFlags(s)
}

// VerifyRelease checks the signature of release version with the given
// digest, as published in info's metadata (MetaSig, MetaSigKid and
// MetaFlags; read from ObjectMeta.Metadata, or else from ObjectMeta.Headers
// with the key matched without regard to case), against keyring, and
// returns the flags the signature covers. A nil or empty keyring wraps
// ErrNoReleaseKeys: it verifies nothing, so it refuses everything. On
// failure it wraps ErrUnsigned, ErrUnknownKid, ErrReleaseFlags or
// ErrBadSignature (which is also what a signature of another format, such
// as the former digest-only or flag-less ones, gives).
func VerifyRelease(keyring *signing.Keyring, info *jetstream.ObjectInfo, version string, digest [sha256.Size]byte) (Flags, error) {
	if keyring.Len() == 0 {
		return Flags{}, fmt.Errorf("%w: release %s refused", ErrNoReleaseKeys, version)
	}
	sigB64, okSig := releaseMeta(info, MetaSig)
	kid, okKid := releaseMeta(info, MetaSigKid)
	if !okSig || !okKid || sigB64 == "" || kid == "" {
		return Flags{}, fmt.Errorf("%w: %s needs metadata %s and %s", ErrUnsigned, version, MetaSig, MetaSigKid)
	}
	if len(kid) > signing.MaxKidLen {
		return Flags{}, fmt.Errorf("%w: kid of %d bytes", ErrBadSignature, len(kid))
	}
	flagStr, _ := releaseMeta(info, MetaFlags)
	flags, err := ParseFlags(flagStr)
	if err != nil {
		return Flags{}, err
	}
	key, ok := keyring.Lookup(kid)
	if !ok {
		return Flags{}, fmt.Errorf("%w: kid %q", ErrUnknownKid, shorten(kid))
	}
	if len(sigB64) != base64.StdEncoding.EncodedLen(ed25519.SignatureSize) {
		return Flags{}, fmt.Errorf("%w: %s is %d characters, want %d", ErrBadSignature, MetaSig, len(sigB64), base64.StdEncoding.EncodedLen(ed25519.SignatureSize))
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(sigB64)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return Flags{}, fmt.Errorf("%w: %s is not standard base64 of %d bytes", ErrBadSignature, MetaSig, ed25519.SignatureSize)
	}
	// flagStr, not flags.String(): the signature covers the bytes as published.
	if !ed25519.Verify(key.PublicKey, SignedBytes(version, digest, flagStr), sig) {
		return Flags{}, fmt.Errorf("%w: does not verify under kid %q as a %q signature of version %s (re-sign releases of older formats with 'kanade release put')",
			ErrBadSignature, shorten(kid), strings.TrimSuffix(SignedPrefix, "\x00"), version)
	}
	return flags, nil
}

// shorten makes an untrusted string safe to log: at most 64 bytes.
func shorten(s string) string {
	const max = 64
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
