//go:build windows

package inventory

import (
	"strings"
	"testing"

	"golang.org/x/sys/windows/registry"
)

// TestReadUninstallRegistry writes programs into the Uninstall keys (HKLM's
// 32-bit view and the current user's hive), reads them back through
// readUninstall, and removes them. Run under Wine or as an administrator.
func TestReadUninstallRegistry(t *testing.T) {
	type entry struct {
		root   registry.Key
		access uint32
		name   string
	}
	entries := []entry{
		{registry.LOCAL_MACHINE, registry.WOW64_32KEY, "KanadeTest32"},
		{registry.CURRENT_USER, 0, "KanadeTestUser"},
	}
	for _, e := range entries {
		k, _, err := registry.CreateKey(e.root, uninstallPath+`\`+e.name, registry.ALL_ACCESS|e.access)
		if err != nil {
			t.Skipf("cannot write %s (not an administrator?): %v", e.name, err)
		}
		must := func(err error) {
			if err != nil {
				t.Fatal(err)
			}
		}
		must(k.SetStringValue("DisplayName", "Kanade "+e.name))
		must(k.SetStringValue("DisplayVersion", "1.2.3"))
		must(k.SetExpandStringValue("InstallLocation", `%ProgramFiles%\Kanade`))
		must(k.SetDWordValue("EstimatedSize", 1234))
		must(k.SetBinaryValue("Publisher", []byte{1, 2, 3})) // wrong type
		k.Close()
		t.Cleanup(func() { registry.DeleteKey(e.root, uninstallPath+`\`+e.name) })
	}
	// A subkey without DisplayName is skipped.
	k, _, err := registry.CreateKey(registry.CURRENT_USER, uninstallPath+`\KanadeNoName`, registry.ALL_ACCESS)
	if err == nil {
		k.SetStringValue("DisplayVersion", "9")
		k.Close()
		t.Cleanup(func() { registry.DeleteKey(registry.CURRENT_USER, uninstallPath+`\KanadeNoName`) })
	}

	res, err := readUninstall(bg)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]map[string]any{}
	for _, r := range res.Rows {
		if kn, _ := r["KeyName"].(string); strings.HasPrefix(kn, "Kanade") {
			found[kn] = r
		}
	}
	if _, ok := found["KanadeNoName"]; ok {
		t.Error("subkey without DisplayName listed")
	}
	m := found["KanadeTest32"]
	if m == nil || m["View"] != "32" || m["Hive"] != "HKLM" || m["DisplayVersion"] != "1.2.3" || m["EstimatedSize"] != int64(1234) ||
		m["InstallLocation"] != `%ProgramFiles%\Kanade` || m["Publisher"] != nil {
		t.Errorf("32-bit entry = %v", m)
	}
	u := found["KanadeTestUser"]
	if u == nil || !strings.HasPrefix(u["Hive"].(string), `HKU\S-1-5-`) || u["View"] != nil {
		t.Errorf("user entry = %v (rows %d)", u, len(res.Rows))
	}
	bad := 0
	for _, p := range res.Problems {
		if p.Property == "Publisher" && strings.Contains(p.Err.Error(), "unsupported value type registry type 3") {
			bad++
		}
	}
	if bad == 0 { // once per root here; runSources folds identical problems into one entry
		t.Errorf("binary Publisher not reported: %v", res.Problems)
	}
}
