package signing

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

// Header names and the one algorithm of command signing. Header names are
// case-sensitive, as everywhere in nats.go.
const (
	// HeaderSig carries the standard base64 (padded) of the ed25519 signature.
	HeaderSig = "Kanade-Sig"
	// HeaderKid carries the id of the signing key in the agent's keyring.
	HeaderKid = "Kanade-Sig-Kid"
	// HeaderAlg carries the signature algorithm, always AlgEd25519.
	HeaderAlg = "Kanade-Sig-Alg"
	// HeaderAt carries the signing time in decimal milliseconds since the Unix epoch.
	HeaderAt = "Kanade-Sig-At"
	// AlgEd25519 is the only accepted value of Kanade-Sig-Alg.
	AlgEd25519 = "ed25519"
)

// sigB64Len is the length of a 64-byte signature in padded standard base64.
var sigB64Len = base64.StdEncoding.EncodedLen(ed25519.SignatureSize)

// maxAtDigits is the number of decimal digits of the largest int64.
const maxAtDigits = 19

// SignedBytes returns the bytes a command signature covers: atMs as 8 bytes
// big-endian, then body. It is exported for tests and for signers written
// against this package's format.
func SignedBytes(atMs int64, body []byte) []byte {
	b := make([]byte, 8+len(body))
	binary.BigEndian.PutUint64(b, uint64(atMs))
	copy(b[8:], body)
	return b
}

// Sign signs body with priv as key kid at time at, and returns a new header
// holding the four signature headers. at is truncated to milliseconds; it
// must not be before the Unix epoch, and kid must be a kid of the agent's
// keyring, or the agent finds the signature invalid. Like ed25519.Sign, Sign
// panics if len(priv) is not ed25519.PrivateKeySize.
func Sign(priv ed25519.PrivateKey, kid string, at time.Time, body []byte) nats.Header {
	h := make(nats.Header, 4)
	SignHeader(h, priv, kid, at, body)
	return h
}

// SignHeader is Sign writing into h (which must not be nil), replacing any
// signature headers h already held and leaving other headers alone.
func SignHeader(h nats.Header, priv ed25519.PrivateKey, kid string, at time.Time, body []byte) {
	atMs := at.UnixMilli()
	sig := ed25519.Sign(priv, SignedBytes(atMs, body))
	h.Set(HeaderSig, base64.StdEncoding.EncodeToString(sig))
	h.Set(HeaderKid, kid)
	h.Set(HeaderAlg, AlgEd25519)
	h.Set(HeaderAt, strconv.FormatInt(atMs, 10))
}
