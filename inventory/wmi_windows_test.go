//go:build windows

package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/kanade/kanade-agent/internal/natstest"

	ole "github.com/go-ole/go-ole"

	"github.com/kanade/kanade-agent/wire"
)

var (
	procSafeArrayCreateVector = oleaut32.NewProc("SafeArrayCreateVector")
	procSafeArrayPutElement   = oleaut32.NewProc("SafeArrayPutElement")
	procSysAllocString        = oleaut32.NewProc("SysAllocString")
)

// bstr allocates a BSTR holding s.
func bstr(t *testing.T, s string) uintptr {
	t.Helper()
	u, err := syscallUTF16(s)
	if err != nil {
		t.Fatal(err)
	}
	p, _, _ := procSysAllocString.Call(uintptr(unsafe.Pointer(&u[0])))
	if p == 0 {
		t.Fatal("SysAllocString failed")
	}
	return p
}

func syscallUTF16(s string) ([]uint16, error) {
	out := make([]uint16, 0, len(s)+1)
	for _, r := range s {
		if r > 0xffff {
			return nil, errors.New("non-BMP rune in test string")
		}
		out = append(out, uint16(r))
	}
	return append(out, 0), nil
}

// vector makes a one-dimensional SAFEARRAY of vt and fills it with put.
func vector(t *testing.T, vt ole.VT, n int, put func(i int) uintptr) *ole.VARIANT {
	t.Helper()
	sa, _, _ := procSafeArrayCreateVector.Call(uintptr(vt), 0, uintptr(n))
	if sa == 0 {
		t.Fatal("SafeArrayCreateVector failed")
	}
	for i := 0; i < n; i++ {
		idx := int32(i)
		if hr, _, _ := procSafeArrayPutElement.Call(sa, uintptr(unsafe.Pointer(&idx)), put(i)); hr != 0 {
			t.Fatalf("SafeArrayPutElement: 0x%x", hr)
		}
	}
	v := ole.NewVariant(ole.VT_ARRAY|vt, int64(sa))
	return &v
}

