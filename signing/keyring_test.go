package signing

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

func TestParseKeyring(t *testing.T) {
	pub1, _ := testKey(1)
	pub2, _ := testKey(2)
	b1 := base64.StdEncoding.EncodeToString(pub1)
	b2 := base64.StdEncoding.EncodeToString(pub2)

	k, err := ParseKeyring([]byte("\xef\xbb\xbf  [" +
		`{"kid":"backend-1","public_key":"` + b1 + `","future_field":{"x":1}},` +
		`{"kid":"bg","public_key":"` + b2 + `","label":"break glass","max_age_secs":900,"audit_every_use":false},` +
		`{"kid":"nul","public_key":"` + b2 + `","label":null,"max_age_secs":null,"audit_every_use":true,"require_bound":true}` +
		"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(k.Kids(), ","); got != "backend-1,bg,nul" {
		t.Fatalf("kids %s", got)
	}
	backend, _ := k.Lookup("backend-1")
	if backend.Label != "backend-1" || backend.MaxAge != DefaultMaxAge || backend.BreakGlass || backend.AuditEveryUse || backend.RequireBound {
		t.Errorf("ordinary key: %+v", backend)
	}
	bg, _ := k.Lookup("bg")
	if bg.Label != "break glass" || bg.MaxAge != 900*time.Second || !bg.BreakGlass || !bg.AuditEveryUse {
		t.Errorf("break-glass key (max_age_secs forces audit_every_use, as upstream): %+v", bg)
	}
	nul, _ := k.Lookup("nul")
	if nul.Label != "nul" || nul.MaxAge != DefaultMaxAge || nul.BreakGlass || !nul.AuditEveryUse || !nul.RequireBound {
		t.Errorf("null fields: %+v", nul)
	}
	if fp := k.Fingerprints(); len(fp) != 3 || fp[0] != "backend-1:"+Fingerprint(pub1) {
		t.Errorf("fingerprints %v", fp)
	}
	sum := sha256.Sum256(pub1)
	if Fingerprint(pub1) != hex.EncodeToString(sum[:8]) {
		t.Errorf("fingerprint %q, want the first 8 bytes of SHA-256 in hex", Fingerprint(pub1))
	}
	if e := bg.Entry(); e.MaxAgeSecs == nil || *e.MaxAgeSecs != 900 || e.AuditEveryUse {
		t.Errorf("Entry() %+v", e)
	}

	for _, doc := range []string{"[]", " [ ] "} {
		if k, err := ParseKeyring([]byte(doc)); err != nil || k.Len() != 0 {
			t.Errorf("%q: %v, %d keys", doc, err, k.Len())
		}
	}

	good := `"public_key":"` + b1 + `"`
	bad := []struct {
		name, doc string
		want      error
	}{
		{"null", `null`, wire.ErrInvalid},
		{"empty", ``, wire.ErrInvalid},
		{"object", `{"kid":"a",` + good + `}`, wire.ErrInvalid},
		{"truncated", `[{"kid":"a",` + good, wire.ErrInvalid},
		{"entry not an object", `["a"]`, ErrBadEntry},
		{"no kid", `[{` + good + `}]`, ErrBadEntry},
		{"kid in upper case", `[{"KID":"a",` + good + `}]`, ErrBadEntry},
		{"null kid", `[{"kid":null,` + good + `}]`, ErrBadEntry},
		{"numeric kid", `[{"kid":1,` + good + `}]`, ErrBadEntry},
		{"no public key", `[{"kid":"a"}]`, ErrBadEntry},
		{"repeated kid field", `[{"kid":"a","kid":"b",` + good + `}]`, ErrBadEntry},
		{"repeated max age", `[{"kid":"a",` + good + `,"max_age_secs":5,"max_age_secs":0}]`, ErrBadEntry},
		{"label not a string", `[{"kid":"a",` + good + `,"label":5}]`, ErrBadEntry},
		{"negative max age", `[{"kid":"a",` + good + `,"max_age_secs":-1}]`, ErrBadMaxAge},
		{"fractional max age", `[{"kid":"a",` + good + `,"max_age_secs":1.5}]`, ErrBadMaxAge},
		{"quoted max age", `[{"kid":"a",` + good + `,"max_age_secs":"60"}]`, ErrBadMaxAge},
		{"max age past u64", `[{"kid":"a",` + good + `,"max_age_secs":18446744073709551616}]`, ErrBadMaxAge},
		{"audit not a bool", `[{"kid":"a",` + good + `,"audit_every_use":"yes"}]`, ErrBadEntry},
		{"require_bound null", `[{"kid":"a",` + good + `,"require_bound":null}]`, ErrBadEntry},
		{"empty kid", `[{"kid":"",` + good + `}]`, ErrBadKid},
		{"blank kid", `[{"kid":"  ",` + good + `}]`, ErrBadKid},
		{"control in kid", `[{"kid":"a\n",` + good + `}]`, ErrBadKid},
		{"long kid", `[{"kid":"` + strings.Repeat("k", MaxKidLen+1) + `",` + good + `}]`, ErrBadKid},
		{"short key", `[{"kid":"a","public_key":"AAAA"}]`, ErrBadPublicKey},
		{"not base64", `[{"kid":"a","public_key":"!!"}]`, ErrBadPublicKey},
		{"key with spaces", `[{"kid":"a","public_key":" ` + b1 + `"}]`, ErrBadPublicKey},
		{"duplicate kid", `[{"kid":"a",` + good + `},{"kid":"a","public_key":"` + b2 + `"}]`, ErrDuplicateKid},
		{"too large", `[` + strings.Repeat(" ", MaxKeyringSize) + `]`, ErrTooLarge},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseKeyring([]byte(c.doc))
			if !errors.Is(err, c.want) || !errors.Is(err, ErrInvalidKeyring) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
			var ke *KeyringError
			if !errors.As(err, &ke) {
				t.Fatalf("%T is not a *KeyringError", err)
			}
		})
	}
}

func TestKeyringNil(t *testing.T) {
	var k *Keyring
	if k.Len() != 0 || k.Keys() != nil || k.Kids() != nil || k.Fingerprints() == nil {
		t.Error("nil keyring")
	}
	if _, ok := k.Lookup("a"); ok {
		t.Error("lookup in nil keyring")
	}
}

func TestKeyringErrorMessage(t *testing.T) {
	_, err := NewKeyring([]Entry{{Kid: "ops", PublicKey: "AAAA"}})
	want := `signing: invalid keyring: entry 0 (kid "ops"): bad public key: public_key decodes to 3 bytes, want 32`
	if err == nil || err.Error() != want {
		t.Errorf("error %q\nwant  %q", err, want)
	}
}
