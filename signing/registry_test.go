package signing

import (
	"encoding/base64"
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestSplitRegistryPath(t *testing.T) {
	cases := []struct {
		path string
		root registryRoot
		sub  string
	}{
		{RegistryPath, rootLocalMachine, `SOFTWARE\kanade\agent\CommandKeys`},
		{`HKEY_LOCAL_MACHINE\SOFTWARE\x\`, rootLocalMachine, `SOFTWARE\x`},
		{`hkcu\Software\kanade-test`, rootCurrentUser, `Software\kanade-test`},
		{`HKEY_CURRENT_USER\Software\kanade-test`, rootCurrentUser, `Software\kanade-test`},
	}
	for _, c := range cases {
		root, sub, err := splitRegistryPath(c.path)
		if err != nil || root != c.root || sub != c.sub {
			t.Errorf("%q: %v %q %v", c.path, root, sub, err)
		}
	}
	for _, bad := range []string{"", "HKLM", `HKLM\`, `HKCR\x`, `SOFTWARE\kanade`, `C:\keys.json`} {
		if _, _, err := splitRegistryPath(bad); !errors.Is(err, ErrBadRegistryPath) {
			t.Errorf("%q: %v, want ErrBadRegistryPath", bad, err)
		}
		if _, err := LoadRegistry(bad); !errors.Is(err, ErrBadRegistryPath) {
			t.Errorf("LoadRegistry(%q): %v, want ErrBadRegistryPath", bad, err)
		}
	}
}

func TestParseRegistryValues(t *testing.T) {
	pub1, _ := testKey(1)
	pub2, _ := testKey(2)
	pub3, _ := testKey(3)
	obj := func(kid string, pub []byte) string {
		return `{"kid":"` + kid + `","public_key":"` + base64.StdEncoding.EncodeToString(pub) + `"}`
	}
	values := []registryValue{
		{name: "", texts: []string{""}}, // empty default value
		{name: "array", texts: []string{`[` + obj("a", pub1) + `]`}},
		{name: "multi", multi: true, texts: []string{obj("b", pub2), "  ", "\xef\xbb\xbf" + obj("c", pub3)}},
		{name: "single", texts: []string{" " + obj("d", pub1) + "\n"}},
	}
	k, err := parseRegistryValues(RegistryPath, values)
	if err != nil {
		t.Fatal(err)
	}
	kids := []string{}
	for _, key := range k.Keys() {
		kids = append(kids, key.Kid)
	}
	if !slices.Equal(kids, []string{"a", "b", "c", "d"}) {
		t.Fatalf("kids %q", kids)
	}
	if key, _ := k.Lookup("c"); key.Source != `registry `+RegistryPath+` value "multi" string 2` {
		t.Errorf("Source %q", key.Source)
	}

	errCases := []struct {
		name   string
		values []registryValue
		is     error
		msg    string
	}{
		{"duplicate across values", []registryValue{
			{name: "one", texts: []string{obj("a", pub1)}},
			{name: "two", texts: []string{`[` + obj("a", pub2) + `]`}},
		}, ErrDuplicateKid, `value "two": entry 0 (kid "a"): duplicate kid: also in registry`},
		{"bad object", []registryValue{{name: "x", texts: []string{`{"kid":`}}}, ErrInvalidKeyring, `value "x": wire: invalid`},
		{"bad key in object", []registryValue{{name: "x", texts: []string{`{"kid":"a","public_key":"AAAA"}`}}}, ErrBadPublicKey, "decodes to 3 bytes"},
		{"object without key", []registryValue{{name: "x", texts: []string{`{"kid":"a"}`}}}, ErrBadPublicKey, "decodes to 0 bytes"},
		{"bad type", []registryValue{{name: "dword", badType: true, typ: 4}}, ErrRegistryValueType, "type 4, want REG_SZ or REG_MULTI_SZ"},
		{"not JSON", []registryValue{{name: "x", texts: []string{`ops-2025 AAAA`}}}, ErrInvalidKeyring, "malformed JSON"},
		{"too large", []registryValue{{name: "x", texts: []string{"[" + strings.Repeat(" ", MaxKeyringSize) + "0]"}}}, ErrTooLarge, "too large"},
	}
	for _, c := range errCases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseRegistryValues(RegistryPath, c.values)
			if !errors.Is(err, c.is) || !errors.Is(err, ErrInvalidKeyring) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %v, want %v containing %q", err, c.is, c.msg)
			}
			t.Log(err)
		})
	}
}

func TestLoadRegistryUnsupported(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the registry exists on Windows; see registry_windows_test.go")
	}
	if _, err := LoadRegistry(RegistryPath); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("LoadRegistry: %v, want errors.ErrUnsupported", err)
	}
	k, err := Load(LoadOptions{Registry: RegistryPath})
	if err != nil || k.Len() != 0 {
		t.Fatalf("Load ignores the registry off Windows: %v, %v", k, err)
	}
}