func TestVariantToRaw(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	f := 2.5
	date := 45000.5 // 2023-03-15 12:00 as an OLE automation date
	cases := []struct {
		name string
		v    func() *ole.VARIANT
		want any
	}{
		{"empty", func() *ole.VARIANT { v := ole.NewVariant(ole.VT_EMPTY, 0); return &v }, nil},
		{"null", func() *ole.VARIANT { v := ole.NewVariant(ole.VT_NULL, 0); return &v }, nil},
		{"bstr", func() *ole.VARIANT {
			v := ole.NewVariant(ole.VT_BSTR, int64(bstr(t, "Microsoft Windows 11 Pro")))
			return &v
		}, "Microsoft Windows 11 Pro"},
		{"bstr-unicode", func() *ole.VARIANT { v := ole.NewVariant(ole.VT_BSTR, int64(bstr(t, "カナデ"))); return &v }, "カナデ"},
		{"i4-negative", func() *ole.VARIANT { v := ole.NewVariant(ole.VT_I4, int64(uint32(0xfffffffe))); return &v }, int64(-2)},
		{"i2", func() *ole.VARIANT { v := ole.NewVariant(ole.VT_I2, 7); return &v }, int64(7)},
		{"ui1", func() *ole.VARIANT { v := ole.NewVariant(ole.VT_UI1, 0x1ff); return &v }, uint64(0xff)},
		{"ui4", func() *ole.VARIANT { v := ole.NewVariant(ole.VT_UI4, 0xffffffff); return &v }, uint64(0xffffffff)},
		{"i8", func() *ole.VARIANT { v := ole.NewVariant(ole.VT_I8, -5); return &v }, int64(-5)},
		{"bool-true", func() *ole.VARIANT { v := ole.NewVariant(ole.VT_BOOL, 0xffff); return &v }, true},
		{"bool-false", func() *ole.VARIANT { v := ole.NewVariant(ole.VT_BOOL, 0); return &v }, false},
		{"r8", func() *ole.VARIANT {
			v := ole.NewVariant(ole.VT_R8, *(*int64)(unsafe.Pointer(&f)))
			return &v
		}, 2.5},
		{"date", func() *ole.VARIANT {
			v := ole.NewVariant(ole.VT_DATE, *(*int64)(unsafe.Pointer(&date)))
			return &v
		}, time.Date(2023, 3, 15, 12, 0, 0, 0, time.UTC)},
		{"unsupported-cy", func() *ole.VARIANT { v := ole.NewVariant(ole.VT_CY, 1); return &v }, rawUnsupported{Desc: "VARIANT 0x6"}},
		{"array-bstr", func() *ole.VARIANT {
			ss := []uintptr{bstr(t, "192.168.1.10"), bstr(t, "fe80::1")}
			v := vector(t, ole.VT_BSTR, 2, func(i int) uintptr { return ss[i] }) // SafeArrayPutElement copies the BSTR
			for _, s := range ss {
				procSysFreeString.Call(s)
			}
			return v
		}, []any{"192.168.1.10", "fe80::1"}},
		{"array-i4", func() *ole.VARIANT {
			xs := []int32{1, -1, 300}
			return vector(t, ole.VT_I4, 3, func(i int) uintptr { return uintptr(unsafe.Pointer(&xs[i])) })
		}, []any{int64(1), int64(-1), int64(300)}},
		{"array-bool", func() *ole.VARIANT {
			xs := []int16{-1, 0}
			return vector(t, ole.VT_BOOL, 2, func(i int) uintptr { return uintptr(unsafe.Pointer(&xs[i])) })
		}, []any{true, false}},
		{"array-empty", func() *ole.VARIANT {
			return vector(t, ole.VT_BSTR, 0, nil)
		}, []any{}},
		{"array-variant", func() *ole.VARIANT {
			xs := []ole.VARIANT{ole.NewVariant(ole.VT_I4, 9), ole.NewVariant(ole.VT_NULL, 0)}
			return vector(t, ole.VT_VARIANT, 2, func(i int) uintptr { return uintptr(unsafe.Pointer(&xs[i])) })
		}, []any{int64(9), nil}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := c.v()
			got := variantToRaw(v)
			if err := v.Clear(); err != nil {
				t.Errorf("VariantClear: %v", err)
			}
			if !rawEqual(got, c.want) {
				t.Fatalf("variantToRaw = %#v, want %#v", got, c.want)
			}
		})
	}
}

func rawEqual(a, b any) bool {
	if ta, ok := a.(time.Time); ok {
		tb, ok := b.(time.Time)
		return ok && ta.Equal(tb)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb) && rawTypeName(a) == rawTypeName(b)
}

// TestVariantNoLeak decodes many BSTR arrays and checks the heap of the
// process does not grow (each copy is freed).
func TestVariantNoLeak(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	long := strings.Repeat("x", 4096)
	for i := 0; i < 2000; i++ {
		s := bstr(t, long)
		v := vector(t, ole.VT_BSTR, 1, func(int) uintptr { return s })
		procSysFreeString.Call(s)
		if got := variantToRaw(v).([]any)[0].(string); len(got) != 4096 {
			t.Fatal("bad decode")
		}
		v.Clear()
	}
}

