package cli

import (
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/kanade/kanade-agent/signing"
	"github.com/nats-io/nats.go"
)

// signer is the key of a --key FILE flag. A nil *signer signs nothing.
type signer struct {
	kid  string
	priv ed25519.PrivateKey
}

// loadSigner loads the key in path (see LoadKey); "" gives a nil signer.
func loadSigner(path string) (*signer, error) {
	if path == "" {
		return nil, nil
	}
	kid, priv, err := LoadKey(path)
	if err != nil {
		return nil, err
	}
	return &signer{kid: kid, priv: priv}, nil
}

// sign signs msg in the subject-bound form for msg.Subject over msg.Data,
// the only form an enforcing agent accepts for a command, a kill, a
// logs.fetch or a job.tail request; what names the message in errors. A
// nil signer leaves msg unsigned.
func (s *signer) sign(msg *nats.Msg, what string) error {
	if s == nil {
		return nil
	}
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	if err := signing.SignHeader(msg.Header, s.priv, s.kid, msg.Subject, time.Now(), msg.Data); err != nil {
		return fmt.Errorf("sign %s: %w", what, err)
	}
	return nil
}

// signedAs returns ", signed as <kid>", or "" for a nil signer.
func (s *signer) signedAs() string {
	if s == nil {
		return ""
	}
	return ", signed as " + s.kid
}
