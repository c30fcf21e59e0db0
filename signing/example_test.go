package signing_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/kanade/kanade-agent/signing"
)

// A backend signs a command for the subject it publishes it on; the agent
// verifies it against the subject it arrived on.
func ExampleSign() {
	pub, priv, _ := ed25519.GenerateKey(nil)
	doc, _ := json.Marshal([]signing.Entry{{Kid: "backend-1", PublicKey: base64.StdEncoding.EncodeToString(pub)}})
	keyring, err := signing.ParseKeyring(doc)
	if err != nil {
		panic(err)
	}
	v := signing.NewVerifier(keyring, true)

	body := []byte(`{"id":"adhoc-run","version":"1","request_id":"r-1","shell":"sh","script":"id","timeout_secs":30}`)
	hdr, err := signing.Sign(priv, "backend-1", "commands.pc.PC-A", time.Now(), body)
	if err != nil {
		panic(err)
	}
	fmt.Println(hdr.Get(signing.HeaderAlg))

	d := v.Check("commands.pc.PC-A", hdr, body, time.Now())
	fmt.Println(d.Outcome.Kind(), d.Allowed)
	d = v.Check("commands.pc.PC-B", hdr, body, time.Now())
	fmt.Println(d.Outcome.Kind(), d.Allowed)
	// Output:
	// ed25519-subject-v1
	// command_signature_ok true
	// command_signature_misaddressed false
}

// The agent builds its verifier from upstream's sources, reloading them when
// a command names an unknown key and on every heartbeat (Refresh).
func ExampleNew() {
	src := signing.DefaultSources() // registry on Windows, /etc/kanade elsewhere
	enforce, err := src.EnforceRequested()
	if err != nil {
		fmt.Println("enforcement switch:", err) // counts as enforcing
	}
	v := signing.New(signing.Options{Source: src, Enforce: enforce})
	if err := v.LoadError(); err != nil {
		fmt.Println("keyring:", err)
	}
	// On each heartbeat:
	_ = v.Refresh()
	_ = v.Fingerprints() // command_keys
	_ = v.Enforcing()    // enforcing
}