// TestWMIQueryWine runs the real WMI path (COM, SWbemLocator, ExecQuery,
// Properties_) for every class. Classes Wine lacks must be reported, not be
// fatal; the classes Wine's wbemprox provides must carry values.
func TestWMIQueryWine(t *testing.T) {
	c := NewCollector(CollectorOptions{ClassTimeout: 60 * time.Second})
	if c.Name() != "wmi" {
		t.Fatalf("Name = %q", c.Name())
	}
	ctx := context.Background()
	reps, err := Collect(ctx, c, "wine-pc")
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != len(wire.Categories) {
		t.Fatalf("got %d reports", len(reps))
	}
	byCat := map[string]wire.InventoryReport{}
	for _, r := range reps {
		byCat[r.Category] = r
		b, _ := json.MarshalIndent(r.Data, "", " ")
		t.Logf("%s (%s):\n%s", r.Category, r.Hash, clipLog(string(b)))
		if r.Collector != "wmi" || r.Hash == "" || r.PcID != "wine-pc" {
			t.Errorf("bad report header %+v", r)
		}
	}
	if path := os.Getenv("INVENTORY_RECORD"); path != "" {
		recordRaw(t, path)
	}
	os := firstRow(t, byCat[wire.CategoryOS].Data, "Win32_OperatingSystem")
	if s, _ := os["Caption"].(string); s == "" {
		t.Errorf("Win32_OperatingSystem.Caption empty: %v", os)
	}
	if s, _ := os["BuildNumber"].(string); s == "" {
		t.Errorf("Win32_OperatingSystem.BuildNumber empty: %v", os)
	}
	cpu := firstRow(t, byCat[wire.CategoryHW].Data, "Win32_Processor")
	if n, _ := cpu["NumberOfCores"].(int64); n <= 0 {
		t.Errorf("Win32_Processor.NumberOfCores = %v", cpu["NumberOfCores"])
	}
	if s, _ := cpu["Name"].(string); s == "" {
		t.Errorf("Win32_Processor.Name empty")
	}
	cs := firstRow(t, byCat[wire.CategoryHW].Data, "Win32_ComputerSystem")
	if n, _ := cs["NumberOfLogicalProcessors"].(int64); n != int64(runtime.NumCPU()) {
		t.Errorf("Win32_ComputerSystem.NumberOfLogicalProcessors = %v, want %d", cs["NumberOfLogicalProcessors"], runtime.NumCPU())
	}
	if _, ok := byCat[wire.CategorySW].Data[uninstallClass]; !ok {
		t.Errorf("no %s in sw: %v", uninstallClass, byCat[wire.CategorySW].Data)
	}
	// Same machine, same hash.
	again, err := Collect(ctx, c, "wine-pc")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range again {
		if r.Hash != byCat[r.Category].Hash {
			t.Errorf("%s: hash changed between runs: %s then %s", r.Category, byCat[r.Category].Hash, r.Hash)
		}
	}
}

func firstRow(t *testing.T, data map[string]any, class string) map[string]any {
	t.Helper()
	rows, ok := data[class].([]map[string]any)
	if !ok || len(rows) == 0 {
		t.Fatalf("%s: no rows; errors: %v", class, data[ErrorsKey])
	}
	return rows[0]
}

func clipLog(s string) string {
	if len(s) > 6000 {
		return s[:6000] + "\n..."
	}
	return s
}

// recordRaw writes the raw values of every class, as read under this
// Windows, to path: the fixture of TestDecodeRecordedWMI.
func recordRaw(t *testing.T, path string) {
	out := map[string]any{}
	for _, cl := range wmiClasses {
		var raws []map[string]any
		err := comDo(context.Background(), cl.Class, func() error {
			var err error
			raws, err = queryRaw(context.Background(), cl)
			return err
		})
		if err != nil {
			out[cl.Class] = map[string]any{"error": err.Error()}
			continue
		}
		out[cl.Class] = raws
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCOMWorkerHang hangs a COM worker: the caller returns at its deadline,
// later calls for that key fail at once with ErrStillRunning without queuing
// more work, other keys are unaffected, and the worker serves again once
// the hung call returns.
func TestCOMWorkerHang(t *testing.T) {
	release := make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := comDo(ctx, "test-hang", func() error { <-release; return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	start := time.Now()
	if err := comDo(context.Background(), "test-hang", func() error { t.Error("ran on a hung worker"); return nil }); !errors.Is(err, ErrStillRunning) {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > time.Second {
		t.Fatal("ErrStillRunning was not immediate")
	}
	if err := comDo(context.Background(), "test-other", func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	close(release)
	natstest.CheckFor(t, 5*time.Second, time.Millisecond, func() error {
		return comDo(context.Background(), "test-hang", func() error { return nil })
	})
	if err := comDo(context.Background(), "test-panic", func() error { panic("bad VARIANT") }); err == nil || !strings.Contains(err.Error(), "panic: bad VARIANT") {
		t.Fatalf("panic err = %v", err)
	}
	if err := comDo(context.Background(), "test-panic", func() error { return nil }); err != nil {
		t.Fatalf("worker dead after a panic: %v", err)
	}
}
