package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/kanade/kanade-agent/internal/fsutil"
	"github.com/kanade/kanade-agent/signing"
)

// KeyFile is the content of a private key file written by keygen and read
// by LoadKey: {"kid":"ops-2026","private_key":"<standard base64>"}. The
// private key is the 64-byte ed25519 private key (seed then public key);
// LoadKey also accepts the 32-byte seed alone.
type KeyFile struct {
	// Kid is the key id, sent in the Kanade-Sig-Kid header and the kanade-sig-kid release metadata.
	Kid string `json:"kid"`
	// PrivateKey is the standard base64 (padded) of the ed25519 private key or seed.
	PrivateKey string `json:"private_key"`
}

// maxKeyFile bounds what LoadKey reads; a key file is about 150 bytes.
const maxKeyFile = 64 << 10

var keygenCmd = &command{
	name:    "keygen",
	args:    "--kid KID --out FILE [--force] [--label TEXT] [--max-age-secs N]",
	summary: "make an ed25519 signing key and print its public keyring entry",
	long: `Writes a new private key to FILE (mode 0600; an existing file is kept
unless --force) as {"kid":"KID","private_key":"<base64>"}, the format
'exec --key' and 'release put --key' read, and prints on stdout the public
keyring entry, {"kid":"KID","public_key":"<base64>"}: add it to the JSON
array of the agents' keyring file (--keyring; also --release-keyring for
releases). The kid follows the keyring's rules: 1 to 256 bytes of UTF-8
without control characters.`,
	run: runKeygen,
}

func runKeygen(_ context.Context, inv *invocation, args []string) error {
	fset := inv.flags()
	kid := fset.String("kid", "", "the key's id `KID`, as the agents' keyring names it (required)")
	out := fset.String("out", "", "`FILE` to write the private key to (required)")
	force := fset.Bool("force", false, "replace FILE if it exists (the key in it is lost)")
	label := fset.String("label", "", "`TEXT` describing the key, the keyring entry's label")
	maxAge := fset.Int64("max-age-secs", 0, "refuse signatures older than `N` seconds (keyring entry max_age_secs; 0: the agents' default, 6 days)")
	if err := inv.parse(fset, args); err != nil {
		return err
	}
	if len(fset.Args()) > 0 {
		return usageErrorf("keygen takes no arguments, got %q", fset.Args())
	}
	if *kid == "" {
		return usageErrorf("--kid is required: the key id agents will know this key by, such as ops-2026")
	}
	if *out == "" {
		return usageErrorf("--out is required: the file to write the private key to")
	}
	if err := validKid(*kid); err != nil {
		return usageErrorf("--kid %q: %v", *kid, err)
	}
	if *maxAge < 0 {
		return usageErrorf("--max-age-secs %d must not be negative", *maxAge)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("generate key: %w", err)
	}
	entry := signing.Entry{Kid: *kid, PublicKey: base64.StdEncoding.EncodeToString(pub), Label: *label}
	if *maxAge > 0 {
		secs := uint64(*maxAge)
		entry.MaxAgeSecs = &secs
	}
	if _, err := signing.NewKeyring([]signing.Entry{entry}); err != nil {
		return usageErr(err) // not reached: the kid and max age were checked
	}
	data, err := json.MarshalIndent(KeyFile{Kid: *kid, PrivateKey: base64.StdEncoding.EncodeToString(priv)}, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if err := writeKeyFile(*out, data, *force); err != nil {
		return err
	}
	line, err := json.Marshal(entry)
	if err != nil {
		return err
	}
	fmt.Fprintf(inv.env.Stdout, "%s\n", line)
	fmt.Fprintf(inv.env.Stderr, "kanade keygen: wrote the private key %s to %s (keep it secret); add the entry above (fingerprint %s) to the agents' keyring\n",
		*kid, *out, signing.Fingerprint(pub))
	return nil
}

// writeKeyFile writes data to path with mode 0600: atomically replacing
// it with force, else only when path does not exist.
func writeKeyFile(path string, data []byte, force bool) (err error) {
	if force {
		if err := fsutil.WriteFileAtomic(path, data, 0o600); err != nil {
			return fmt.Errorf("write key file: %w", err)
		}
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("key file %s already exists: choose another --out, or pass --force to replace it (the key in it is then lost)", path)
	}
	if err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(path)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	return nil
}

// validKid checks kid with the keyring's own rules.
func validKid(kid string) error {
	if err := signing.ValidKid(kid); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "signing: "))
	}
	return nil
}

// LoadKey reads a private key file written by keygen ({"kid":...,
// "private_key":...}) and returns its kid and ed25519 private key. The
// private key is the standard base64 of the 64-byte private key, whose
// public half must match its seed, or of the 32-byte seed alone. The kid
// must pass the keyring's rules. Errors name the file and what is wrong.
func LoadKey(path string) (kid string, priv ed25519.PrivateKey, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, fmt.Errorf("key file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return "", nil, fmt.Errorf("key file %s: %w", path, err)
	}
	if len(b) > maxKeyFile {
		return "", nil, fmt.Errorf("key file %s is over %d bytes: not a key file written by kanade keygen", path, maxKeyFile)
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	var kf KeyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return "", nil, fmt.Errorf(`key file %s is not JSON of the form {"kid":"...","private_key":"..."} (written by kanade keygen): %v`, path, err)
	}
	if kf.Kid == "" {
		return "", nil, fmt.Errorf("key file %s has no kid", path)
	}
	if err := validKid(kf.Kid); err != nil {
		return "", nil, fmt.Errorf("key file %s: kid %q: %v", path, kf.Kid, err)
	}
	if kf.PrivateKey == "" {
		return "", nil, fmt.Errorf("key file %s has no private_key", path)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSpace(kf.PrivateKey))
	if err != nil {
		return "", nil, fmt.Errorf("key file %s: private_key is not standard base64: %v", path, err)
	}
	switch len(raw) {
	case ed25519.SeedSize:
		priv = ed25519.NewKeyFromSeed(raw)
	case ed25519.PrivateKeySize:
		priv = ed25519.PrivateKey(raw)
		if want := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize]); !bytes.Equal(want[ed25519.SeedSize:], raw[ed25519.SeedSize:]) {
			return "", nil, fmt.Errorf("key file %s: private_key is damaged: its public half does not match its seed", path)
		}
	default:
		return "", nil, fmt.Errorf("key file %s: private_key decodes to %d bytes, want %d (an ed25519 private key) or %d (its seed)",
			path, len(raw), ed25519.PrivateKeySize, ed25519.SeedSize)
	}
	return kf.Kid, priv, nil
}
