//go:build windows

package signing

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

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

func TestLoadRegistryWindows(t *testing.T) {
	pub1, _ := testKey(1)
	pub2, _ := testKey(2)
	pub3, _ := testKey(3)
	obj := func(kid string, pub []byte, maxAge int) string {
		return fmt.Sprintf(`{"kid":%q,"public_key":%q,"max_age_secs":%d}`, kid, base64.StdEncoding.EncodeToString(pub), maxAge)
	}
	k, path := testRegistryKey(t)

	empty, err := LoadRegistry(path)
	if err != nil || empty.Len() != 0 {
		t.Fatalf("key without values: %v, %v", empty, err)
	}

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(k.SetStringValue("", ""))
	must(k.SetStringValue("ops-2025", obj("ops-2025", pub1, 300)))
	must(k.SetStringsValue("more", []string{obj("b", pub2, 0), "[" + obj("c", pub3, 0) + "]"}))
	must(k.SetExpandStringValue("expand", "["+obj("d", pub1, 0)+"]"))

	kr, err := LoadRegistry(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"b:" + Fingerprint(pub2), "c:" + Fingerprint(pub3), "d:" + Fingerprint(pub1), "ops-2025:" + Fingerprint(pub1)}
	if got := kr.Fingerprints(); !slices.Equal(got, want) {
		t.Fatalf("Fingerprints = %q, want %q", got, want)
	}
	if key, _ := kr.Lookup("ops-2025"); key.MaxAge != 300*time.Second || key.Source != fmt.Sprintf("registry %s value %q", path, "ops-2025") {
		t.Errorf("ops-2025: %+v", key)
	}

	// The file wins a conflict; the registry adds the rest.
	file := tempFile(t, keyringJSON(t, entry("b", pub1, 0), entry("f", pub3, 0)))
	merged, err := Load(LoadOptions{File: file, Registry: path})
	if err != nil {
		t.Fatal(err)
	}
	if key, _ := merged.Lookup("b"); !key.PublicKey.Equal(pub1) || merged.Len() != 5 {
		t.Errorf("merged: %q", merged.Fingerprints())
	}
	if got := merged.Conflicts(); !slices.Equal(got, []string{"b"}) {
		t.Errorf("Conflicts = %q", got)
	}

	// A duplicate kid across values fails the registry source.
	must(k.SetStringValue("dup", obj("c", pub1, 0)))
	if _, err := LoadRegistry(path); !errors.Is(err, ErrDuplicateKid) {
		t.Errorf("duplicate: %v", err)
	} else {
		t.Log(err)
	}
	if _, err := Load(LoadOptions{File: file, Registry: path}); !errors.Is(err, ErrDuplicateKid) {
		t.Errorf("Load with a bad registry: %v", err)
	}
	must(k.DeleteValue("dup"))

	// Other value types are refused.
	must(k.SetDWordValue("count", 1))
	if _, err := LoadRegistry(path); !errors.Is(err, ErrRegistryValueType) {
		t.Errorf("DWORD value: %v", err)
	} else {
		t.Log(err)
	}
	must(k.DeleteValue("count"))

	must(k.SetStringValue("bad", `{"kid":"x","public_key":"AAAA"}`))
	if _, err := LoadRegistry(path); !errors.Is(err, ErrBadPublicKey) {
		t.Errorf("bad key: %v", err)
	}
}

func TestLoadRegistryMissingKey(t *testing.T) {
	path := fmt.Sprintf(`HKCU\Software\kanade-test\missing-%d`, time.Now().UnixNano())
	k, err := LoadRegistry(path)
	if err != nil || k.Len() != 0 {
		t.Fatalf("missing key: %v, %v; want empty", k, err)
	}
	// The production path, read (not written) in whatever state it is here.
	if _, err := LoadRegistry(RegistryPath); err != nil {
		t.Logf("LoadRegistry(%s): %v", RegistryPath, err)
	}
}
