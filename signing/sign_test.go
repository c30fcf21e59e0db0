package signing

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestSignedBytes(t *testing.T) {
	got := SignedBytes(0x0102030405060708, []byte("body"))
	want := append([]byte{1, 2, 3, 4, 5, 6, 7, 8}, "body"...)
	if !bytes.Equal(got, want) {
		t.Fatalf("SignedBytes = %x, want %x", got, want)
	}
	if got := SignedBytes(5, nil); len(got) != 8 || binary.BigEndian.Uint64(got) != 5 {
		t.Fatalf("SignedBytes(5, nil) = %x", got)
	}
}

func TestSignHeaders(t *testing.T) {
	_, priv := testKey(1)
	at := time.UnixMilli(1700000000123).Add(456 * time.Microsecond)
	h := Sign(priv, "ops", at, []byte("x"))
	if len(h) != 4 {
		t.Fatalf("Sign gave %d headers, want 4: %v", len(h), h)
	}
	for name, want := range map[string]string{HeaderKid: "ops", HeaderAlg: "ed25519", HeaderAt: "1700000000123"} {
		if got := h.Values(name); len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want [%q]", name, got, want)
		}
	}
	sig := h.Get(HeaderSig)
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(raw) != ed25519.SignatureSize || len(sig) != 88 || sig[86:] != "==" {
		t.Fatalf("Kanade-Sig %q is not padded standard base64 of 64 bytes (%v)", sig, err)
	}
}

func TestSignHeaderReplacesAndKeepsOthers(t *testing.T) {
	_, priv := testKey(1)
	h := nats.Header{"Other": {"1"}, HeaderSig: {"old", "older"}, HeaderKid: {"stale"}}
	SignHeader(h, priv, "ops", time.UnixMilli(1), []byte("x"))
	if h.Get("Other") != "1" {
		t.Error("SignHeader dropped an unrelated header")
	}
	if len(h.Values(HeaderSig)) != 1 || h.Get(HeaderKid) != "ops" {
		t.Errorf("SignHeader did not replace the signature headers: %v", h)
	}
}

// TestVector checks a signature computed independently (Python's
// cryptography package), so other implementations can check theirs.
func TestVector(t *testing.T) {
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i + 1)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	const (
		pubB64 = "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ="
		fp     = "65b60673d6ed884b"
		sigB64 = "Y1ouTPYo1gfXWD3IlTdVH18NJOcSGcDweFHvYMp/n50ARsFP3h7LxzMF2jCyABBtpSZsm0rw5v9IJQuHv8yHDA=="
	)
	body := []byte(`{"request_id":"r1"}`)
	pub := priv.Public().(ed25519.PublicKey)
	if got := base64.StdEncoding.EncodeToString(pub); got != pubB64 {
		t.Fatalf("public key %s, want %s", got, pubB64)
	}
	if got := Fingerprint(pub); got != fp {
		t.Errorf("Fingerprint = %s, want %s", got, fp)
	}
	h := Sign(priv, "k1", time.UnixMilli(1700000000000), body)
	if got := h.Get(HeaderSig); got != sigB64 {
		t.Errorf("Kanade-Sig = %s, want %s", got, sigB64)
	}
	k := mustKeyring(t, entry("k1", pub, 0))
	hdr := nats.Header{HeaderSig: {sigB64}, HeaderKid: {"k1"}, HeaderAlg: {"ed25519"}, HeaderAt: {"1700000000000"}}
	if o := NewVerifier(k, true).Verify(hdr, body, time.UnixMilli(1700000000000)); o != OutcomeVerified {
		t.Errorf("vector: Verify = %s, want verified", o)
	}
}
