package wire

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestSerdeValue checks serdeValue against what serde_json writes for a
// serde_json::Value read from the same text (serde_json 1.x, default
// features: Map is a BTreeMap, numbers are u64, i64 or f64).
func TestSerdeValue(t *testing.T) {
	for in, want := range map[string]string{
		`null`:                        `null`,
		` { "b" : 1 , "a" : [ ] } `:   `{"a":[],"b":1}`,
		`{"a":{"d":1,"c":2},"A":0}`:   `{"A":0,"a":{"c":2,"d":1}}`,
		`{"k":1,"k":2}`:               `{"k":2}`,
		`[0,-0,1.0,1e2,1.5E-7,-1e21]`: `[0,0,1.0,100.0,1.5e-7,-1e21]`,
		`[18446744073709551615]`:      `[18446744073709551615]`,
		`[18446744073709551616]`:      `[1.8446744073709552e19]`,
		`[-9223372036854775808]`:      `[-9223372036854775808]`,
		`[-9223372036854775809]`:      `[-9.223372036854776e18]`,
		`["\u00e9\/\u003c\"\\"]`:      `["é/<\"\\"]`,
		`["\b\f\n\r\t\u0000\u001f"]`:  `["\b\f\n\r\t\u0000\u001f"]`,
		`["\u2028\u2029\u007f"]`:      "[\"\u2028\u2029\x7f\"]",
		`{"😀":true,"é":false,"z":1}`:  `{"z":1,"é":false,"😀":true}`,
	} {
		got, err := serdeValue([]byte(in))
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if string(got) != want {
			t.Errorf("%s\n got %s\nwant %s", in, got, want)
		}
		// Same meaning, and a fixed point.
		var a, b any
		if json.Unmarshal([]byte(in), &a) != nil || json.Unmarshal(got, &b) != nil || !reflect.DeepEqual(a, b) {
			t.Errorf("%s: %s does not mean the same", in, got)
		}
		if again, err := serdeValue(got); err != nil || string(again) != string(got) {
			t.Errorf("%s: not a fixed point: %s, %v", in, again, err)
		}
	}
	for _, bad := range []string{``, `{`, `1 2`, `[1e400]`, `{"a":}`} {
		if got, err := serdeValue([]byte(bad)); err == nil {
			t.Errorf("%q: %s, want an error", bad, got)
		}
	}
}
