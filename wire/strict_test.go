package wire_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/kanade/kanade-agent/wire"
)

// cmdDoc is a valid command with extra members spliced in at the end.
func cmdDoc(extra string) string {
	return `{"id":"j","version":"1","request_id":"r","shell":"sh","script":"a","timeout_secs":5` + extra + `}`
}

// TestStrictCase checks that keys match fields only in their exact case, as
// with serde: a key that differs in case (or only folds to a field name, or
// is spelled with escapes that fold) is an unknown field and is ignored, at
// every nesting level, whatever the order of the keys.
func TestStrictCase(t *testing.T) {
	tests := []struct {
		name  string
		doc   string
		check func(t *testing.T, v any)
		dec   func([]byte) (any, error)
	}{
		{"upper case after", cmdDoc(`,"SCRIPT":"b"`), scriptIs("a"), decCommand},
		{"upper case before", `{"SCRIPT":"b",` + cmdDoc("")[1:], scriptIs("a"), decCommand},
		{"title case", cmdDoc(`,"Script":"b"`), scriptIs("a"), decCommand},
		{"unicode fold (long s)", cmdDoc(`,"ſcript":"b"`), scriptIs("a"), decCommand},

		{"escaped upper case", cmdDoc(`,"\u0053CRIPT":"b"`), scriptIs("a"), decCommand},
		{"wrong case only is not the field", `{"id":"j","version":"1","request_id":"r","shell":"sh","Script":"b","script_object":"o/1",` +
			`"script_object_sha256":"` + strings.Repeat("ab", 32) + `","timeout_secs":5}`, scriptIs(""), decCommand},
		{"nested staleness", cmdDoc(`,"staleness":{"mode":"strict","max_cache_age":"1h","MAX_CACHE_AGE":"0s","Mode":"unchecked"}`),
			func(t *testing.T, v any) {
				s := v.(*wire.Command).Staleness
				if s == nil || s.Mode != wire.StalenessStrict || s.MaxCacheAge != "1h" {
					t.Errorf("staleness %+v, want strict 1h", s)
				}
			}, decCommand},
		{"nested retry", cmdDoc(`,"retry":{"MAX":9,"max":1,"backoff_secs":2}`),
			func(t *testing.T, v any) {
				if r := v.(*wire.Command).Retry; r == nil || r.Max != 1 {
					t.Errorf("retry %+v, want max 1", r)
				}
			}, decCommand},
		{"job_id case", cmdDoc(`,"JOB_ID":"evil"`), func(t *testing.T, v any) {
			if id := v.(*wire.Command).ExecID; id != "" {
				t.Errorf("exec id %q, want none", id)
			}
		}, decCommand},
		{"config scope", `{"heartbeat_interval":"30s","HEARTBEAT_INTERVAL":"1ns","Max_Local_Concurrent":0}`,
			func(t *testing.T, v any) {
				s := v.(*wire.ConfigScope)
				if s.HeartbeatInterval == nil || *s.HeartbeatInterval != "30s" || s.MaxLocalConcurrent != nil {
					t.Errorf("scope %+v", s)
				}
			}, func(b []byte) (any, error) { return wire.DecodeConfigScope(b) }},
		{"groups", `{"Groups":["evil"],"groups":["a"]}`, func(t *testing.T, v any) {
			if g := v.(*wire.Groups).Groups; !reflect.DeepEqual(g, []string{"a"}) {
				t.Errorf("groups %q", g)
			}
		}, func(b []byte) (any, error) { return wire.DecodeGroups(b) }},
		{"groups wrong case only", `{"GROUPS":["evil"]}`, func(t *testing.T, v any) {
			if g := v.(*wire.Groups).Groups; g != nil {
				t.Errorf("groups %q, want none", g)
			}
		}, func(b []byte) (any, error) { return wire.DecodeGroups(b) }},
		{"keyring entries", `[{"kid":"a","KID":"b","public_key":"k","Public_Key":"evil"}]`, func(t *testing.T, v any) {
			if k := v.([]wire.KeyringEntry); len(k) != 1 || k[0].Kid != "a" || k[0].PublicKey != "k" {
				t.Errorf("keyring %+v", k)
			}
		}, func(b []byte) (any, error) { return wire.DecodeKeyring(b) }},
		{"kelvin sign folds to k", `[{"kid":"a","\u212aid":"b","public_key":"k"}]`, func(t *testing.T, v any) {
			if k := v.([]wire.KeyringEntry); len(k) != 1 || k[0].Kid != "a" {
				t.Errorf("keyring %+v", k)
			}
		}, func(b []byte) (any, error) { return wire.DecodeKeyring(b) }},
		{"heartbeat outbox values", `{"pc_id":"p","at":"2026-03-01T10:15:30Z","agent_version":"1","command_keys":[],"enforcing":false,` +
			`"outbox":{"results":{"pending":1,"PENDING":7},"Results":{"pending":2}},"Enforcing":true}`,
			func(t *testing.T, v any) {
				h := v.(*wire.Heartbeat)
				// Map keys are data, kept as sent; struct keys inside are strict.
				if h.Enforcing || h.Outbox["results"].Pending != 1 || h.Outbox["Results"].Pending != 2 {
					t.Errorf("heartbeat %+v", h)
				}
			}, func(b []byte) (any, error) { return wire.DecodeHeartbeat(b) }},
		{"obs event payload is data", `{"pc_id":"p","at":"2026-03-01T08:00:00Z","kind":"k","KIND":"x","source":"s:x",` +
			`"payload":{"a":1,"A":2,"a":3}}`,
			func(t *testing.T, v any) {
				e := v.(*wire.ObsEvent)
				if e.Kind != "k" || string(e.Payload) != `{"a":1,"A":2,"a":3}` {
					t.Errorf("event %+v payload %s", e, e.Payload)
				}
			}, func(b []byte) (any, error) { return wire.DecodeObsEvent(b) }},
		{"exec result", `{"result_id":"r","request_id":"q","pc_id":"p","exit_code":0,"EXIT_CODE":1,"stdout":"","stderr":"",` +
			`"started_at":"2026-03-01T10:15:00Z","finished_at":"2026-03-01T10:15:00Z","Manifest_ID":"x"}`,
			func(t *testing.T, v any) {
				if r := v.(*wire.ExecResult); r.ExitCode != 0 || r.ManifestID != "" {
					t.Errorf("result %+v", r)
				}
			}, func(b []byte) (any, error) { return wire.DecodeExecResult(b) }},
		{"inventory data is data", `{"pc_id":"p","at":"2026-03-01T10:00:00Z","category":"hw","Category":"os","collector":"c","hash":"h",` +
			`"data":{"Win32_BIOS":[{"x":1}],"win32_bios":[]}}`,
			func(t *testing.T, v any) {
				r := v.(*wire.InventoryReport)
				if r.Category != "hw" || len(r.Data) != 2 {
					t.Errorf("report %+v", r)
				}
			}, func(b []byte) (any, error) { return wire.DecodeInventoryReport(b) }},
		{"logs fetch request", `{"TAIL_LINES":100000,"tail_lines":10}`, func(t *testing.T, v any) {
			if r := v.(*wire.LogsFetchRequest); r.TailLines != 10 {
				t.Errorf("request %+v", r)
			}
		}, func(b []byte) (any, error) { return wire.DecodeLogsFetchRequest(b) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := tt.dec([]byte(tt.doc))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			tt.check(t, v)
		})
	}
}

