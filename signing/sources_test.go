package signing

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/fsutil"
	"github.com/kanade/kanade-agent/internal/natstest"
)

func TestDefaultSources(t *testing.T) {
	s := DefaultSources()
	if runtime.GOOS == "windows" {
		if s.Registry != `HKLM\SOFTWARE\kanade\agent` || s.KeysFile != "" || s.EnforceFile != "" {
			t.Errorf("windows: %+v", s)
		}
		return
	}
	if s.Registry != "" || s.KeysFile != "/etc/kanade/command-keys.json" || s.EnforceFile != "/etc/kanade/require-signed-commands" {
		t.Errorf("%s: %+v", runtime.GOOS, s)
	}
}

// TestSourcesFiles reads the keyring and the enforcement switch from the
// default file layout under a temporary root.
func TestSourcesFiles(t *testing.T) {
	root := natstest.TempDir(t)
	s := DefaultSourcesAt(root)
	if want := filepath.Join(root, "etc", "kanade", "command-keys.json"); s.KeysFile != want {
		t.Fatalf("KeysFile %q, want %q", s.KeysFile, want)
	}

	// Nothing provisioned: no keys, not enforcing, no error.
	if doc, present, err := s.ReadKeys(); err != nil || present || doc != nil {
		t.Fatalf("nothing provisioned: %q %v %v", doc, present, err)
	}
	if on, err := s.EnforceRequested(); on || err != nil {
		t.Fatalf("no enforcement file: %v %v", on, err)
	}

	pub, _ := testKey(1)
	writeFile(t, s.KeysFile, keyringJSON(t, entry("k1", pub)), 0o600)
	k, err := s.Load()
	if err != nil || k.Len() != 1 {
		t.Fatalf("Load: %v, %d keys", err, k.Len())
	}
	if key, _ := k.Lookup("k1"); key.Source != "file "+s.KeysFile {
		t.Errorf("source %q", key.Source)
	}

	for content, want := range map[string]bool{
		"1\n": true, "true": true, " TRUE ": true, "Yes\r\n": true, "yes": true,
		"0": false, "": false, "no": false, "enforce": false, "2": false,
	} {
		writeFile(t, s.EnforceFile, []byte(content), 0o600)
		if on, err := s.EnforceRequested(); on != want || err != nil {
			t.Errorf("enforcement file %q: %v %v, want %v", content, on, err, want)
		}
	}

	// A blank keyring file is an error (write [] to revoke); [] is no keys.
	writeFile(t, s.KeysFile, []byte(" \n"), 0o600)
	if _, _, err := s.ReadKeys(); !errors.Is(err, ErrInvalidKeyring) || !strings.Contains(err.Error(), "write []") {
		t.Errorf("blank file: %v", err)
	}
	writeFile(t, s.KeysFile, []byte("[]"), 0o600)
	if k, err := s.Load(); err != nil || k.Len() != 0 {
		t.Errorf("[]: %v %d", err, k.Len())
	}
}

// TestSourcesUntrustedFiles: a keyring or enforcement file others can write
// is refused; an untrusted enforcement file counts as enforcing.
func TestSourcesUntrustedFiles(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes: see internal/fsutil for the Windows check")
	}
	root := natstest.TempDir(t)
	s := DefaultSourcesAt(root)
	pub, _ := testKey(1)
	writeFile(t, s.KeysFile, keyringJSON(t, entry("k1", pub)), 0o666)
	writeFile(t, s.EnforceFile, []byte("0"), 0o666)
	if _, _, err := s.ReadKeys(); !errors.Is(err, fsutil.ErrUntrusted) || !errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), s.KeysFile) {
		t.Errorf("world-writable keyring: %v", err)
	}
	if on, err := s.EnforceRequested(); !on || !errors.Is(err, fsutil.ErrUntrusted) {
		t.Errorf("world-writable enforcement file holding 0: %v %v, want on and an error", on, err)
	}
	if err := os.Chmod(s.KeysFile, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(s.KeysFile), 0o777); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ReadKeys(); !errors.Is(err, fsutil.ErrUntrusted) {
		t.Errorf("keyring in a world-writable directory: %v", err)
	}
}

