package signing

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// fixture is a keyring of two keys: "k1" without max age and "k2" with a
// 300 s max age; the private key of a third, unknown key; and a clock.
type fixture struct {
	priv1, priv2, other ed25519.PrivateKey
	keyring             *Keyring
	now                 time.Time
	body                []byte
}

func newFixture(t testing.TB) *fixture {
	pub1, priv1 := testKey(1)
	pub2, priv2 := testKey(2)
	_, other := testKey(3)
	return &fixture{
		priv1: priv1, priv2: priv2, other: other,
		keyring: mustKeyring(t, entry("k1", pub1, 0), entry("k2", pub2, 300)),
		now:     time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		body:    []byte(`{"request_id":"r1","script":"Get-Date"}`),
	}
}

// signed returns fresh headers signed by k1 now, edited by edit.
func (f *fixture) signed(edit func(h nats.Header)) nats.Header {
	h := Sign(f.priv1, "k1", f.now, f.body)
	if edit != nil {
		edit(h)
	}
	return h
}

func TestRoundTrip(t *testing.T) {
	f := newFixture(t)
	v := NewVerifier(f.keyring, true)
	for _, body := range [][]byte{nil, {}, f.body, make([]byte, 1<<20)} {
		d := v.Check(Sign(f.priv2, "k2", f.now.Add(-time.Minute), body), body, f.now)
		if d.Outcome != OutcomeVerified || !d.Allowed || d.Kid != "k2" || d.Reason != "" {
			t.Errorf("body of %d bytes: %+v, want verified and allowed", len(body), d)
		}
		if !d.At.Equal(f.now.Add(-time.Minute)) {
			t.Errorf("At = %v, want %v", d.At, f.now.Add(-time.Minute))
		}
	}
}

