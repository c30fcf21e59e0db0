package signing

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"os"
	"testing"

	"github.com/kanade/kanade-agent/wire"
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

// entry returns a keyring entry for pub.
func entry(kid string, pub ed25519.PublicKey, maxAgeSecs int64) wire.KeyringEntry {
	return wire.KeyringEntry{Kid: kid, PublicKey: base64.StdEncoding.EncodeToString(pub), MaxAgeSecs: maxAgeSecs}
}

// keyringJSON marshals entries as a keyring document.
func keyringJSON(t testing.TB, entries ...wire.KeyringEntry) []byte {
	t.Helper()
	b, err := json.Marshal(entries)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustKeyring builds a keyring or fails the test.
func mustKeyring(t testing.TB, entries ...wire.KeyringEntry) *Keyring {
	t.Helper()
	k, err := NewKeyring(entries)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// tempFile writes content to a new temporary file removed at cleanup. It
// avoids t.TempDir, whose os.RemoveAll fails under Wine.
func tempFile(t *testing.T, content []byte) string {
	t.Helper()
	f, err := os.CreateTemp("", "kanade-signing-*.json")
	if err != nil {
		t.Fatal(err)
	}
	path := f.Name()
	t.Cleanup(func() { os.Remove(path) })
	if _, err := f.Write(content); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}
