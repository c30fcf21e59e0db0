package signing

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"
)

// testKey returns a deterministic key pair from a one-byte seed.
func testKey(seed byte) (ed25519.PublicKey, ed25519.PrivateKey) {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed
	}
	priv := ed25519.NewKeyFromSeed(s)
	return priv.Public().(ed25519.PublicKey), priv
}

// entry returns a keyring entry for pub with no max age.
func entry(kid string, pub ed25519.PublicKey) Entry {
	return Entry{Kid: kid, PublicKey: base64.StdEncoding.EncodeToString(pub)}
}

// secs returns a max_age_secs value.
func secs(n uint64) *uint64 { return &n }

// keyringJSON marshals entries as a keyring document.
func keyringJSON(t testing.TB, entries ...Entry) []byte {
	t.Helper()
	if entries == nil {
		entries = []Entry{}
	}
	b, err := json.Marshal(entries)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustKeyring builds a keyring or fails the test.
func mustKeyring(t testing.TB, entries ...Entry) *Keyring {
	t.Helper()
	k, err := NewKeyring(entries)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// upstreamSign signs body the way upstream kanade's signing.rs does,
// written out here independently of the package: ed25519 over at_ms as 8
// bytes big-endian followed by the body, headers Kanade-Sig (standard
// padded base64), Kanade-Sig-Kid, Kanade-Sig-Alg "ed25519", Kanade-Sig-At
// (decimal).
func upstreamSign(priv ed25519.PrivateKey, kid string, atMs int64, body []byte) nats.Header {
	msg := binary.BigEndian.AppendUint64(nil, uint64(atMs))
	msg = append(msg, body...)
	return nats.Header{
		"Kanade-Sig":     {base64.StdEncoding.EncodeToString(ed25519.Sign(priv, msg))},
		"Kanade-Sig-Kid": {kid},
		"Kanade-Sig-Alg": {"ed25519"},
		"Kanade-Sig-At":  {strconv.FormatInt(atMs, 10)},
	}
}

// boundSign signs body for subject in the bound form, written out here
// independently of BoundBytes, per the layout in the package documentation.
func boundSign(priv ed25519.PrivateKey, kid, subject string, atMs int64, body []byte) nats.Header {
	msg := []byte("kanade-command-sig-v2\x00")
	msg = binary.BigEndian.AppendUint64(msg, uint64(atMs))
	msg = binary.BigEndian.AppendUint32(msg, uint32(len(subject)))
	msg = append(msg, subject...)
	msg = append(msg, body...)
	return nats.Header{
		"Kanade-Sig":         {base64.StdEncoding.EncodeToString(ed25519.Sign(priv, msg))},
		"Kanade-Sig-Kid":     {kid},
		"Kanade-Sig-Alg":     {"ed25519-subject-v1"},
		"Kanade-Sig-At":      {strconv.FormatInt(atMs, 10)},
		"Kanade-Sig-Subject": {subject},
	}
}

// clone copies a header so a case can change it.
func clone(h nats.Header) nats.Header {
	out := nats.Header{}
	for k, v := range h {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// writeFile writes content to path with mode perm, creating directories.
func writeFile(t testing.TB, path string, content []byte, perm os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(path), 0o755); err != nil { // past the umask
		t.Fatal(err)
	}
	if err := os.WriteFile(path, content, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // past the umask
		t.Fatal(err)
	}
}

// slogTo returns a text logger writing to w.
func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// TestMain keeps the verifiers' default logging out of the test output.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}
