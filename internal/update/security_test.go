package update_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/kanade/kanade-agent/internal/update"
	"github.com/kanade/kanade-agent/signing"
	"github.com/nats-io/nats.go/jetstream"
)

// wantRefused fails unless Consider(target) refused with wantErr, left the
// executable alone, recorded the refusal, and counted nothing as attempted.
func (e *env) wantRefused(t *testing.T, u *update.Updater, target string, wantErr error) {
	t.Helper()
	d, err := u.Consider(context.Background(), cfg(target))
	if d != update.DecisionFailed || !errors.Is(err, wantErr) {
		t.Fatalf("Consider(%s) = %v, %v; want failed, %v", target, d, err, wantErr)
	}
	wantFile(t, e.exe, oldBinary)
	wantNoFile(t, e.exe+".old")
	e.wantNoStaging(t)
	r, ok := u.LastRefusal()
	if !ok || r.Version != target || !strings.Contains(r.Reason, err.Error()) {
		t.Fatalf("LastRefusal = %+v, %v; want %s refused with %v", r, ok, target, err)
	}
	st := e.stateJSON(t)
	if st["attempt"] != nil {
		t.Fatalf("a refusal was recorded as an attempt: %v", st["attempt"])
	}
	if ref, _ := st["refused"].(map[string]any); ref == nil || ref["version"] != target {
		t.Fatalf("state file has no refusal of %s: %v", target, st)
	}
}

// TestRequireSignatureRefusesUnsigned: an agent that enforces command
// signatures (RequireSignature) and has no release keyring refuses an
// unsigned release instead of installing it. Before the fix it was swapped in.
func TestRequireSignatureRefusesUnsigned(t *testing.T) {
	e := newEnv(t)
	e.put(t, "1.2.0", newBinary, nil, "")
	u := e.updater(t, "1.0.0", func(o *update.Options) { o.RequireSignature = true })
	e.wantRefused(t, u, "1.2.0", update.ErrNoReleaseKeys)

	// With a release keyring the unsigned release is still refused, a signed one goes in.
	pub, priv := keyPair(1)
	u2 := e.updater(t, "1.0.0", func(o *update.Options) {
		o.RequireSignature = true
		o.Keyring = keyring(t, "rel-1", pub)
	})
	e.wantRefused(t, u2, "1.2.0", update.ErrUnsigned)
	e.put(t, "1.2.0", newBinary, priv, "rel-1")
	if d, err := u2.Consider(context.Background(), cfg("1.2.0")); !errors.Is(err, update.ErrRestart) {
		t.Fatalf("signed release: %v, %v", d, err)
	}
	wantFile(t, e.exe, newBinary)
	if r, ok := u2.LastRefusal(); ok {
		t.Fatalf("refusal %+v kept after a successful update", r)
	}
}

// TestEmptyKeyringRefusesEverything: a configured but empty release
// keyring ([]) refuses every release, signed or not. Before the fix it
// skipped the check and installed them.
func TestEmptyKeyringRefusesEverything(t *testing.T) {
	_, priv := keyPair(1)
	empty, err := signing.ParseKeyring([]byte("[]"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		priv ed25519.PrivateKey
	}{{"unsigned", nil}, {"signed", priv}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.put(t, "1.2.0", newBinary, tc.priv, "rel-1")
			u := e.updater(t, "1.0.0", func(o *update.Options) { o.Keyring = empty })
			e.wantRefused(t, u, "1.2.0", update.ErrNoReleaseKeys)
		})
	}
}

// TestDowngradeRefused: a properly signed release of an older version is
// not installed over a newer one unless its signature carries the
// allow-downgrade flag or the operator allows downgrades. Before the fix
// it was installed.
func TestDowngradeRefused(t *testing.T) {
	pub, priv := keyPair(1)
	withKeys := func(o *update.Options) { o.Keyring = keyring(t, "rel-1", pub) }

	t.Run("signed old release", func(t *testing.T) {
		e := newEnv(t)
		e.put(t, "1.1.0", newBinary, priv, "rel-1")
		u := e.updater(t, "1.2.0", withKeys)
		e.wantRefused(t, u, "1.1.0", update.ErrDowngrade)
	})
	t.Run("pre-release of the running version", func(t *testing.T) {
		e := newEnv(t)
		e.put(t, "1.2.0-rc.1", newBinary, priv, "rel-1")
		u := e.updater(t, "v1.2.0", withKeys)
		e.wantRefused(t, u, "1.2.0-rc.1", update.ErrDowngrade)
	})
	t.Run("versions that cannot be ordered", func(t *testing.T) {
		e := newEnv(t)
		e.put(t, "nightly", newBinary, priv, "rel-1")
		u := e.updater(t, "1.2.0", withKeys)
		e.wantRefused(t, u, "nightly", update.ErrDowngrade)
	})
	t.Run("unsigned old release without a keyring", func(t *testing.T) {
		e := newEnv(t)
		e.put(t, "1.1.0", newBinary, nil, "")
		u := e.updater(t, "1.2.0", nil)
		e.wantRefused(t, u, "1.1.0", update.ErrDowngrade)
	})
	t.Run("flag added without the signer", func(t *testing.T) {
		e := newEnv(t)
		e.put(t, "1.1.0", newBinary, priv, "rel-1")
		e.rewriteMeta(t, "1.1.0", func(i *jetstream.ObjectInfo) { i.Metadata[update.MetaFlags] = update.FlagAllowDowngrade })
		u := e.updater(t, "1.2.0", withKeys)
		e.wantRefused(t, u, "1.1.0", update.ErrBadSignature)
	})
	t.Run("signed allow-downgrade", func(t *testing.T) {
		e := newEnv(t)
		e.putFlags(t, "1.1.0", newBinary, priv, "rel-1", update.Flags{AllowDowngrade: true})
		u := e.updater(t, "1.2.0", withKeys)
		if d, err := u.Consider(context.Background(), cfg("1.1.0")); !errors.Is(err, update.ErrRestart) {
			t.Fatalf("Consider = %v, %v; want the allowed downgrade installed", d, err)
		}
		wantFile(t, e.exe, newBinary)
	})
	t.Run("operator option", func(t *testing.T) {
		e := newEnv(t)
		e.put(t, "1.1.0", newBinary, priv, "rel-1")
		u := e.updater(t, "1.2.0", func(o *update.Options) { withKeys(o); o.AllowDowngrade = true })
		if d, err := u.Consider(context.Background(), cfg("1.1.0")); !errors.Is(err, update.ErrRestart) {
			t.Fatalf("Consider = %v, %v; want the downgrade installed", d, err)
		}
		wantFile(t, e.exe, newBinary)
	})
}

