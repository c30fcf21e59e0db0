package signing

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
)

// Header names and algorithms of command signing. Header names are
// case-sensitive, as everywhere in nats.go.
const (
	// HeaderSig carries the standard base64 (padded) of the 64-byte ed25519 signature.
	HeaderSig = "Kanade-Sig"
	// HeaderKid carries the id of the signing key in the agent's keyring.
	HeaderKid = "Kanade-Sig-Kid"
	// HeaderAlg names the signed form: AlgEd25519 (or absent) for upstream's
	// unbound form, AlgEd25519Subject for the subject-bound form.
	HeaderAlg = "Kanade-Sig-Alg"
	// HeaderAt carries the signing time in decimal milliseconds since the Unix epoch.
	HeaderAt = "Kanade-Sig-At"
	// HeaderSubject carries, in the subject-bound form, the subject the
	// signer bound the signature to. It is a hint, not trusted: the agent
	// verifies against the subject the message arrived on and reads this
	// header only to tell a misaddressed message from a forged one.
	HeaderSubject = "Kanade-Sig-Subject"

	// AlgEd25519 is upstream kanade's form: ed25519 over UnboundBytes.
	AlgEd25519 = "ed25519"
	// AlgEd25519Subject is this agent's subject-bound form: ed25519 over
	// BoundBytes. Upstream agents report it command_signature_invalid
	// (unsupported algorithm), so it never runs anywhere unverified.
	AlgEd25519Subject = "ed25519-subject-v1"

	// BoundDomain starts the bytes of every subject-bound signature. Its
	// first byte is 'k' (0x6b); the first byte of upstream's unbound form is
	// the top byte of at_ms, which is 0x00 for every time the agent accepts
	// (see MaxAtMillis), so no signature can verify in both forms.
	BoundDomain = "kanade-command-sig-v2\x00"

	// MaxSubjectLen is the longest subject a bound signature may name, in bytes.
	MaxSubjectLen = 1024
)

// MaxAtMillis is the latest Kanade-Sig-At the agent accepts:
// 9999-12-31T23:59:59.999Z. Anything later is invalid.
const MaxAtMillis int64 = 253402300799999

// sigB64Len is the length of a 64-byte signature in padded standard base64.
var sigB64Len = base64.StdEncoding.EncodedLen(ed25519.SignatureSize)

// UnboundBytes returns the bytes an upstream-form signature covers: atMs as
// 8 bytes big-endian (two's complement), then body.
func UnboundBytes(atMs int64, body []byte) []byte {
	b := make([]byte, 8+len(body))
	binary.BigEndian.PutUint64(b, uint64(atMs))
	copy(b[8:], body)
	return b
}

// BoundBytes returns the bytes a subject-bound signature covers:
//
//	BoundDomain ("kanade-command-sig-v2" and one 0x00 byte, 22 bytes)
//	at_ms        8 bytes, big-endian two's complement
//	len(subject) 4 bytes, big-endian unsigned
//	subject      len(subject) bytes
//	body         the rest: the message body, byte for byte
//
// Every field but the last has a fixed width or a length prefix, so no two
// (at_ms, subject, body) triples give the same bytes.
func BoundBytes(atMs int64, subject string, body []byte) []byte {
	b := make([]byte, 0, len(BoundDomain)+8+4+len(subject)+len(body))
	b = append(b, BoundDomain...)
	b = binary.BigEndian.AppendUint64(b, uint64(atMs))
	b = binary.BigEndian.AppendUint32(b, uint32(len(subject)))
	b = append(b, subject...)
	return append(b, body...)
}

// ValidSubject returns nil if subject can be signed for: 1 to MaxSubjectLen
// bytes of valid UTF-8 without spaces or control characters (a NATS subject
// never holds them). Otherwise the error wraps ErrBadSubject.
func ValidSubject(subject string) error {
	switch {
	case subject == "":
		return fmt.Errorf("%w: empty", ErrBadSubject)
	case len(subject) > MaxSubjectLen:
		return fmt.Errorf("%w: %d bytes, at most %d", ErrBadSubject, len(subject), MaxSubjectLen)
	case !utf8.ValidString(subject):
		return fmt.Errorf("%w: not valid UTF-8", ErrBadSubject)
	}
	for i := 0; i < len(subject); i++ {
		if c := subject[i]; c <= ' ' || c == 0x7f {
			return fmt.Errorf("%w: holds a space or control character", ErrBadSubject)
		}
	}
	return nil
}

// Sign signs body in the subject-bound form for the NATS subject it will be
// published on (e.g. commands.pc.<pc_id>, commands.all, kill.<exec_id>)
// with priv as key kid at time at, and returns a new header holding the
// five signature headers. An agent verifies it only when it arrives on
// exactly that subject. at is truncated to milliseconds and must lie in
// [1970, 9999]. Like ed25519.Sign, Sign panics if len(priv) is not
// ed25519.PrivateKeySize.
func Sign(priv ed25519.PrivateKey, kid, subject string, at time.Time, body []byte) (nats.Header, error) {
	h := make(nats.Header, 5)
	if err := SignHeader(h, priv, kid, subject, at, body); err != nil {
		return nil, err
	}
	return h, nil
}

// SignHeader is Sign writing into h (which must not be nil), replacing any
// signature headers h already held and leaving other headers alone. On
// error h is unchanged.
func SignHeader(h nats.Header, priv ed25519.PrivateKey, kid, subject string, at time.Time, body []byte) error {
	atMs, err := signTime(kid, at)
	if err != nil {
		return err
	}
	if err := ValidSubject(subject); err != nil {
		return err
	}
	sig := ed25519.Sign(priv, BoundBytes(atMs, subject, body))
	setHeaders(h, sig, kid, AlgEd25519Subject, atMs)
	h.Set(HeaderSubject, subject)
	return nil
}

// SignUnbound signs body in upstream kanade's form (no subject; valid on
// every subject), for interoperability tests and for agents that predate
// the bound form. It returns the four signature headers.
func SignUnbound(priv ed25519.PrivateKey, kid string, at time.Time, body []byte) (nats.Header, error) {
	atMs, err := signTime(kid, at)
	if err != nil {
		return nil, err
	}
	h := make(nats.Header, 4)
	setHeaders(h, ed25519.Sign(priv, UnboundBytes(atMs, body)), kid, AlgEd25519, atMs)
	return h, nil
}

func signTime(kid string, at time.Time) (int64, error) {
	if err := ValidKid(kid); err != nil {
		return 0, err
	}
	atMs := at.UnixMilli()
	if atMs < 0 || atMs > MaxAtMillis {
		return 0, fmt.Errorf("%w: %s is outside 1970..9999", ErrBadSignTime, at.UTC().Format(time.RFC3339))
	}
	return atMs, nil
}

func setHeaders(h nats.Header, sig []byte, kid, alg string, atMs int64) {
	h.Set(HeaderSig, base64.StdEncoding.EncodeToString(sig))
	h.Set(HeaderKid, kid)
	h.Set(HeaderAlg, alg)
	h.Set(HeaderAt, strconv.FormatInt(atMs, 10))
	h.Del(HeaderSubject)
}