func TestVerifyOutcomes(t *testing.T) {
	f := newFixture(t)
	huge := strings.Repeat("A", 1<<20)
	goodSig := func() string { return f.signed(nil).Get(HeaderSig) }
	cases := []struct {
		name string
		hdr  nats.Header
		body []byte // nil means f.body
		want Outcome
	}{
		{"verified", f.signed(nil), nil, OutcomeVerified},
		{"nil header", nil, nil, OutcomeUnsigned},
		{"empty header", nats.Header{}, nil, OutcomeUnsigned},
		{"sig key with no values", nats.Header{HeaderSig: {}}, nil, OutcomeUnsigned},
		{"only kid and at", f.signed(func(h nats.Header) { h.Del(HeaderSig) }), nil, OutcomeUnsigned},
		{"lower-case header name is another header", nats.Header{"kanade-sig": {goodSig()}}, nil, OutcomeUnsigned},
		{"wrong kid", f.signed(func(h nats.Header) { h.Set(HeaderKid, "nope") }), nil, OutcomeUnknownKid},
		{"unknown signer", Sign(f.other, "k3", f.now, f.body), nil, OutcomeUnknownKid},
		{"tampered body", f.signed(nil), []byte(`{"request_id":"r1","script":"rm -r /"}`), OutcomeInvalid},
		{"tampered at", f.signed(func(h nats.Header) { h.Set(HeaderAt, fmt.Sprint(f.now.UnixMilli()+1)) }), nil, OutcomeInvalid},
		{"other key under known kid", f.signed(func(h nats.Header) {
			h.Set(HeaderSig, Sign(f.other, "k1", f.now, f.body).Get(HeaderSig))
		}), nil, OutcomeInvalid},
		{"signed by k2 sent as k1", Sign(f.priv2, "k1", f.now, f.body), nil, OutcomeInvalid},
		{"empty sig", f.signed(func(h nats.Header) { h.Set(HeaderSig, "") }), nil, OutcomeInvalid},
		{"sig not base64", f.signed(func(h nats.Header) { h.Set(HeaderSig, strings.Repeat("!", 88)) }), nil, OutcomeInvalid},
		{"sig url base64", f.signed(func(h nats.Header) {
			h.Set(HeaderSig, strings.NewReplacer("+", "-", "/", "_").Replace(strings.Repeat("+/", 43)+"=="))
		}), nil, OutcomeInvalid},
		{"sig unpadded", f.signed(func(h nats.Header) { h.Set(HeaderSig, strings.TrimRight(goodSig(), "=")) }), nil, OutcomeInvalid},
		{"sig 63 bytes", f.signed(func(h nats.Header) {
			h.Set(HeaderSig, base64.StdEncoding.EncodeToString(make([]byte, 63)))
		}), nil, OutcomeInvalid},
		{"sig 65 bytes", f.signed(func(h nats.Header) {
			h.Set(HeaderSig, base64.StdEncoding.EncodeToString(make([]byte, 65)))
		}), nil, OutcomeInvalid},
		{"sig zero", f.signed(func(h nats.Header) {
			h.Set(HeaderSig, base64.StdEncoding.EncodeToString(make([]byte, 64)))
		}), nil, OutcomeInvalid},
		{"sig huge", f.signed(func(h nats.Header) { h.Set(HeaderSig, huge) }), nil, OutcomeInvalid},
		{"sig repeated", f.signed(func(h nats.Header) { h.Add(HeaderSig, goodSig()) }), nil, OutcomeInvalid},
		{"alg missing", f.signed(func(h nats.Header) { h.Del(HeaderAlg) }), nil, OutcomeInvalid},
		{"alg wrong", f.signed(func(h nats.Header) { h.Set(HeaderAlg, "rsa") }), nil, OutcomeInvalid},
		{"alg upper case", f.signed(func(h nats.Header) { h.Set(HeaderAlg, "ED25519") }), nil, OutcomeInvalid},
		{"alg repeated", f.signed(func(h nats.Header) { h.Add(HeaderAlg, "ed25519") }), nil, OutcomeInvalid},
		{"alg huge", f.signed(func(h nats.Header) { h.Set(HeaderAlg, huge) }), nil, OutcomeInvalid},
		{"at missing", f.signed(func(h nats.Header) { h.Del(HeaderAt) }), nil, OutcomeInvalid},
		{"at empty", f.signed(func(h nats.Header) { h.Set(HeaderAt, "") }), nil, OutcomeInvalid},
		{"at negative", f.signed(func(h nats.Header) { h.Set(HeaderAt, "-1") }), nil, OutcomeInvalid},
		{"at plus sign", f.signed(func(h nats.Header) { h.Set(HeaderAt, "+"+h.Get(HeaderAt)) }), nil, OutcomeInvalid},
		{"at spaces", f.signed(func(h nats.Header) { h.Set(HeaderAt, " "+h.Get(HeaderAt)) }), nil, OutcomeInvalid},
		{"at seconds float", f.signed(func(h nats.Header) { h.Set(HeaderAt, "1772366400.5") }), nil, OutcomeInvalid},
		{"at rfc3339", f.signed(func(h nats.Header) { h.Set(HeaderAt, f.now.Format(time.RFC3339)) }), nil, OutcomeInvalid},
		{"at overflows int64", f.signed(func(h nats.Header) { h.Set(HeaderAt, "9999999999999999999") }), nil, OutcomeInvalid},
		{"at 20 digits", f.signed(func(h nats.Header) { h.Set(HeaderAt, "00000000000000000001") }), nil, OutcomeInvalid},
		{"at huge", f.signed(func(h nats.Header) { h.Set(HeaderAt, strings.Repeat("9", 1<<20)) }), nil, OutcomeInvalid},
		{"at repeated", f.signed(func(h nats.Header) { h.Add(HeaderAt, h.Get(HeaderAt)) }), nil, OutcomeInvalid},
		{"kid missing", f.signed(func(h nats.Header) { h.Del(HeaderKid) }), nil, OutcomeInvalid},
		{"kid empty", f.signed(func(h nats.Header) { h.Set(HeaderKid, "") }), nil, OutcomeInvalid},
		{"kid repeated", f.signed(func(h nats.Header) { h.Add(HeaderKid, "k1") }), nil, OutcomeInvalid},
		{"kid huge", f.signed(func(h nats.Header) { h.Set(HeaderKid, huge) }), nil, OutcomeInvalid},
		{"kid garbage bytes", f.signed(func(h nats.Header) { h.Set(HeaderKid, "\xff\x00\r\n") }), nil, OutcomeUnknownKid},
		{"stale", Sign(f.priv2, "k2", f.now.Add(-301*time.Second), f.body), nil, OutcomeStale},
		{"stale by 1 ms", Sign(f.priv2, "k2", f.now.Add(-300*time.Second-time.Millisecond), f.body), nil, OutcomeStale},
		{"max age exactly", Sign(f.priv2, "k2", f.now.Add(-300*time.Second), f.body), nil, OutcomeVerified},
		{"no max age, 10 years old", Sign(f.priv1, "k1", f.now.AddDate(-10, 0, 0), f.body), nil, OutcomeVerified},
		{"at epoch, no max age", Sign(f.priv1, "k1", time.UnixMilli(0), f.body), nil, OutcomeVerified},
		{"clock ahead 1h1ms", Sign(f.priv1, "k1", f.now.Add(time.Hour+time.Millisecond), f.body), nil, OutcomeClockAhead},
		{"clock ahead 2h", Sign(f.priv2, "k2", f.now.Add(2*time.Hour), f.body), nil, OutcomeClockAhead},
		{"clock ahead far future", Sign(f.priv1, "k1", time.UnixMilli(1<<62), f.body), nil, OutcomeClockAhead},
		{"ahead exactly 1h", Sign(f.priv1, "k1", f.now.Add(time.Hour), f.body), nil, OutcomeVerified},
		{"ahead 59m", Sign(f.priv2, "k2", f.now.Add(59*time.Minute), f.body), nil, OutcomeVerified},
		{"forged stale at is invalid", f.signed(func(h nats.Header) { h.Set(HeaderKid, "k2"); h.Set(HeaderAt, "1") }), nil, OutcomeInvalid},
		{"forged future at is invalid", f.signed(func(h nats.Header) { h.Set(HeaderAt, "9223372036854775807") }), nil, OutcomeInvalid},
	}
	seen := map[Outcome]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := c.body
			if body == nil {
				body = f.body
			}
			v := NewVerifier(f.keyring, true)
			d := v.Check(c.hdr, body, f.now)
			if d.Outcome != c.want {
				t.Fatalf("Check = %s (%s), want %s", d.Outcome, d.Reason, c.want)
			}
			if got := v.Verify(c.hdr, body, f.now); got != c.want {
				t.Fatalf("Verify = %s, want %s", got, c.want)
			}
			if (d.Outcome == OutcomeVerified) != (d.Reason == "") {
				t.Errorf("Reason %q for outcome %s", d.Reason, d.Outcome)
			}
			if len(d.Kid) > 64 || len(d.Reason) > 200 {
				t.Errorf("Decision echoes too much of the headers: kid %d bytes, reason %q", len(d.Kid), d.Reason)
			}
			if d.Allowed != (c.want == OutcomeVerified) || !d.Enforcing {
				t.Errorf("enforcing: Allowed = %v, Enforcing = %v for %s", d.Allowed, d.Enforcing, c.want)
			}
			seen[c.want] = true
		})
	}
	for _, o := range Outcomes() {
		if !seen[o] {
			t.Errorf("no case for outcome %s", o)
		}
	}
}