// TestReleaseFlagsAndFormats: unknown flags and signatures of the older
// formats (digest only; version and digest without flags) are refused.
func TestReleaseFlagsAndFormats(t *testing.T) {
	pub, priv := keyPair(1)
	sum := sha256.Sum256(newBinary)
	for _, tc := range []struct {
		name    string
		meta    map[string]string
		wantErr error
	}{
		{"unknown flag", func() map[string]string {
			m := update.SignRelease(priv, "rel-1", "1.2.0", sum, update.Flags{})
			m[update.MetaFlags] = "allow-downgrade,run-as-user"
			return m
		}(), update.ErrReleaseFlags},
		{"digest-only signature", oldFormat(priv, sum[:]), update.ErrBadSignature},
		{"v1 signature (version and digest)", oldFormat(priv, append([]byte("kanade-release-v1\x001.2.0\x00"), sum[:]...)), update.ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.put(t, "1.2.0", newBinary, nil, "")
			e.rewriteMeta(t, "1.2.0", func(i *jetstream.ObjectInfo) { i.Metadata = tc.meta })
			u := e.updater(t, "1.0.0", func(o *update.Options) { o.Keyring = keyring(t, "rel-1", pub) })
			e.wantRefused(t, u, "1.2.0", tc.wantErr)
		})
	}
}

// oldFormat returns release metadata with a signature over msg.
func oldFormat(priv ed25519.PrivateKey, msg []byte) map[string]string {
	m := update.SignRelease(priv, "rel-1", "x", [32]byte{}, update.Flags{})
	m[update.MetaSig] = base64.StdEncoding.EncodeToString(ed25519.Sign(priv, msg))
	return m
}

func TestParseFlags(t *testing.T) {
	for _, s := range []string{"", "allow-downgrade"} {
		f, err := update.ParseFlags(s)
		if err != nil || f.String() != s {
			t.Errorf("ParseFlags(%q) = %+v, %v", s, f, err)
		}
	}
	for _, s := range []string{",", "allow-downgrade,", "allow-downgrade,allow-downgrade", "Allow-Downgrade", "x", strings.Repeat("a", 300)} {
		if _, err := update.ParseFlags(s); !errors.Is(err, update.ErrReleaseFlags) {
			t.Errorf("ParseFlags(%q) = %v, want ErrReleaseFlags", s, err)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1.2.0", "1.2.0", 0},
		{"v1.2.0", "1.2.0+win", 0},
		{"1.2", "1.2.0", 0},
		{"1.10.0", "1.9.0", 1},
		{"2.0.0", "10.0.0", -1},
		{"1.2.0-rc.1", "1.2.0", -1},
		{"1.2.0-rc.2", "1.2.0-rc.10", -1},
		{"1.2.0-alpha", "1.2.0-alpha.1", -1},
		{"1.2.0-1", "1.2.0-alpha", -1},
		{"1.2.0-beta", "1.2.0-alpha.9", 1},
	} {
		got, err := update.CompareVersions(tc.a, tc.b)
		if err != nil || got != tc.want {
			t.Errorf("CompareVersions(%q, %q) = %d, %v; want %d", tc.a, tc.b, got, err, tc.want)
		}
		if back, _ := update.CompareVersions(tc.b, tc.a); back != -tc.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tc.b, tc.a, back, -tc.want)
		}
	}
	for _, v := range []string{"dev", "", "1.2.3.4", "1..2", "1.2.0-", "1.2.0-a..b", "x1.2", "99999999999999999999.0.0"} {
		if _, err := update.CompareVersions(v, "1.0.0"); err == nil {
			t.Errorf("CompareVersions(%q) accepted", v)
		}
	}
}