// TestStrictDuplicates checks that a struct field given twice is refused,
// as serde refuses it, at every nesting level and under an escaped or
// aliased spelling, while duplicate keys of maps and opaque values are kept.
func TestStrictDuplicates(t *testing.T) {
	tests := []struct {
		name, doc, mention string
		dec                func([]byte) (any, error)
	}{
		{"script twice", cmdDoc(`,"script":"b"`), `duplicate field "script"`, decCommand},
		{"escaped spelling", cmdDoc(`,"\u0073cript":"b"`), `duplicate field "script"`, decCommand},
		{"exec_id and job_id", cmdDoc(`,"exec_id":"a","job_id":"b"`), `duplicate field "exec_id"`, decCommand},
		{"null counts", cmdDoc(`,"cwd":null,"cwd":"/"`), `duplicate field "cwd"`, decCommand},
		{"in staleness", cmdDoc(`,"staleness":{"mode":"strict","max_cache_age":"1h","mode":"cached"}`), `duplicate field "mode" in staleness`, decCommand},
		{"in retry", cmdDoc(`,"retry":{"max":1,"backoff_secs":1,"backoff_secs":2}`), `duplicate field "backoff_secs" in retry`, decCommand},
		{"in emit", cmdDoc(`,"emit":{"type":"events","type":"events"}`), `duplicate field "type" in emit`, decCommand},
		{"config scope", `{"heartbeat_interval":"30s","heartbeat_interval":"1ns"}`, `duplicate field "heartbeat_interval"`,
			func(b []byte) (any, error) { return wire.DecodeConfigScope(b) }},
		{"groups", `{"groups":["a"],"groups":["b"]}`, `duplicate field "groups"`,
			func(b []byte) (any, error) { return wire.DecodeGroups(b) }},
		{"keyring entry", `[{"kid":"a","public_key":"k"},{"kid":"a","kid":"b","public_key":"k"}]`, `duplicate field "kid"`,
			func(b []byte) (any, error) { return wire.DecodeKeyring(b) }},
		{"obs event", `{"pc_id":"p","at":"2026-03-01T08:00:00Z","kind":"k","source":"s:x","source":"t:y"}`, `duplicate field "source"`,
			func(b []byte) (any, error) { return wire.DecodeObsEvent(b) }},
		{"heartbeat outbox entry", `{"pc_id":"p","at":"2026-03-01T10:15:30Z","agent_version":"1","outbox":{"results":{"stuck":1,"stuck":0}}}`,
			`duplicate field "stuck" in outbox`, func(b []byte) (any, error) { return wire.DecodeHeartbeat(b) }},
		{"event started", `{"exec_id":"e","exec_id":"f","pc_id":"p","result_id":"r","request_id":"q","started_at":"2026-03-01T10:15:00Z","manifest_id":"m","version":"1"}`,
			`duplicate field "exec_id"`, func(b []byte) (any, error) { return wire.DecodeEventStarted(b) }},
		{"host perf", `{"pc_id":"p","at":"2026-03-01T10:16:00Z","cpu_pct":1,"cpu_pct":2}`, `duplicate field "cpu_pct"`,
			func(b []byte) (any, error) { return wire.DecodeHostPerf(b) }},
		{"logs fetch request", `{"tail_lines":1,"tail_lines":2}`, `duplicate field "tail_lines"`,
			func(b []byte) (any, error) { return wire.DecodeLogsFetchRequest(b) }},
		{"obs record id number", `{"pc_id":"p","at":"2026-03-01T08:00:00Z","kind":"k","source":"s:x","event_record_id":12}`,
			`"event_record_id" must be a string or null`, func(b []byte) (any, error) { return wire.DecodeObsEvent(b) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := tt.dec([]byte(tt.doc))
			if err == nil || !errors.Is(err, wire.ErrInvalid) || !strings.Contains(err.Error(), tt.mention) {
				t.Fatalf("decode = %+v, %v; want an error wrapping ErrInvalid mentioning %q", v, err, tt.mention)
			}
		})
	}
	// Duplicate keys inside opaque values (payloads, inventory data, map
	// keys) are data: kept as sent.
	for _, doc := range []string{
		`{"pc_id":"p","at":"2026-03-01T08:00:00Z","kind":"k","source":"s:x","payload":{"a":1,"a":2}}`,
	} {
		if _, err := wire.DecodeObsEvent([]byte(doc)); err != nil {
			t.Errorf("DecodeObsEvent(%s): %v", doc, err)
		}
	}
	if _, err := wire.DecodeHeartbeat([]byte(`{"pc_id":"p","at":"2026-03-01T10:15:30Z","agent_version":"1","outbox":{"a":{},"a":{}}}`)); err != nil {
		t.Errorf("duplicate map key refused: %v", err)
	}
}

