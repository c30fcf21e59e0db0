//go:build windows

package signing

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
	"golang.org/x/sys/windows/registry"
)

// testRegistryKey creates a fresh HKCU\Software\kanade-test\<unique> key,
// deleted at cleanup, and returns it open for writing and its path.
func testRegistryKey(t *testing.T) (registry.Key, string) {
	t.Helper()
	sub := fmt.Sprintf(`Software\kanade-test\%s-%d-%d`, strings.ReplaceAll(t.Name(), "/", "_"), os.Getpid(), time.Now().UnixNano())
	k, _, err := registry.CreateKey(registry.CURRENT_USER, sub, registry.ALL_ACCESS|registry.WOW64_64KEY)
	if err != nil {
		t.Fatalf("creating HKCU\\%s: %v", sub, err)
	}
	t.Cleanup(func() {
		k.Close()
		if err := registry.DeleteKey(registry.CURRENT_USER, sub); err != nil {
			t.Logf("deleting HKCU\\%s: %v", sub, err)
		}
		registry.DeleteKey(registry.CURRENT_USER, `Software\kanade-test`) // fails while other tests' keys remain
	})
	return k, `HKCU\` + sub
}

// TestRegistrySources reads the keyring from the CommandKeys value (a JSON
// array string, as upstream) and enforcement from RequireSignedCommands.
func TestRegistrySources(t *testing.T) {
	k, path := testRegistryKey(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	s := Sources{Registry: path}
	if doc, present, err := s.ReadKeys(); err != nil || present || doc != nil {
		t.Fatalf("no value: %q %v %v", doc, present, err)
	}
	if on, err := s.EnforceRequested(); on || err != nil {
		t.Fatalf("no enforcement value: %v %v", on, err)
	}

	pub1, _ := testKey(1)
	pub2, _ := testKey(2)
	must(k.SetStringValue("CommandKeys", string(keyringJSON(t, entry("k1", pub1), entry("k2", pub2)))))
	// Values other than CommandKeys are not keyrings (the old layout read them all).
	must(k.SetStringValue("ops", string(keyringJSON(t, entry("other", pub1)))))
	kr, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if got := kr.Kids(); !slices.Equal(got, []string{"k1", "k2"}) {
		t.Fatalf("kids %q", got)
	}
	if key, _ := kr.Lookup("k1"); key.Source != "registry "+path+" value CommandKeys" {
		t.Errorf("source %q", key.Source)
	}

	// The registry wins over the file when both are named and it holds a value.
	dir := natstest.TempDir(t)
	file := dir + `\command-keys.json`
	writeFile(t, file, keyringJSON(t, entry("from-file", pub1)), 0o600)
	both := Sources{Registry: path, KeysFile: file}
	if kr, err := both.Load(); err != nil || !slices.Equal(kr.Kids(), []string{"k1", "k2"}) {
		t.Errorf("registry and file: %v %q", err, kr.Kids())
	}
	must(k.SetStringValue("CommandKeys", ""))
	if kr, err := both.Load(); err != nil || !slices.Equal(kr.Kids(), []string{"from-file"}) {
		t.Errorf("empty registry value falls back to the file: %v %q", err, kr.Kids())
	}

	must(k.SetStringsValue("CommandKeys", []string{"[", string(keyringJSON(t, entry("m", pub1)))[1:]}))
	if kr, err := s.Load(); err != nil || kr.Len() != 1 {
		t.Errorf("REG_MULTI_SZ: %v", err)
	}
	must(k.SetBinaryValue("CommandKeys", []byte("[]")))
	if _, _, err := s.ReadKeys(); !errors.Is(err, ErrRegistryValueType) {
		t.Errorf("REG_BINARY: %v", err)
	}
	must(k.SetStringValue("CommandKeys", `[{"kid":"x","public_key":"AAAA"}]`))
	if _, err := s.Load(); !errors.Is(err, ErrBadPublicKey) {
		t.Errorf("bad key: %v", err)
	}

	for _, c := range []struct {
		set  func() error
		want bool
	}{
		{func() error { return k.SetStringValue("RequireSignedCommands", "1") }, true},
		{func() error { return k.SetStringValue("RequireSignedCommands", " True ") }, true},
		{func() error { return k.SetStringValue("RequireSignedCommands", "yes") }, true},
		{func() error { return k.SetStringValue("RequireSignedCommands", "0") }, false},
		{func() error { return k.SetStringValue("RequireSignedCommands", "") }, false},
		{func() error { return k.SetDWordValue("RequireSignedCommands", 1) }, true},
		{func() error { return k.SetDWordValue("RequireSignedCommands", 0) }, false},
	} {
		must(c.set())
		if on, err := s.EnforceRequested(); on != c.want || err != nil {
			t.Errorf("RequireSignedCommands: %v %v, want %v", on, err, c.want)
		}
	}
}

func TestRegistryMissingKey(t *testing.T) {
	s := Sources{Registry: fmt.Sprintf(`HKCU\Software\kanade-test\missing-%d`, time.Now().UnixNano())}
	if k, err := s.Load(); err != nil || k.Len() != 0 {
		t.Fatalf("missing key: %v, %v; want empty", k, err)
	}
	if _, err := (Sources{Registry: `HKXX\a`}).Load(); !errors.Is(err, ErrBadRegistryPath) {
		t.Errorf("bad path: %v", err)
	}
	// The production location, read (not written) in whatever state it is here.
	if _, err := DefaultSources().Load(); err != nil {
		t.Logf("DefaultSources().Load(): %v", err)
	}
}
