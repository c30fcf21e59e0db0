package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// refStrict is a slow, obviously-correct model of strictCheck built on
// encoding/json's tokenizer: it returns the document as a generic tree with
// every key that only case-folds to a struct field removed, and whether the
// document holds a duplicate struct field or a non-string where only a
// string may be.
func refStrict(b []byte, sc *schema) (tree any, refused bool, err error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tree, refused, err = refValue(dec, sc)
	return tree, refused, err
}

func refValue(dec *json.Decoder, sc *schema) (any, bool, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, false, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, false, nil
	}
	refused := false
	switch d {
	case '[':
		var elem *schema
		if sc != nil && sc.kind == kindList {
			elem = sc.elem
		}
		list := []any{}
		for dec.More() {
			v, r, err := refValue(dec, elem)
			if err != nil {
				return nil, false, err
			}
			refused = refused || r
			list = append(list, v)
		}
		_, err := dec.Token()
		return list, refused, err
	case '{':
		obj := map[string]any{}
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, false, err
			}
			k := kt.(string)
			var child *schema
			keep := true
			if sc != nil && sc.kind == kindStruct {
				if f, ok := sc.fields[k]; ok {
					if seen[f.name] {
						refused = true
					}
					seen[f.name] = true
					child = f.typ
					if f.stringOnly && dec.More() {
						v, r, err := refValue(dec, child)
						if err != nil {
							return nil, false, err
						}
						if _, isString := v.(string); !isString && v != nil {
							refused = true
						}
						obj[k] = v
						refused = refused || r
						continue
					}
				} else if sc.folds(k) {
					keep = false
				}
			} else if sc != nil && sc.kind == kindMap {
				child = sc.elem
			}
			v, r, err := refValue(dec, child)
			if err != nil {
				return nil, false, err
			}
			refused = refused || r
			if keep {
				obj[k] = v
			}
		}
		_, err := dec.Token()
		return obj, refused, err
	}
	return nil, false, errors.New("unexpected delimiter")
}

// FuzzStrictDecode checks strictCheck against refStrict: both refuse the
// same documents, and what strictCheck lets through decodes to what the
// model's cleaned document decodes to. It never panics on any input.
func FuzzStrictDecode(f *testing.F) {
	seeds := []string{
		`{"id":"j","version":"1","request_id":"r","shell":"sh","script":"a","SCRIPT":"b","timeout_secs":5}`,
		`{"script":"a","script":"b"}`,
		`{"staleness":{"mode":"strict","MODE":"x","max_cache_age":"0s"},"retry":{"max":1,"max":2}}`,
		`{"exec_id":"a","job_id":"b","Job_Id":"c"}`,
		`{"\u0073cript":"a","ſcript":"b","\u212aid":"k"}`,
		`{"outbox":{"a":{"pending":1},"A":{"Pending":2,"pending":3}},"Enforcing":true}`,
		`[{"kid":"a","KID":"b","public_key":"k"},{"kid":"c","max_age_secs":0}]`,
		`{"event_record_id":12,"payload":{"a":1,"a":2}}`,
		`{"heartbeat_interval":"1ns","Heartbeat_Interval":"30s","max_local_concurrent":0}`,
		`{"a":[{"b":{"c":[1,2,{"script":"x","script":"y"}]}}]}`,
		`{"": 1, " ": {}, "x": null}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	types := []reflect.Type{
		reflect.TypeOf(&Command{}), reflect.TypeOf(&ConfigScope{}), reflect.TypeOf(&Heartbeat{}),
		reflect.TypeOf(&ObsEvent{}), reflect.TypeOf(&[]KeyringEntry{}), reflect.TypeOf(&ExecResult{}),
	}
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		typ := types[int(which)%len(types)]
		out, err := strictCheck(b, typ)
		if !json.Valid(b) {
			return // json.Unmarshal reports it; strictCheck only had not to panic
		}
		tree, refused, rerr := refStrict(b, schemaOf(typ))
		if rerr != nil {
			t.Fatalf("model failed on valid JSON %q: %v", b, rerr)
		}
		if (err != nil) != refused {
			t.Fatalf("strictCheck(%q) error %v, model refused %v", b, err, refused)
		}
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("strictCheck(%q) = invalid %q", b, out)
		}
		clean, err := json.Marshal(tree)
		if err != nil {
			t.Fatal(err)
		}
		got, want := reflect.New(typ.Elem()), reflect.New(typ.Elem())
		gerr := json.Unmarshal(out, got.Interface())
		werr := json.Unmarshal(clean, want.Interface())
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("decoding %q: strict %v, model %v (model document %s)", b, gerr, werr, clean)
		}
		if gerr != nil {
			return
		}
		gj, err1 := json.Marshal(got.Interface())
		wj, err2 := json.Marshal(want.Interface())
		if err1 != nil || err2 != nil {
			t.Fatalf("encode: %v %v", err1, err2)
		}
		if !sameValue(gj, wj) {
			t.Fatalf("decoding %q:\nstrict %s\n model %s", b, gj, wj)
		}
	})
}

// sameValue reports whether two JSON documents hold the same value.
func sameValue(a, b []byte) bool {
	var va, vb any
	da, db := json.NewDecoder(bytes.NewReader(a)), json.NewDecoder(bytes.NewReader(b))
	da.UseNumber()
	db.UseNumber()
	if da.Decode(&va) != nil || db.Decode(&vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}