func TestTamperedBody(t *testing.T) {
	f := newFixture(t)
	v := NewVerifier(f.keyring, false)
	h := f.signed(nil)
	for i := range f.body {
		b := []byte(string(f.body))
		b[i] ^= 1
		if o := v.Verify(h, b, f.now); o != OutcomeInvalid {
			t.Fatalf("byte %d flipped: %s, want invalid", i, o)
		}
	}
	if o := v.Verify(h, append([]byte(string(f.body)), ' '), f.now); o != OutcomeInvalid {
		t.Fatalf("byte appended: %s, want invalid", o)
	}
}

func TestWrongKid(t *testing.T) {
	f := newFixture(t)
	d := NewVerifier(f.keyring, true).Check(Sign(f.priv1, "k9", f.now, f.body), f.body, f.now)
	if d.Outcome != OutcomeUnknownKid || d.Kid != "k9" || d.Allowed {
		t.Fatalf("%+v, want unknown_kid k9 refused", d)
	}
}

func TestEnforcing(t *testing.T) {
	f := newFixture(t)
	headers := map[Outcome]nats.Header{
		OutcomeVerified:   f.signed(nil),
		OutcomeUnsigned:   nil,
		OutcomeUnknownKid: Sign(f.other, "k3", f.now, f.body),
		OutcomeInvalid:    f.signed(func(h nats.Header) { h.Set(HeaderAlg, "none") }),
		OutcomeStale:      Sign(f.priv2, "k2", f.now.Add(-time.Hour), f.body),
		OutcomeClockAhead: Sign(f.priv1, "k1", f.now.Add(3*time.Hour), f.body),
	}
	for _, enforcing := range []bool{true, false} {
		v := NewVerifier(f.keyring, enforcing)
		if v.Enforcing() != enforcing || v.EnforcingSwitch() != enforcing {
			t.Fatalf("Enforcing() = %v, switch %v, want %v", v.Enforcing(), v.EnforcingSwitch(), enforcing)
		}
		for o, h := range headers {
			d := v.Check(h, f.body, f.now)
			if d.Outcome != o {
				t.Fatalf("setup: %s gave %s", o, d.Outcome)
			}
			want := !enforcing || o == OutcomeVerified
			if d.Allowed != want || v.Allowed(o) != want || d.Enforcing != enforcing {
				t.Errorf("enforcing=%v %s: Allowed = %v / %v, want %v", enforcing, o, d.Allowed, v.Allowed(o), want)
			}
		}
	}
}

