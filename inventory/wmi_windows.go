//go:build windows

package inventory

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	ole "github.com/go-ole/go-ole"
	"github.com/go-ole/go-ole/oleutil"
	"golang.org/x/sys/windows"
)

// queryWMI runs c's query on the COM worker thread of c.Class and decodes
// the result. It returns when the query does or when ctx ends, whichever is
// first; a query still running then is left to its worker, and until it
// returns every later query of the class fails at once with
// ErrStillRunning.
func queryWMI(ctx context.Context, c wmiClass) (result, error) {
	var raws []map[string]any
	err := comDo(ctx, c.Class, func() error {
		var err error
		raws, err = queryRaw(ctx, c)
		return err
	})
	if err != nil {
		return result{}, err
	}
	return decodeRows(c.Props, raws), nil
}

// comWorker is a goroutine locked to its own OS thread, with COM
// initialized there once and for good, that runs the WMI queries of one
// class. Threads are kept rather than made per query because initializing
// and uninitializing COM for every query exhausts Wine after about 63
// cycles (every query then hangs); a thread per class keeps a hung
// provider of one class from delaying the others. There are at most as many
// workers as classes, shared by every collector of the process.
type comWorker struct {
	reqs chan comJob
	busy atomic.Bool
}

type comJob struct {
	fn   func() error
	done chan error // buffered: a worker finishing late never blocks
}

var (
	comMu      sync.Mutex
	comWorkers = map[string]*comWorker{}
)

// comDo runs fn on the COM worker of key and waits for it or for ctx.
func comDo(ctx context.Context, key string, fn func() error) error {
	comMu.Lock()
	w := comWorkers[key]
	if w == nil {
		w = &comWorker{reqs: make(chan comJob)}
		comWorkers[key] = w
		go w.run(key)
	}
	comMu.Unlock()
	if w.busy.Load() {
		return fmt.Errorf("%w (%s)", ErrStillRunning, key)
	}
	job := comJob{fn: fn, done: make(chan error, 1)}
	select {
	case w.reqs <- job:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-job.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *comWorker) run(key string) {
	runtime.LockOSThread() // for good: COM state lives on this thread
	initErr := coInit()
	for job := range w.reqs {
		w.busy.Store(true)
		if initErr != nil {
			initErr = coInit()
		}
		var err error
		if initErr != nil {
			err = fmt.Errorf("inventory: %s: CoInitializeEx: %w", key, initErr)
		} else {
			err = runJob(key, job.fn)
		}
		// Not busy any more before the caller hears of it, so its next
		// call is not refused as still running.
		w.busy.Store(false)
		job.done <- err
	}
}

func runJob(key string, fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("inventory: %s: panic: %v", key, p)
		}
	}()
	return fn()
}

