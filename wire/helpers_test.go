package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

// jsonValue decodes b into a generic value, keeping numbers as written, so
// two documents can be compared field by field whatever their key order.
func jsonValue(t testing.TB, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	return normNumbers(v)
}

// normNumbers makes numbers that are equal compare equal: integers keep
// their digits (exact); numbers with a fraction or an exponent are
// rewritten in one canonical form, so "12" and "12.0" (serde_json's f64)
// are the same value.
func normNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if !strings.ContainsAny(string(x), ".eE") {
			return string(x)
		}
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return string(x)
		}
		if f == math.Trunc(f) && math.Abs(f) < 1e18 {
			return strconv.FormatInt(int64(f), 10)
		}
		return strconv.FormatFloat(f, 'g', -1, 64)
	case map[string]any:
		for k, e := range x {
			x[k] = normNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normNumbers(e)
		}
	}
	return v
}

// sameJSON fails t unless got and want are the same JSON document.
func sameJSON(t testing.TB, got []byte, want string) {
	t.Helper()
	if g, w := jsonValue(t, got), jsonValue(t, []byte(want)); !reflect.DeepEqual(g, w) {
		t.Errorf("encoded JSON differs\n got: %s\nwant: %s", compactJSON(t, got), compactJSON(t, []byte(want)))
	}
}

func compactJSON(t testing.TB, b []byte) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return string(b)
	}
	return buf.String()
}

// keysOf returns the top-level keys of a JSON object.
func keysOf(t testing.TB, b []byte) map[string]bool {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, b)
	}
	keys := make(map[string]bool, len(m))
	for k := range m {
		keys[k] = true
	}
	return keys
}

// checkKeys fails t if the encoded object lacks one of present or holds one of absent.
func checkKeys(t testing.TB, b []byte, present, absent []string) {
	t.Helper()
	keys := keysOf(t, b)
	for _, k := range present {
		if !keys[k] {
			t.Errorf("encoded JSON lacks %q: %s", k, b)
		}
	}
	for _, k := range absent {
		if keys[k] {
			t.Errorf("encoded JSON has %q, want it omitted: %s", k, b)
		}
	}
}

// roundTrip decodes doc with decode, checks the result against want field by
// field, re-encodes it and checks that the encoding is the JSON document
// wantJSON (doc itself when wantJSON is empty).
func roundTrip[T any](t *testing.T, doc string, decode func([]byte) (*T, error), want *T, wantJSON string) {
	t.Helper()
	got, err := decode([]byte(doc))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		gv, wv := reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem()
		for i := 0; i < gv.NumField(); i++ {
			if g, w := gv.Field(i).Interface(), wv.Field(i).Interface(); !reflect.DeepEqual(g, w) {
				t.Errorf("field %s = %#v, want %#v", gv.Type().Field(i).Name, g, w)
			}
		}
		if !t.Failed() {
			t.Errorf("decoded %#v, want %#v", got, want)
		}
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	if wantJSON == "" {
		wantJSON = doc
	}
	sameJSON(t, b, wantJSON)
	// A value and a pointer encode the same (value-receiver MarshalJSON, if any).
	bv, err := json.Marshal(*got)
	if err != nil {
		t.Fatalf("encode value: %v", err)
	}
	if !bytes.Equal(b, bv) {
		t.Errorf("pointer and value encode differently:\n%s\n%s", b, bv)
	}
}

// checkInvalid fails t unless err wraps wire.ErrInvalid and mentions each of substrs.
func checkInvalid(t testing.TB, err error, substrs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want one wrapping wire.ErrInvalid mentioning %q", substrs)
	}
	if !errors.Is(err, wire.ErrInvalid) {
		t.Errorf("error %q does not wrap wire.ErrInvalid", err)
	}
	for _, s := range substrs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func ptr[T any](v T) *T { return &v }
