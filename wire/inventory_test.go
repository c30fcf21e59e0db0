package wire_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/kanade/kanade-agent/wire"
)

// TestInventoryHashIsOfCanonicalData pins the canonical form: the hash of the
// decoded data is the SHA-256 of the hand-written canonical JSON (keys sorted,
// no spaces), whatever the key order and spacing of the document.
func TestInventoryHashIsOfCanonicalData(t *testing.T) {
	r, err := wire.DecodeInventoryReport([]byte(inventoryFull))
	if err != nil {
		t.Fatal(err)
	}
	got, err := wire.HashData(r.Data)
	if err != nil {
		t.Fatal(err)
	}
	if got != r.Hash || got != sha256Hex(inventoryCanonical) {
		t.Errorf("HashData = %s, want %s (sha256 of %s)", got, r.Hash, inventoryCanonical)
	}
	if len(got) != 64 || strings.ToLower(got) != got {
		t.Errorf("hash %q is not 64 lower-case hex digits", got)
	}
}

// buildData builds the same inventory data, inserting keys in the given order.
func buildData(order []int) map[string]any {
	classes := []struct {
		name  string
		props [][2]any
	}{
		{"Win32_BIOS", [][2]any{{"SerialNumber", "PF2ABC"}, {"SMBIOSBIOSVersion", "N32ET86W"}, {"ReleaseDate", "2024-01-02"}}},
		{"Win32_Processor", [][2]any{{"Name", "i7"}, {"NumberOfCores", 4}, {"NumberOfLogicalProcessors", 8}}},
		{"Win32_DiskDrive", [][2]any{{"Model", "NVMe"}, {"Size", uint64(512110190592)}, {"Partitions", 3}}},
		{"Win32_LogicalDisk", [][2]any{{"DeviceID", "C:"}, {"FreeSpace", 1.5e11}, {"VolumeName", "Windows & <data>"}}},
	}
	data := make(map[string]any)
	for _, i := range order {
		c := classes[i]
		obj := make(map[string]any)
		for _, j := range order[:len(c.props)] {
			p := c.props[j%len(c.props)]
			obj[p[0].(string)] = p[1]
		}
		for _, p := range c.props { // any prop the permutation skipped
			if _, ok := obj[p[0].(string)]; !ok {
				obj[p[0].(string)] = p[1]
			}
		}
		data[c.name] = []any{obj}
	}
	return data
}

// TestHashDataNoHTMLEscapes: '<', '>' and '&' are hashed as themselves,
// as a canonical (RFC 8785) encoder writes them.
func TestHashDataNoHTMLEscapes(t *testing.T) {
	h, err := wire.HashData(map[string]any{"Win32_Product": []any{map[string]any{"Name": "A&B <x64>", "N": 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := sha256Hex(`{"Win32_Product":[{"N":1,"Name":"A&B <x64>"}]}`); h != want {
		t.Fatalf("HashData = %s, want %s", h, want)
	}
}

func TestHashDataStable(t *testing.T) {
	orders := [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {1, 3, 0, 2}, {2, 0, 3, 1}}
	var first string
	for _, o := range orders {
		// Many rounds: Go randomises map iteration, so a hash that depended on it would differ.
		for range 20 {
			h, err := wire.HashData(buildData(o))
			if err != nil {
				t.Fatal(err)
			}
			if first == "" {
				first = h
			}
			if h != first {
				t.Fatalf("order %v: hash %s, want %s", o, h, first)
			}
		}
	}
	// The same data after a JSON round trip (numbers become float64) hashes the same.
	b, err := json.Marshal(buildData(orders[0]))
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if h, err := wire.HashData(back); err != nil || h != first {
		t.Errorf("after a JSON round trip: %s, %v; want %s", h, err, first)
	}
}

func TestHashDataChanges(t *testing.T) {
	base, err := wire.HashData(buildData([]int{0, 1, 2, 3}))
	if err != nil {
		t.Fatal(err)
	}
	edits := []struct {
		name string
		edit func(map[string]any)
	}{
		{"string value", func(d map[string]any) { d["Win32_BIOS"].([]any)[0].(map[string]any)["SerialNumber"] = "PF2ABD" }},
		{"number value", func(d map[string]any) { d["Win32_Processor"].([]any)[0].(map[string]any)["NumberOfCores"] = 5 }},
		{"type of value", func(d map[string]any) { d["Win32_Processor"].([]any)[0].(map[string]any)["NumberOfCores"] = "4" }},
		{"null value", func(d map[string]any) { d["Win32_BIOS"].([]any)[0].(map[string]any)["ReleaseDate"] = nil }},
		{"removed property", func(d map[string]any) { delete(d["Win32_BIOS"].([]any)[0].(map[string]any), "ReleaseDate") }},
		{"added property", func(d map[string]any) { d["Win32_BIOS"].([]any)[0].(map[string]any)["Version"] = "x" }},
		{"renamed class", func(d map[string]any) { d["Win32_Bios"] = d["Win32_BIOS"]; delete(d, "Win32_BIOS") }},
		{"extra instance", func(d map[string]any) {
			d["Win32_DiskDrive"] = append(d["Win32_DiskDrive"].([]any), map[string]any{"Model": "USB"})
		}},
		{"instance order", func(d map[string]any) {
			d["Win32_DiskDrive"] = append([]any{map[string]any{"Model": "USB"}}, d["Win32_DiskDrive"].([]any)...)
		}},
		{"empty class", func(d map[string]any) { d["Win32_VideoController"] = []any{} }},
	}
	seen := map[string]string{base: "base"}
	for _, e := range edits {
		t.Run(e.name, func(t *testing.T) {
			d := buildData([]int{0, 1, 2, 3})
			e.edit(d)
			h, err := wire.HashData(d)
			if err != nil {
				t.Fatal(err)
			}
			if prev, ok := seen[h]; ok {
				t.Errorf("hash %s equals that of %s", h, prev)
			}
			seen[h] = e.name
		})
	}
}

func TestHashDataEmpty(t *testing.T) {
	// nil data is the document null, empty data the document {}.
	hNil, err := wire.HashData(nil)
	if err != nil {
		t.Fatal(err)
	}
	hEmpty, err := wire.HashData(map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	if hNil != sha256Hex("null") || hEmpty != sha256Hex("{}") {
		t.Errorf("HashData(nil) = %s, HashData({}) = %s", hNil, hEmpty)
	}
}

func TestHashDataUnencodable(t *testing.T) {
	for name, d := range map[string]map[string]any{
		"channel": {"c": make(chan int)},
		"func":    {"f": func() {}},
		"NaN":     {"n": math.NaN()},
	} {
		if h, err := wire.HashData(d); err == nil {
			t.Errorf("%s: HashData = %s, want an error", name, h)
		}
	}
}

func TestCategories(t *testing.T) {
	want := []string{"hw", "os", "sw", "net"}
	if len(wire.Categories) != len(want) {
		t.Fatalf("Categories = %v, want %v", wire.Categories, want)
	}
	for i := range want {
		if wire.Categories[i] != want[i] {
			t.Errorf("Categories = %v, want %v", wire.Categories, want)
		}
	}
}
