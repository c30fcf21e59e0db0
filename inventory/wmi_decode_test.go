package inventory

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/wire"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testdata is embedded so the test binary also runs from another directory
// (CI runs the Windows test binary under Wine from the repository root).
//
//go:embed testdata
var testdata embed.FS

func TestParseCIMDatetime(t *testing.T) {
	cases := []struct {
		in   string
		want string // RFC 3339 UTC; "" means malformed
	}{
		{"20240311000000.000000+000", "2024-03-11T00:00:00Z"},
		{"20231102093015.000000+540", "2023-11-02T00:30:15Z"},
		{"20231231230000.500000-300", "2024-01-01T04:00:00Z"},
		{"20120608000000.******+***", "2012-06-08T00:00:00Z"},
		{"00000001000000.000000:000", ""}, // an interval
		{"2024031100000.000000+000", ""},  // too short
		{"20241311000000.000000+000", ""}, // month 13
		{"20240230000000.000000+000", ""}, // February 30
		{"2024****000000.000000+000", ""}, // wildcard date
		{"20240311000000.000000*000", ""}, // no sign
		{"", ""},
		{"\x00\xff garbage \xfe\x01 garbage!", ""},
	}
	for _, c := range cases {
		got, err := decodeValue(kDatetime, c.in)
		if c.want == "" {
			if err == nil || !errors.Is(err, ErrMalformed) {
				t.Errorf("%q: got %v, %v; want ErrMalformed", c.in, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: got %v, %v; want %s", c.in, got, err, c.want)
		}
	}
	got, err := decodeValue(kDatetime, time.Date(2023, 3, 15, 12, 0, 0, 400, time.FixedZone("", 3600)))
	if err != nil || got != "2023-03-15T11:00:00Z" {
		t.Errorf("VT_DATE: %v, %v", got, err)
	}
}

func TestDecodeValue(t *testing.T) {
	cases := []struct {
		k    kind
		in   any
		want any
		bad  bool
	}{
		{kString, "x", "x", false},
		{kString, nil, nil, false},
		{kString, int64(3), nil, true},
		{kString, true, nil, true},
		{kInt, int64(-3), int64(-3), false},
		{kInt, uint64(5), int64(5), false},
		{kInt, uint64(math.MaxUint64), uint64(math.MaxUint64), false},
		{kInt, "512105932800", int64(512105932800), false},
		{kInt, "18446744073709551615", uint64(math.MaxUint64), false},
		{kInt, "12 GB", nil, true},
		{kInt, 2.5, nil, true},
		{kBool, true, true, false},
		{kBool, "yes", nil, true},
		{kStrings, []any{"a", "b"}, []string{"a", "b"}, false},
		{kStrings, []any{}, []string{}, false},
		{kStrings, []any{"a", int64(1)}, nil, true},
		{kStrings, "a", nil, true},
		{kString, rawUnsupported{Desc: "VARIANT 0x24"}, nil, true},
	}
	for _, c := range cases {
		got, err := decodeValue(c.k, c.in)
		if c.bad {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("%v %#v: got %#v, %v; want ErrMalformed", c.k, c.in, got, err)
			}
			continue
		}
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(c.want)
		if err != nil || !bytes.Equal(gj, wj) {
			t.Errorf("%v %#v: got %#v, %v; want %#v", c.k, c.in, got, err, c.want)
		}
	}
}

func TestWMIQueryText(t *testing.T) {
	for _, c := range wmiClasses {
		if c.Class == "Win32_NetworkAdapterConfiguration" {
			if q := c.query(); !strings.HasSuffix(q, " FROM Win32_NetworkAdapterConfiguration WHERE IPEnabled = TRUE") || !strings.HasPrefix(q, "SELECT Index, InterfaceIndex, ") {
				t.Errorf("query = %q", q)
			}
			if q := c.queryAll(); q != "SELECT * FROM Win32_NetworkAdapterConfiguration WHERE IPEnabled = TRUE" {
				t.Errorf("queryAll = %q", q)
			}
		}
		seen := map[string]bool{}
		for _, p := range c.Props {
			if seen[p.Name] {
				t.Errorf("%s lists %s twice", c.Class, p.Name)
			}
			seen[p.Name] = true
		}
	}
	want := map[string]int{wire.CategoryHW: 8, wire.CategoryOS: 2, wire.CategoryNet: 1}
	for cat, n := range want {
		if got := len(wmiClassesOf(cat)); got != n {
			t.Errorf("%s: %d classes, want %d", cat, got, n)
		}
	}
}

// loadRawFixture reads recorded raw WMI results: class → list of rows
// (property → value; an absent property was not provided by the class) or
// {"error": "..."} for a class whose query failed. JSON integers become
// int64 (uint64 when larger), {"$unsupported": desc} a rawUnsupported.
func loadRawFixture(t testing.TB, path string) map[string]any {
	t.Helper()
	b, err := testdata.ReadFile(filepath.ToSlash(path))
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	delete(m, "_comment")
	for k, v := range m {
		m[k] = fixtureRaw(v)
	}
	return m
}

func fixtureRaw(v any) any {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		var u uint64
		if err := json.Unmarshal([]byte(x), &u); err == nil {
			return u
		}
		f, _ := x.Float64()
		return f
	case []any:
		for i := range x {
			x[i] = fixtureRaw(x[i])
		}
		return x
	case map[string]any:
		if d, ok := x["$unsupported"].(string); ok && len(x) == 1 {
			return rawUnsupported{Desc: d}
		}
		for k := range x {
			x[k] = fixtureRaw(x[k])
		}
		return x
	}
	return v
}