// queryRaw runs c's query on the calling thread, where COM must be
// initialized, and returns the raw values of c's properties, one map per
// row (a property the provider lacks is absent from the map). It goes
// SWbemLocator → ConnectServer → ExecQuery → ItemIndex(i) → Properties_ →
// Item(name) → Value, the scripting path that works both on Windows and
// under Wine (a property get on SWbemObject does not work under Wine), and
// releases every IDispatch and VARIANT it obtains. ctx is checked between
// rows; a COM call that hangs is abandoned by the caller.
func queryRaw(ctx context.Context, c wmiClass) ([]map[string]any, error) {
	unk, err := oleutil.CreateObject("WbemScripting.SWbemLocator")
	if err != nil {
		return nil, fmt.Errorf("inventory: %s: create SWbemLocator: %w", c.Class, err)
	}
	defer unk.Release()
	loc, err := unk.QueryInterface(ole.IID_IDispatch)
	if err != nil {
		return nil, fmt.Errorf("inventory: %s: SWbemLocator: %w", c.Class, err)
	}
	defer loc.Release()
	svcV, err := oleutil.CallMethod(loc, "ConnectServer")
	if err != nil {
		clearVariant(svcV)
		return nil, fmt.Errorf("inventory: %s: ConnectServer: %w", c.Class, err)
	}
	defer clearVariant(svcV)
	svc := svcV.ToIDispatch()
	if svc == nil {
		return nil, fmt.Errorf("inventory: %s: ConnectServer returned no object", c.Class)
	}

	props := c.Props
	raws, err := execQuery(ctx, svc, c.query(), props)
	if err != nil && ctx.Err() == nil {
		// This Windows (or Wine) may lack one of the listed properties,
		// which fails the whole column-list query: ask for every column
		// and report the missing ones as not provided.
		var err2 error
		raws, err2 = execQuery(ctx, svc, c.queryAll(), props)
		if err2 != nil {
			return nil, fmt.Errorf("inventory: %s: %w", c.Class, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return raws, nil
}

// coInit initializes COM (multithreaded) on this thread; S_FALSE (already
// initialized) is success.
func coInit() error {
	err := ole.CoInitializeEx(0, ole.COINIT_MULTITHREADED)
	if err == nil {
		return nil
	}
	if oe, ok := err.(*ole.OleError); ok && oe.Code() == 1 { // S_FALSE
		return nil
	}
	return err
}

func clearVariant(v *ole.VARIANT) {
	if v != nil {
		v.Clear()
	}
}

// execQuery runs one WQL query and reads props of every row as raw values.
func execQuery(ctx context.Context, svc *ole.IDispatch, wql string, props []prop) ([]map[string]any, error) {
	setV, err := oleutil.CallMethod(svc, "ExecQuery", wql)
	if err != nil {
		clearVariant(setV)
		return nil, fmt.Errorf("ExecQuery: %w", err)
	}
	defer clearVariant(setV)
	set := setV.ToIDispatch()
	if set == nil {
		return nil, fmt.Errorf("ExecQuery returned no object")
	}
	countV, err := oleutil.GetProperty(set, "Count")
	if err != nil {
		clearVariant(countV)
		return nil, fmt.Errorf("Count: %w", err)
	}
	n, ok := variantToRaw(countV).(int64)
	clearVariant(countV)
	if !ok || n < 0 {
		return nil, fmt.Errorf("Count: not an integer")
	}
	rows := make([]map[string]any, 0, n)
	for i := int64(0); i < n; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		row, err := readRow(set, i, props)
		if err != nil {
			return nil, fmt.Errorf("row %d: %w", i, err)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// readRow reads props of row i of set; a property the object does not have
// is absent from the returned map.
func readRow(set *ole.IDispatch, i int64, props []prop) (map[string]any, error) {
	itemV, err := oleutil.CallMethod(set, "ItemIndex", int32(i))
	if err != nil {
		clearVariant(itemV)
		return nil, fmt.Errorf("ItemIndex: %w", err)
	}
	defer clearVariant(itemV)
	item := itemV.ToIDispatch()
	if item == nil {
		return nil, fmt.Errorf("ItemIndex returned no object")
	}
	psV, err := oleutil.GetProperty(item, "Properties_")
	if err != nil {
		clearVariant(psV)
		return nil, fmt.Errorf("Properties_: %w", err)
	}
	defer clearVariant(psV)
	ps := psV.ToIDispatch()
	if ps == nil {
		return nil, fmt.Errorf("Properties_ returned no object")
	}
	row := make(map[string]any, len(props))
	for _, p := range props {
		v, ok := readProp(ps, p.Name)
		if ok {
			row[p.Name] = v
		}
	}
	return row, nil
}

// readProp reads Properties_.Item(name).Value; ok is false when the object
// has no such property.
func readProp(ps *ole.IDispatch, name string) (v any, ok bool) {
	pV, err := oleutil.CallMethod(ps, "Item", name)
	if err != nil {
		clearVariant(pV)
		return nil, false
	}
	defer clearVariant(pV)
	pd := pV.ToIDispatch()
	if pd == nil {
		return nil, false
	}
	valV, err := oleutil.GetProperty(pd, "Value")
	if err != nil {
		clearVariant(valV)
		return rawUnsupported{Desc: "(Value: " + err.Error() + ")"}, true
	}
	defer clearVariant(valV)
	return variantToRaw(valV), true
}

var (
	oleaut32                = windows.NewLazySystemDLL("oleaut32.dll")
	procSafeArrayGetDim     = oleaut32.NewProc("SafeArrayGetDim")
	procSafeArrayGetLBound  = oleaut32.NewProc("SafeArrayGetLBound")
	procSafeArrayGetUBound  = oleaut32.NewProc("SafeArrayGetUBound")
	procSafeArrayGetElement = oleaut32.NewProc("SafeArrayGetElement")
	procSysFreeString       = oleaut32.NewProc("SysFreeString")
)

// maxArrayLen bounds the elements read from one SAFEARRAY.
const maxArrayLen = 1 << 16

// variantToRaw converts a VARIANT to a raw value: nil for VT_EMPTY and
// VT_NULL, string, int64 for signed and uint64 for unsigned integers,
// float64, bool, time.Time for VT_DATE, []any for one-dimensional arrays of
// those, and rawUnsupported for anything else. It does not take ownership:
// the caller still clears v.
func variantToRaw(v *ole.VARIANT) any {
	if v == nil {
		return nil
	}
	if v.VT&ole.VT_ARRAY != 0 {
		return arrayToRaw(v)
	}
	switch v.VT {
	case ole.VT_EMPTY, ole.VT_NULL:
		return nil
	case ole.VT_BSTR:
		return v.ToString()
	case ole.VT_I1:
		return int64(int8(v.Val))
	case ole.VT_I2:
		return int64(int16(v.Val))
	case ole.VT_I4, ole.VT_INT:
		return int64(int32(v.Val))
	case ole.VT_I8:
		return v.Val
	case ole.VT_UI1:
		return uint64(uint8(v.Val))
	case ole.VT_UI2:
		return uint64(uint16(v.Val))
	case ole.VT_UI4, ole.VT_UINT:
		return uint64(uint32(v.Val))
	case ole.VT_UI8:
		return uint64(v.Val)
	case ole.VT_R4:
		return float64(*(*float32)(unsafe.Pointer(&v.Val)))
	case ole.VT_R8:
		return *(*float64)(unsafe.Pointer(&v.Val))
	case ole.VT_BOOL:
		return v.Val&0xffff != 0
	case ole.VT_DATE:
		t, err := ole.GetVariantDate(uint64(v.Val))
		if err != nil {
			return rawUnsupported{Desc: "VT_DATE (" + err.Error() + ")"}
		}
		return t
	}
	return rawUnsupported{Desc: fmt.Sprintf("VARIANT 0x%x", uint16(v.VT))}
}

// arrayToRaw reads a one-dimensional SAFEARRAY variant as []any.
func arrayToRaw(v *ole.VARIANT) any {
	et := v.VT &^ ole.VT_ARRAY
	if et&ole.VT_BYREF != 0 || v.Val == 0 {
		if v.Val == 0 {
			return nil
		}
		return rawUnsupported{Desc: fmt.Sprintf("VARIANT 0x%x", uint16(v.VT))}
	}
	sa := uintptr(v.Val)
	if dim, _, _ := procSafeArrayGetDim.Call(sa); dim != 1 {
		return rawUnsupported{Desc: fmt.Sprintf("%d-dimensional array", dim)}
	}
	var lo, hi int32
	if hr, _, _ := procSafeArrayGetLBound.Call(sa, 1, uintptr(unsafe.Pointer(&lo))); hr != 0 {
		return rawUnsupported{Desc: fmt.Sprintf("array (SafeArrayGetLBound 0x%x)", hr)}
	}
	if hr, _, _ := procSafeArrayGetUBound.Call(sa, 1, uintptr(unsafe.Pointer(&hi))); hr != 0 {
		return rawUnsupported{Desc: fmt.Sprintf("array (SafeArrayGetUBound 0x%x)", hr)}
	}
	n := int64(hi) - int64(lo) + 1
	if n < 0 || n > maxArrayLen {
		return rawUnsupported{Desc: fmt.Sprintf("array of %d elements", n)}
	}
	out := make([]any, 0, n)
	for i := lo; i <= hi && i >= lo; i++ {
		e, err := arrayElement(sa, i, et)
		if err != nil {
			return rawUnsupported{Desc: err.Error()}
		}
		out = append(out, e)
		if i == hi { // guard against overflow at MaxInt32
			break
		}
	}
	return out
}

// arrayElement reads element i of an array of element type et.
func arrayElement(sa uintptr, i int32, et ole.VT) (any, error) {
	get := func(p unsafe.Pointer) error {
		idx := i
		if hr, _, _ := procSafeArrayGetElement.Call(sa, uintptr(unsafe.Pointer(&idx)), uintptr(p)); hr != 0 {
			return fmt.Errorf("array (SafeArrayGetElement 0x%x)", hr)
		}
		return nil
	}
	switch et {
	case ole.VT_BSTR:
		var b *uint16
		if err := get(unsafe.Pointer(&b)); err != nil {
			return nil, err
		}
		if b == nil {
			return "", nil
		}
		s := ole.BstrToString(b)
		procSysFreeString.Call(uintptr(unsafe.Pointer(b))) // SafeArrayGetElement returned a copy
		return s, nil
	case ole.VT_I1:
		var x int8
		err := get(unsafe.Pointer(&x))
		return int64(x), err
	case ole.VT_I2:
		var x int16
		err := get(unsafe.Pointer(&x))
		return int64(x), err
	case ole.VT_I4, ole.VT_INT:
		var x int32
		err := get(unsafe.Pointer(&x))
		return int64(x), err
	case ole.VT_I8:
		var x int64
		err := get(unsafe.Pointer(&x))
		return x, err
	case ole.VT_UI1:
		var x uint8
		err := get(unsafe.Pointer(&x))
		return uint64(x), err
	case ole.VT_UI2:
		var x uint16
		err := get(unsafe.Pointer(&x))
		return uint64(x), err
	case ole.VT_UI4, ole.VT_UINT:
		var x uint32
		err := get(unsafe.Pointer(&x))
		return uint64(x), err
	case ole.VT_UI8:
		var x uint64
		err := get(unsafe.Pointer(&x))
		return x, err
	case ole.VT_R8:
		var x float64
		err := get(unsafe.Pointer(&x))
		return x, err
	case ole.VT_BOOL:
		var x int16 // VARIANT_BOOL is two bytes
		err := get(unsafe.Pointer(&x))
		return x != 0, err
	case ole.VT_VARIANT:
		var x ole.VARIANT
		if err := get(unsafe.Pointer(&x)); err != nil {
			return nil, err
		}
		defer x.Clear() // a copy, owned here
		if x.VT&ole.VT_ARRAY != 0 {
			return rawUnsupported{Desc: "nested array"}, nil
		}
		return variantToRaw(&x), nil
	}
	return nil, fmt.Errorf("array of VARIANT type 0x%x", uint16(et))
}