// TestSourcesForeignOwner: a 0600 keyring file owned by another user is
// refused (that user could rewrite it). Needs root to chown.
func TestSourcesForeignOwner(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no chown on Windows")
	}
	if os.Geteuid() != 0 {
		t.Skip("chown to another user needs root (CI runs as root)")
	}
	root := natstest.TempDir(t)
	s := DefaultSourcesAt(root)
	pub, _ := testKey(1)
	writeFile(t, s.KeysFile, keyringJSON(t, entry("k1", pub)), 0o600)
	writeFile(t, s.EnforceFile, []byte("no"), 0o600)
	nobody := nobodyUID(t)
	for _, p := range []string{s.KeysFile, s.EnforceFile} {
		if err := os.Chown(p, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.ReadKeys(); !errors.Is(err, fsutil.ErrUntrusted) || !strings.Contains(err.Error(), fmt.Sprintf("uid %d", nobody)) {
		t.Errorf("keyring owned by nobody: %v", err)
	}
	if on, err := s.EnforceRequested(); !on || err == nil {
		t.Errorf("enforcement file owned by nobody: %v %v", on, err)
	}
}

// fileSource counts reads, to show when a reload happened.
type countingSource struct {
	Sources
	reads int
}

func (c *countingSource) ReadKeys() ([]byte, bool, error) {
	c.reads++
	return c.Sources.ReadKeys()
}

// TestReloadOnUnknownKid: a key added to the file is picked up when a
// command names it, at most once per rate-limit interval.
func TestReloadOnUnknownKid(t *testing.T) {
	root := natstest.TempDir(t)
	src := &countingSource{Sources: DefaultSourcesAt(root)}
	pub1, _ := testKey(1)
	pub2, priv2 := testKey(2)
	writeFile(t, src.KeysFile, keyringJSON(t, entry("k1", pub1)), 0o600)

	v := New(Options{Source: src, ReloadInterval: time.Minute})
	if err := v.LoadError(); err != nil || v.Keyring().Len() != 1 || src.reads != 1 {
		t.Fatalf("initial load: %v, %d keys, %d reads", err, v.Keyring().Len(), src.reads)
	}
	start := time.Now()
	body := []byte(`{"id":"x"}`)
	signed := func(at time.Time) Decision {
		h, err := Sign(priv2, "k2", subjA, at, body)
		if err != nil {
			t.Fatal(err)
		}
		return v.Check(subjA, h, body, at)
	}

	// The key lands on disk; inside the minute the store is not read.
	writeFile(t, src.KeysFile, keyringJSON(t, entry("k1", pub1), entry("k2", pub2)), 0o600)
	if d := signed(start); d.Outcome != OutcomeUnknownKid || d.Reload != "rate-limited" || src.reads != 1 {
		t.Fatalf("inside the interval: %+v, %d reads", d, src.reads)
	}
	// Past the interval the unknown kid triggers a reload and verifies.
	if d := signed(start.Add(61 * time.Second)); d.Outcome != OutcomeVerified || d.Reload != "reloaded" || src.reads != 2 {
		t.Fatalf("past the interval: %+v, %d reads", d, src.reads)
	}
	// An unknown kid again right after: rate-limited, no read.
	_, priv3 := testKey(3)
	h, _ := Sign(priv3, "k3", subjA, start.Add(62*time.Second), body)
	if d := v.Check(subjA, h, body, start.Add(62*time.Second)); d.Outcome != OutcomeUnknownKid || src.reads != 2 {
		t.Fatalf("k3: %+v, %d reads", d, src.reads)
	}
	// Only an unknown kid triggers a read: unsigned and invalid do not.
	v.Check(subjA, nil, body, start.Add(10*time.Minute))
	h, _ = Sign(priv2, "k1", subjA, start.Add(10*time.Minute), body)
	if d := v.Check(subjA, h, body, start.Add(10*time.Minute)); d.Outcome != OutcomeInvalid || src.reads != 2 {
		t.Fatalf("invalid: %+v, %d reads", d, src.reads)
	}
	// A reload finding the same document does not replace the keyring.
	before := v.Keyring()
	h, _ = Sign(priv3, "k3", subjA, start.Add(20*time.Minute), body)
	if d := v.Check(subjA, h, body, start.Add(20*time.Minute)); d.Reload != "unchanged" || v.Keyring() != before || src.reads != 3 {
		t.Fatalf("unchanged: %+v, %d reads", d, src.reads)
	}
}

// TestReloadEnforcingInterval: while enforcing, the floor is one second.
func TestReloadEnforcingInterval(t *testing.T) {
	root := natstest.TempDir(t)
	s := DefaultSourcesAt(root)
	pub2, priv2 := testKey(2)
	v := New(Options{Source: s, Enforce: true})
	body := []byte(`{}`)
	start := time.Now()
	h, _ := Sign(priv2, "k2", subjA, start, body)
	if d := v.Check(subjA, h, body, start.Add(2*time.Second)); d.Outcome != OutcomeUnprovisioned || d.Allowed {
		t.Fatalf("no keys: %+v", d)
	}
	writeFile(t, s.KeysFile, keyringJSON(t, entry("k2", pub2)), 0o600)
	if d := v.Check(subjA, h, body, start.Add(2500*time.Millisecond)); d.Outcome != OutcomeUnprovisioned || d.Reload != "rate-limited" {
		t.Fatalf("within a second: %+v", d)
	}
	if d := v.Check(subjA, h, body, start.Add(3100*time.Millisecond)); d.Outcome != OutcomeVerified || !d.Allowed {
		t.Fatalf("after a second: %+v", d)
	}
}

// TestRefresh: Refresh adopts additions and revocations, keeps the keys on
// an invalid document, and reports why.
func TestRefresh(t *testing.T) {
	root := natstest.TempDir(t)
	s := DefaultSourcesAt(root)
	pub1, priv1 := testKey(1)
	writeFile(t, s.KeysFile, []byte(`[{"kid":"k1"`), 0o600) // a partial write
	v := New(Options{Source: s, Enforce: true})
	if err := v.LoadError(); !errors.Is(err, ErrInvalidKeyring) || v.Keyring().Len() != 0 || !v.Enforcing() {
		t.Fatalf("unparsable at start: %v, %d keys", err, v.Keyring().Len())
	}
	body := []byte(`{}`)
	now := time.Now()
	h, _ := Sign(priv1, "k1", subjA, now, body)
	if d := v.Check(subjA, h, body, now); d.Allowed || d.Outcome != OutcomeUnprovisioned {
		t.Fatalf("enforcing with an unloadable keyring must refuse: %+v", d)
	}

	writeFile(t, s.KeysFile, keyringJSON(t, entry("k1", pub1)), 0o600)
	if err := v.Refresh(); err != nil || v.LoadError() != nil || v.Keyring().Len() != 1 {
		t.Fatalf("Refresh: %v, %d keys", err, v.Keyring().Len())
	}
	if d := v.Check(subjA, h, body, now); !d.Allowed {
		t.Fatalf("after Refresh: %+v", d)
	}
	writeFile(t, s.KeysFile, []byte(`{"not":"an array"}`), 0o600)
	if err := v.Refresh(); !errors.Is(err, ErrInvalidKeyring) || v.Keyring().Len() != 1 {
		t.Fatalf("invalid document must keep the keys: %v, %d keys", err, v.Keyring().Len())
	}
	if err := v.LoadError(); err == nil {
		t.Error("LoadError after a failed refresh is nil")
	}
	// Revocation: the file is emptied to [] (or removed) and the key stops working.
	writeFile(t, s.KeysFile, []byte(`[]`), 0o600)
	if err := v.Refresh(); err != nil || v.Keyring().Len() != 0 {
		t.Fatalf("revoke: %v, %d keys", err, v.Keyring().Len())
	}
	if d := v.Check(subjA, h, body, now.Add(time.Minute)); d.Allowed {
		t.Fatalf("revoked key still runs: %+v", d)
	}
	writeFile(t, s.KeysFile, keyringJSON(t, entry("k1", pub1)), 0o600)
	if err := v.Refresh(); err != nil || v.Keyring().Len() != 1 {
		t.Fatal(err)
	}
	if err := os.Remove(s.KeysFile); err != nil {
		t.Fatal(err)
	}
	if err := v.Refresh(); err != nil || v.Keyring().Len() != 0 {
		t.Fatalf("removed file: %v, %d keys", err, v.Keyring().Len())
	}
	if NewVerifier(nil, false).Refresh() != nil {
		t.Error("Refresh without a source")
	}
}

// TestVerifierLogsEnforcingWithoutKeys: the refusal of everything is said
// loudly, once per change of state.
func TestVerifierLogsEnforcingWithoutKeys(t *testing.T) {
	var buf bytes.Buffer
	log := slogTo(&buf)
	v := New(Options{Source: DefaultSourcesAt(natstest.TempDir(t)), Enforce: true, Log: log})
	v.Check(subjA, nil, nil, time.Now())
	v.Check(subjA, nil, nil, time.Now())
	if n := strings.Count(buf.String(), "NO command keys"); n != 1 {
		t.Errorf("%d error lines about enforcing without keys, want 1:\n%s", n, buf.String())
	}
	if !strings.Contains(buf.String(), "level=ERROR") {
		t.Errorf("not logged as an error:\n%s", buf.String())
	}
}

// nobodyUID returns the uid of the user nobody (65534 if there is none).
func nobodyUID(t *testing.T) int {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		return 65534
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil || uid == 0 {
		t.Fatalf("user nobody has uid %q", u.Uid)
	}
	return uid
}

// TestHeartbeat: one call refreshes and reports keys and enforcement.
func TestHeartbeat(t *testing.T) {
	s := DefaultSourcesAt(natstest.TempDir(t))
	v := New(Options{Source: s, Enforce: true})
	if keys, on, err := v.Heartbeat(); len(keys) != 0 || keys == nil || !on || err != nil {
		t.Fatalf("no keys: %q %v %v", keys, on, err)
	}
	pub, _ := testKey(1)
	writeFile(t, s.KeysFile, keyringJSON(t, entry("k1", pub)), 0o600)
	if keys, on, err := v.Heartbeat(); len(keys) != 1 || keys[0] != "k1:"+Fingerprint(pub) || !on || err != nil {
		t.Fatalf("after provisioning: %q %v %v", keys, on, err)
	}
	writeFile(t, s.KeysFile, []byte("[{"), 0o600)
	if keys, _, err := v.Heartbeat(); len(keys) != 1 || err == nil {
		t.Fatalf("broken file keeps the keys and says why: %q %v", keys, err)
	}
}