// TestStrictLeavesSyntaxErrorsToJSON checks that malformed documents still
// get encoding/json's precise error, and odd but valid ones decode.
func TestStrictLeavesSyntaxErrorsToJSON(t *testing.T) {
	for _, doc := range []string{`{"script":`, `{"script" "a"}`, `{"a":1,}`, `[`, `{"s":"\`, `{` + strings.Repeat(`"a":[`, 20) + `}`} {
		_, err := wire.DecodeCommand([]byte(doc))
		if err == nil || !errors.Is(err, wire.ErrInvalid) || !strings.Contains(err.Error(), "malformed JSON") {
			t.Errorf("DecodeCommand(%q) = %v, want malformed JSON", doc, err)
		}
	}
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	if _, err := wire.DecodeCommand([]byte(cmdDoc(`,"x":` + deep))); err == nil || !errors.Is(err, wire.ErrInvalid) {
		t.Errorf("deep document: %v", err)
	}
	if c, err := wire.DecodeCommand([]byte(" \n" + cmdDoc(`,"":1,"x":{"script":"b","script":"c"},"y":[{"SCRIPT":1}]`) + "\t")); err != nil || c.Script != "a" {
		t.Errorf("valid document: %+v, %v", c, err)
	}
}

// TestStrictMatchesPlainJSONOtherwise checks that for documents without
// case variants or duplicates strict decoding gives what json.Unmarshal does.
func TestStrictMatchesPlainJSONOtherwise(t *testing.T) {
	for _, doc := range []string{commandFull, commandObject, commandMinimal} {
		got, err := wire.DecodeCommand([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		var want wire.Command
		if err := json.Unmarshal([]byte(doc), &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("strict %+v\nplain %+v", *got, want)
		}
	}
}

func decCommand(b []byte) (any, error) { return wire.DecodeCommand(b) }

func scriptIs(want string) func(*testing.T, any) {
	return func(t *testing.T, v any) {
		t.Helper()
		if got := v.(*wire.Command).Script; got != want {
			t.Errorf("script %q, want %q", got, want)
		}
	}
}