// fixtureCollector is the Windows collector driven by recorded results.
func fixtureCollector(t testing.TB, path string) *wmiCollector {
	fx := loadRawFixture(t, path)
	rows := func(class string) ([]map[string]any, error) {
		v, ok := fx[class]
		if !ok {
			return nil, errors.New("inventory: " + class + ": not in fixture")
		}
		if m, ok := v.(map[string]any); ok {
			return nil, errors.New("inventory: " + class + ": " + m["error"].(string))
		}
		var out []map[string]any
		for _, r := range v.([]any) {
			out = append(out, r.(map[string]any))
		}
		return out, nil
	}
	return &wmiCollector{
		timeout: 5 * time.Second,
		query: func(_ context.Context, c wmiClass) (result, error) {
			raws, err := rows(c.Class)
			if err != nil {
				return result{}, err
			}
			return decodeRows(c.Props, raws), nil
		},
		uninstall: func(context.Context) (result, error) {
			raws, err := rows(uninstallClass)
			if err != nil {
				return result{}, err
			}
			return decodeUninstall(raws), nil
		},
	}
}

// TestDecodeRecordedWMI feeds recorded WMI results through the Windows
// collector's decoding and report assembly, on any machine, and compares
// the reports' data with golden files (go test -run RecordedWMI -update
// rewrites them).
func TestDecodeRecordedWMI(t *testing.T) {
	for _, name := range []string{"wmi_wine", "wmi_windows_sample"} {
		t.Run(name, func(t *testing.T) {
			c := fixtureCollector(t, filepath.Join("testdata", name+".json"))
			got := map[string]any{}
			for _, cat := range wire.Categories {
				r, err := CollectCategory(bg, c, "pc-1", cat)
				if err != nil {
					t.Fatal(err)
				}
				if r.Collector != "wmi" || r.Category != cat || len(r.Hash) != 64 {
					t.Fatalf("report header %+v", r)
				}
				got[cat] = r.Data
			}
			b, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", name+".golden.json")
			if *update {
				if err := os.WriteFile(golden, append(b, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				t.Skip("golden rewritten; rerun without -update (testdata is embedded at build time)")
			}
			want, err := testdata.ReadFile(filepath.ToSlash(golden))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(bytes.TrimSpace(want), bytes.TrimSpace(b)) {
				t.Fatalf("data differs from %s (rerun with -update if intended):\n%s", golden, b)
			}
		})
	}
}

// TestDecodeSampleDetails checks the hand-written sample's tricky values.
func TestDecodeSampleDetails(t *testing.T) {
	c := fixtureCollector(t, filepath.Join("testdata", "wmi_windows_sample.json"))
	hw, _ := c.CollectCategory(bg, wire.CategoryHW)
	cs := hw["Win32_ComputerSystem"].([]map[string]any)[0]
	if cs["TotalPhysicalMemory"] != int64(34029645824) || cs["PartOfDomain"] != true {
		t.Errorf("Win32_ComputerSystem = %v", cs)
	}
	if _, ok := cs["Workgroup"]; ok {
		t.Error("null Workgroup should be left out")
	}
	if hw["Win32_BIOS"].([]map[string]any)[0]["ReleaseDate"] != "2024-03-11T00:00:00Z" {
		t.Errorf("BIOS = %v", hw["Win32_BIOS"])
	}
	if _, ok := hw["Win32_VideoController"]; ok {
		t.Error("failed class present")
	}
	errs := errorSet(hw)
	for _, want := range []string{
		"Win32_VideoController||inventory: Win32_VideoController: ExecQuery: Generic failure ",
		`Win32_PhysicalMemory|Capacity|inventory: malformed provider output: string "unknown" where integer expected`,
		"Win32_BaseBoard|SerialNumber|inventory: malformed provider output: boolean where string expected",
	} {
		if !errs[want] {
			t.Errorf("missing error %q in %v", want, errs)
		}
	}
	mem := hw["Win32_PhysicalMemory"].([]map[string]any)
	if len(mem) != 2 {
		t.Fatalf("memory rows %v", mem)
	}
	osd, _ := c.CollectCategory(bg, wire.CategoryOS)
	o := osd["Win32_OperatingSystem"].([]map[string]any)[0]
	if o["InstallDate"] != "2023-11-02T00:30:15Z" {
		t.Errorf("InstallDate = %v", o["InstallDate"])
	}
	if l, _ := o["MUILanguages"].([]string); len(l) != 2 || l[0] != "ja-JP" {
		t.Errorf("MUILanguages = %#v", o["MUILanguages"])
	}
	if !errorSet(osd)["Win32_QuickFixEngineering|InstalledOn|inventory: malformed provider output: unsupported value type VARIANT 0x24"] {
		t.Errorf("QFE errors: %v", osd[ErrorsKey])
	}
	net, _ := c.CollectCategory(bg, wire.CategoryNet)
	es := errorSet(net)
	for _, want := range []string{
		"Win32_NetworkAdapterConfiguration|IPAddress|inventory: malformed provider output: array of integer where string array expected",
		"Win32_NetworkAdapterConfiguration|DHCPEnabled|inventory: malformed provider output: string where boolean expected",
	} {
		if !es[want] {
			t.Errorf("missing %q in %v", want, es)
		}
	}
	sw, _ := c.CollectCategory(bg, wire.CategorySW)
	progs := sw[uninstallClass].([]map[string]any)
	if len(progs) != 3 {
		t.Fatalf("programs = %v", progs)
	}
	for _, p := range progs {
		if p["DisplayName"] == "7-Zip 23.01 (x64)" && (p["EstimatedSize"] != int64(5671) || p["View"] != "64" || p["Hive"] != "HKLM") {
			t.Errorf("7-Zip = %v", p)
		}
		if strings.HasPrefix(p["DisplayName"].(string), "Microsoft Visual Studio Code") {
			if _, ok := p["View"]; ok {
				t.Errorf("per-user program has a View: %v", p)
			}
			if _, ok := p["EstimatedSize"]; ok {
				t.Errorf("malformed EstimatedSize kept: %v", p)
			}
		}
	}
	if !errorSet(sw)[`Uninstall|EstimatedSize|inventory: malformed provider output: string "big" where integer expected`] {
		t.Errorf("sw errors: %v", sw[ErrorsKey])
	}
	for _, e := range sw[ErrorsKey].([]map[string]any) {
		if strings.Contains(e["error"].(string), "not provided") {
			t.Errorf("a registry value a key lacks must not be reported: %v", e)
		}
	}
}

func errorSet(data map[string]any) map[string]bool {
	out := map[string]bool{}
	errs, _ := data[ErrorsKey].([]map[string]any)
	for _, e := range errs {
		p, _ := e["property"].(string)
		out[e["class"].(string)+"|"+p+"|"+e["error"].(string)] = true
	}
	return out
}

// TestWMICollectorHungClass makes one WMI class hang (ignoring ctx, as a
// hung provider does): it is reported as timed out, then as still running,
// never started twice, and the other classes are reported each time.
func TestWMICollectorHungClass(t *testing.T) {
	c := fixtureCollector(t, filepath.Join("testdata", "wmi_windows_sample.json"))
	c.timeout = 50 * time.Millisecond
	b := newBlocker()
	inner := c.query
	c.query = func(ctx context.Context, cl wmiClass) (result, error) {
		if cl.Class == "Win32_BIOS" {
			b.wait()
		}
		return inner(ctx, cl)
	}
	for i, want := range []string{"timed out after 50ms", "previous collection still running", "previous collection still running"} {
		start := time.Now()
		d, err := c.CollectCategory(bg, wire.CategoryHW)
		if err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el > 3*time.Second {
			t.Fatalf("run %d took %v", i, el)
		}
		if _, ok := d["Win32_BIOS"]; ok {
			t.Fatal("hung class present")
		}
		if _, ok := d["Win32_Processor"]; !ok {
			t.Fatal("other classes missing")
		}
		found := false
		for _, e := range d[ErrorsKey].([]map[string]any) {
			if e["class"] == "Win32_BIOS" && strings.Contains(e["error"].(string), want) {
				found = true
			}
		}
		if !found {
			t.Fatalf("run %d: no %q error for Win32_BIOS: %v", i, want, d[ErrorsKey])
		}
	}
	if b.count() != 1 {
		t.Fatalf("hung query started %d times", b.count())
	}
	close(b.release)
	natstest.CheckFor(t, 5*time.Second, time.Millisecond, func() error {
		d, _ := c.CollectCategory(bg, wire.CategoryHW)
		if _, ok := d["Win32_BIOS"]; !ok {
			return errors.New("Win32_BIOS not back")
		}
		return nil
	})
}
