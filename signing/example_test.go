package signing_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/kanade/kanade-agent/signing"
	"github.com/kanade/kanade-agent/wire"
)

// A backend signs a command; the agent verifies it against its keyring.
func Example() {
	// Backend side: a key pair (here from a fixed seed) and a signed command.
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	body := []byte(`{"request_id":"0190b3c4","script":"Get-Date"}`)
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	hdr := signing.Sign(priv, "ops-2026", at, body)

	// Agent side: the keyring holds the public key under the same kid.
	pub := base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey))
	keyring, err := signing.ParseKeyring([]byte(`[{"kid":"ops-2026","public_key":"` + pub + `","max_age_secs":300}]`))
	if err != nil {
		fmt.Println(err)
		return
	}
	v := signing.NewVerifier(keyring, true)

	d := v.Check(hdr, body, at.Add(time.Minute))
	fmt.Println(d.Outcome, d.Allowed)

	d = v.Check(hdr, []byte(`{"request_id":"0190b3c4","script":"Remove-Item C:\\ -Recurse"}`), at.Add(time.Minute))
	fmt.Println(d.Outcome, d.Allowed, d.Reason)

	d = v.Check(hdr, body, at.Add(10*time.Minute))
	fmt.Println(d.Outcome, d.Allowed)

	d = v.Check(nil, body, at)
	fmt.Println(d.Outcome, d.Allowed)
	if !d.Allowed {
		fmt.Println("refuse with exit", wire.ExitRefused, "result_id", signing.RefusalResultID("0190b3c4", "PC-0042"))
	}
	// Output:
	// verified true
	// invalid false signature does not verify
	// stale false
	// unsigned false
	// refuse with exit 123 result_id a1dc0f19-79c5-545a-a00f-a1f13dc6efe9
}

func ExampleSign() {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	hdr := signing.Sign(priv, "ops-2026", time.UnixMilli(1772366400000), []byte(`{}`))
	fmt.Println(hdr.Get(signing.HeaderKid), hdr.Get(signing.HeaderAlg), hdr.Get(signing.HeaderAt))
	fmt.Println(len(hdr.Get(signing.HeaderSig)))
	// Output:
	// ops-2026 ed25519 1772366400000
	// 88
}

func ExampleKeyring_Fingerprints() {
	keyring, err := signing.ParseKeyring([]byte(`[{"kid":"zero","public_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(keyring.Fingerprints())
	// Output: [zero:66687aadf862bd77]
}

func ExampleParseKeyring_error() {
	_, err := signing.ParseKeyring([]byte(`[{"kid":"short","public_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="}]`))
	fmt.Println(err)
	// Output: signing: invalid keyring: entry 0 (kid "short"): bad public key: public_key decodes to 31 bytes, want 32
}

func ExampleTracker() {
	var tr signing.Tracker
	for _, o := range []signing.Outcome{signing.OutcomeVerified, signing.OutcomeVerified, signing.OutcomeUnsigned, signing.OutcomeVerified} {
		if kind, changed := tr.Observe(o); changed {
			fmt.Println("emit", kind)
		}
	}
	// Output:
	// emit command_signature_verified
	// emit command_signature_unsigned
	// emit command_signature_verified
}

func ExampleRefusalResultID() {
	fmt.Println(signing.RefusalResultID("0190b3c4-7e1f-7a2b-9c3d-4e5f60718293", "PC-0042"))
	// Output: 46e78b64-25fe-517c-b813-a45e77629efe
}
