package signing

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

func TestParseKeyring(t *testing.T) {
	pub1, _ := testKey(1)
	pub2, _ := testKey(2)
	doc := `[
		{"kid":"b-key","public_key":"` + base64.StdEncoding.EncodeToString(pub2) + `","label":"ops 2026","max_age_secs":300},
		{"kid":"a-key","public_key":"` + base64.StdEncoding.EncodeToString(pub1) + `","unknown":"tolerated"}
	]`
	k, err := ParseKeyring([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if k.Len() != 2 {
		t.Fatalf("Len = %d", k.Len())
	}
	want := []string{"a-key:" + Fingerprint(pub1), "b-key:" + Fingerprint(pub2)}
	if got := k.Fingerprints(); !slices.Equal(got, want) {
		t.Errorf("Fingerprints = %q, want %q", got, want)
	}
	key, ok := k.Lookup("b-key")
	if !ok || !key.PublicKey.Equal(pub2) || key.Label != "ops 2026" || key.MaxAge != 5*time.Minute {
		t.Errorf("Lookup(b-key) = %+v, %v", key, ok)
	}
	if key, _ := k.Lookup("a-key"); key.MaxAge != 0 {
		t.Errorf("a-key MaxAge = %v, want 0", key.MaxAge)
	}
	if _, ok := k.Lookup("c-key"); ok {
		t.Error("Lookup(c-key) found something")
	}
	if ks := k.Keys(); len(ks) != 2 || ks[0].Kid != "a-key" || ks[1].Kid != "b-key" {
		t.Errorf("Keys not sorted by kid: %+v", ks)
	}
}

func TestParseKeyringEmpty(t *testing.T) {
	for _, doc := range []string{`[]`, `null`, " \n[ ]\n", "\xef\xbb\xbf[]"} {
		k, err := ParseKeyring([]byte(doc))
		if err != nil {
			t.Fatalf("%q: %v", doc, err)
		}
		if k.Len() != 0 {
			t.Errorf("%q: Len = %d", doc, k.Len())
		}
		if fp := k.Fingerprints(); fp == nil || len(fp) != 0 {
			t.Errorf("%q: Fingerprints = %#v, want empty non-nil", doc, fp)
		}
	}
	var nilK *Keyring
	if nilK.Len() != 0 || nilK.Keys() != nil || nilK.Fingerprints() == nil || nilK.Conflicts() != nil {
		t.Error("nil keyring is not empty")
	}
	if _, ok := nilK.Lookup("x"); ok {
		t.Error("nil keyring found a key")
	}
}

// TestFingerprint checks against SHA-256 of 32 zero bytes, 66687aad....
func TestFingerprint(t *testing.T) {
	if got := Fingerprint(make(ed25519.PublicKey, 32)); got != "66687aadf862bd77" {
		t.Fatalf("Fingerprint(zero key) = %s", got)
	}
}

func TestParseKeyringErrors(t *testing.T) {
	pub1, _ := testKey(1)
	good := base64.StdEncoding.EncodeToString(pub1)
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	cases := []struct {
		name    string
		doc     string
		is      error
		entry   int
		message string
	}{
		{"malformed JSON", `[{"kid":"a",`, wire.ErrInvalid, -1, "malformed JSON"},
		{"not an array", `{"kid":"a","public_key":"` + good + `"}`, wire.ErrInvalid, -1, "keyring"},
		{"empty document", ``, wire.ErrInvalid, -1, "keyring"},
		{"wrong field type", `[{"kid":"a","public_key":"` + good + `","max_age_secs":"5m"}]`, wire.ErrInvalid, -1, "max_age_secs"},
		{"missing public key", `[{"kid":"a"}]`, wire.ErrInvalid, -1, "lacks kid or public_key"},
		{"missing kid", `[{"public_key":"` + good + `"}]`, wire.ErrInvalid, -1, "lacks kid or public_key"},
		{"bad base64", `[{"kid":"a","public_key":"not base64!"}]`, ErrBadPublicKey, 0, "not standard base64"},
		{"url base64", `[{"kid":"a","public_key":"` + strings.NewReplacer("+", "-", "/", "_").Replace(base64.StdEncoding.EncodeToString([]byte(strings.Repeat("\xfb\xff", 16)))) + `"}]`, ErrBadPublicKey, 0, "not standard base64"},
		{"unpadded", `[{"kid":"a","public_key":"` + strings.TrimRight(good, "=") + `"}]`, ErrBadPublicKey, 0, "not standard base64"},
		{"31-byte key", `[{"kid":"a","public_key":"` + good + `"},{"kid":"short","public_key":"` + b64(31) + `"}]`, ErrBadPublicKey, 1, "decodes to 31 bytes, want 32"},
		{"33-byte key", `[{"kid":"a","public_key":"` + b64(33) + `"}]`, ErrBadPublicKey, 0, "decodes to 33 bytes, want 32"},
		{"64-byte private key", `[{"kid":"a","public_key":"` + b64(64) + `"}]`, ErrBadPublicKey, 0, "decodes to 64 bytes"},
		{"duplicate kid", `[{"kid":"a","public_key":"` + good + `"},{"kid":"b","public_key":"` + good + `"},{"kid":"a","public_key":"` + b64(32) + `"}]`, ErrDuplicateKid, 2, `entry 2 (kid "a"): duplicate kid`},
		{"negative max age", `[{"kid":"a","public_key":"` + good + `","max_age_secs":-1}]`, ErrBadMaxAge, 0, "-1 is negative"},
		{"kid too long", `[{"kid":"` + strings.Repeat("k", MaxKidLen+1) + `","public_key":"` + good + `"}]`, ErrBadKid, 0, "257 bytes"},
		{"kid control char", `[{"kid":"a\nb","public_key":"` + good + `"}]`, ErrBadKid, 0, "control character"},
		{"too large", `[` + strings.Repeat(" ", MaxKeyringSize) + `]`, ErrTooLarge, -1, "too large"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, err := ParseKeyring([]byte(c.doc))
			if err == nil {
				t.Fatalf("no error; keyring %v", k.Fingerprints())
			}
			if k != nil {
				t.Error("keyring returned with an error")
			}
			if !errors.Is(err, ErrInvalidKeyring) || !errors.Is(err, c.is) {
				t.Errorf("error %v does not wrap ErrInvalidKeyring and %v", err, c.is)
			}
			var ke *KeyringError
			if !errors.As(err, &ke) || ke.Entry != c.entry {
				t.Errorf("error %#v: want *KeyringError with entry %d", err, c.entry)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "signing: invalid keyring") || !strings.Contains(msg, c.message) {
				t.Errorf("message %q lacks %q", msg, c.message)
			}
			if strings.Count(msg, "signing:") != 1 {
				t.Errorf("message %q repeats the package prefix", msg)
			}
			t.Log(msg)
		})
	}
}

func TestNewKeyring(t *testing.T) {
	pub, _ := testKey(1)
	k, err := NewKeyring([]wire.KeyringEntry{entry("a", pub, 1e15)})
	if err != nil {
		t.Fatal(err)
	}
	if key, _ := k.Lookup("a"); key.MaxAge <= 0 || key.MaxAge > maxMaxAge {
		t.Errorf("huge max_age_secs gave MaxAge %v; want capped at %v", key.MaxAge, maxMaxAge)
	}
	_, err = NewKeyring([]wire.KeyringEntry{{Kid: "", PublicKey: "x"}})
	if !errors.Is(err, ErrBadKid) {
		t.Errorf("empty kid: %v", err)
	}
}

func TestLoadFile(t *testing.T) {
	pub, _ := testKey(1)
	path := tempFile(t, append([]byte("\xef\xbb\xbf"), keyringJSON(t, entry("a", pub, 0))...))
	k, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	key, ok := k.Lookup("a")
	if !ok || key.Source != "file "+path {
		t.Errorf("Lookup = %+v, %v", key, ok)
	}

	bad := tempFile(t, []byte(`[{"kid":"a","public_key":"AAAA"}]`))
	_, err = LoadFile(bad)
	if !errors.Is(err, ErrBadPublicKey) || !strings.Contains(err.Error(), "file "+bad+": entry 0") {
		t.Errorf("bad file: %v", err)
	}

	_, err = LoadFile(path + ".missing")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
}

func TestLoad(t *testing.T) {
	pub, _ := testKey(1)
	path := tempFile(t, keyringJSON(t, entry("a", pub, 0)))
	k, err := Load(LoadOptions{File: path})
	if err != nil || k.Len() != 1 {
		t.Fatalf("Load = %v, %v", k, err)
	}
	k, err = Load(LoadOptions{File: path + ".missing"})
	if err != nil || k.Len() != 0 {
		t.Fatalf("missing file: Load = %v, %v; want empty", k, err)
	}
	k, err = Load(LoadOptions{})
	if err != nil || k.Len() != 0 {
		t.Fatalf("no sources: Load = %v, %v", k, err)
	}
	bad := tempFile(t, []byte(`[`))
	if _, err := Load(LoadOptions{File: bad}); !errors.Is(err, ErrInvalidKeyring) {
		t.Fatalf("malformed file: %v", err)
	}
	if err := os.WriteFile(bad, make([]byte, MaxKeyringSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(LoadOptions{File: bad}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("huge file: %v", err)
	}
}

func TestMerge(t *testing.T) {
	pub1, _ := testKey(1)
	pub2, _ := testKey(2)
	pub3, _ := testKey(3)
	file := mustKeyring(t, entry("a", pub1, 0), entry("b", pub2, 0), entry("c", pub3, 60))
	reg := mustKeyring(t,
		wire.KeyringEntry{Kid: "a", PublicKey: base64.StdEncoding.EncodeToString(pub1), Label: "same key, other label"},
		entry("b", pub3, 0),  // other key: conflict
		entry("c", pub3, 61), // other max age: conflict
		entry("d", pub2, 0),  // new
	)
	m := Merge(file, reg)
	if got, want := m.Fingerprints(), []string{"a:" + Fingerprint(pub1), "b:" + Fingerprint(pub2), "c:" + Fingerprint(pub3), "d:" + Fingerprint(pub2)}; !slices.Equal(got, want) {
		t.Errorf("Fingerprints = %q, want %q", got, want)
	}
	if got := m.Conflicts(); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("Conflicts = %q, want [b c]", got)
	}
	if key, _ := m.Lookup("c"); key.MaxAge != time.Minute {
		t.Errorf("file did not win: c MaxAge %v", key.MaxAge)
	}
	if Merge(nil, nil).Len() != 0 || Merge(file, nil).Len() != 3 || Merge(nil, reg).Len() != 4 {
		t.Error("Merge with nil")
	}
	if got := Merge(m, nil).Conflicts(); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("primary's conflicts lost: %q", got)
	}
}

func TestShorten(t *testing.T) {
	long := strings.Repeat("é", 100)
	s := shorten(long)
	if len(s) > 64 || !strings.HasSuffix(s, "…") || shorten(s) != s {
		t.Errorf("shorten = %q (%d bytes)", s, len(s))
	}
	if shorten("\xff") != "\uFFFD" || shorten("ok") != "ok" {
		t.Error("shorten of short strings")
	}
}