func TestEmptyKeyringNeverEnforces(t *testing.T) {
	f := newFixture(t)
	empty, err := ParseKeyring([]byte(`[]`))
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]*Verifier{
		"zero Verifier":      {},
		"nil keyring":        NewVerifier(nil, true),
		"empty keyring":      NewVerifier(empty, true),
		"zero-value Keyring": NewVerifier(&Keyring{}, true),
	} {
		v.SetEnforcing(true)
		if v.Enforcing() {
			t.Errorf("%s: Enforcing() = true with an empty keyring", name)
		}
		for _, h := range []nats.Header{nil, f.signed(nil), {HeaderSig: {"garbage"}}} {
			d := v.Check(h, f.body, f.now)
			if !d.Allowed || d.Enforcing {
				t.Errorf("%s: %+v refused with an empty keyring", name, d)
			}
		}
		if got := v.Verify(f.signed(nil), f.body, f.now); got != OutcomeUnknownKid {
			t.Errorf("%s: signed command is %s, want unknown_kid (still observed)", name, got)
		}
		if v.Keyring() == nil || v.Keyring().Len() != 0 {
			t.Errorf("%s: Keyring() = %v", name, v.Keyring())
		}
	}
}

func TestLiveSwap(t *testing.T) {
	f := newFixture(t)
	v := &Verifier{}
	v.SetEnforcing(true)
	if !v.Check(nil, f.body, f.now).Allowed {
		t.Fatal("unsigned refused before any keyring")
	}
	v.SetKeyring(f.keyring)
	if v.Check(nil, f.body, f.now).Allowed {
		t.Fatal("unsigned allowed after the keyring arrived")
	}
	v.SetEnforcing(false)
	if !v.Check(nil, f.body, f.now).Allowed {
		t.Fatal("unsigned refused after enforcing was switched off")
	}
	v.SetEnforcing(true)
	v.SetKeyring(nil)
	if !v.Check(nil, f.body, f.now).Allowed {
		t.Fatal("unsigned refused after the keyring was emptied")
	}
}

// TestConcurrentSwap runs checks while the keyring and switch change; run
// with -race.
func TestConcurrentSwap(t *testing.T) {
	f := newFixture(t)
	v := NewVerifier(nil, true)
	h := f.signed(nil)
	var wg, writer sync.WaitGroup
	stop := make(chan struct{})
	writer.Add(1)
	go func() {
		defer writer.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%2 == 0 {
				v.SetKeyring(f.keyring)
			} else {
				v.SetKeyring(nil)
			}
			v.SetEnforcing(i%3 != 0)
		}
	}()
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				d := v.Check(h, f.body, f.now)
				switch {
				case d.Outcome != OutcomeVerified && d.Outcome != OutcomeUnknownKid:
					t.Errorf("outcome %s", d.Outcome)
					return
				case d.Outcome == OutcomeUnknownKid && d.Enforcing:
					t.Errorf("enforcing with the empty keyring it checked against")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	writer.Wait()
}
