package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/kanade/kanade-agent/wire"
)

// Fuzz targets: every decoder accepts arbitrary bytes without panicking; an
// error always wraps ErrInvalid; a decoded value re-encodes, decodes again,
// and encodes to the same bytes (the encoding is a fixed point).

// seeds are shared malformed inputs added to every corpus.
var seeds = []string{
	``, `{}`, `[]`, `null`, `0`, `"s"`, `{"a":`, "{\"pc_id\":\"\xff\"}", `{"at":"2026-13-01T00:00:00Z"}`,
	`{"at":"0000-01-01T00:00:00Z"}`, `{"at":"9999-12-31T23:59:59.999999999+23:59"}`,
}

func addSeeds(f *testing.F, docs ...string) {
	for _, s := range append(docs, seeds...) {
		f.Add([]byte(s))
	}
}

// fuzzDecode is the body of every target.
func fuzzDecode[T any](t *testing.T, b []byte, decode func([]byte) (T, error), check func(*testing.T, T)) {
	v, err := decode(b)
	if err != nil {
		if !errors.Is(err, wire.ErrInvalid) {
			t.Fatalf("error %q does not wrap ErrInvalid", err)
		}
		return
	}
	if check != nil {
		check(t, v)
	}
	enc1, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("decoded %#v but cannot encode it: %v", v, err)
	}
	v2, err := decode(enc1)
	if err != nil {
		t.Fatalf("cannot decode own encoding %s: %v", enc1, err)
	}
	enc2, err := json.Marshal(v2)
	if err != nil {
		t.Fatalf("cannot encode %#v: %v", v2, err)
	}
	if !bytes.Equal(enc1, enc2) {
		t.Fatalf("encoding not stable:\n%s\n%s", enc1, enc2)
	}
}

func FuzzCommand(f *testing.F) {
	addSeeds(f, commandFull, commandObject, commandMinimal,
		`{"request_id":"r","job_id":"j","exec_id":"","shell":"sh","script":"x"}`,
		`{"request_id":"r","shell":"sh","script":"x","staleness":{"mode":"strict","max_cache_age":"1h"}}`,
		`{"request_id":"r","shell":"sh","script":"x","timeout_secs":9223372036854775807}`)
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzDecode(t, b, wire.DecodeCommand, func(t *testing.T, c *wire.Command) {
			if err := c.Validate(); err != nil {
				t.Fatalf("DecodeCommand returned a command that fails Validate: %v", err)
			}
			if d := c.EffectiveTimeout(); d < 1e9 {
				t.Fatalf("EffectiveTimeout %v < 1s", d)
			}
			if c.StalenessMode() == wire.StalenessStrict {
				// A malformed max_cache_age reads as 0: fail closed.
				if d, err := c.Staleness.MaxAge(); d < 0 || err != nil && d != 0 {
					t.Fatalf("strict command with MaxAge %v, %v", d, err)
				}
			}
		})
	})
}

func FuzzExecResult(f *testing.F) {
	addSeeds(f, execResultFull, execResultSkipped)
	f.Fuzz(func(t *testing.T, b []byte) { fuzzDecode(t, b, wire.DecodeExecResult, nil) })
}

func FuzzEventStarted(f *testing.F) {
	addSeeds(f, eventStartedFull, eventStartedMinimal)
	f.Fuzz(func(t *testing.T, b []byte) { fuzzDecode(t, b, wire.DecodeEventStarted, nil) })
}

func FuzzObsEvent(f *testing.F) {
	addSeeds(f, obsEventFull, obsEventMinimal,
		`{"at":"2026-03-01T08:00:00Z","kind":"k","source":"s","payload":"<&>\u2028"}`)
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzDecode(t, b, wire.DecodeObsEvent, func(t *testing.T, e *wire.ObsEvent) {
			if e.Kind == "" || e.Source == "" || e.At.IsZero() {
				t.Fatalf("DecodeObsEvent returned an invalid event %+v", e)
			}
		})
	})
}

func FuzzHeartbeat(f *testing.F) {
	addSeeds(f, heartbeatFull, heartbeatEmpty, `{"command_keys":null}`)
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzDecode(t, b, wire.DecodeHeartbeat, nil)
		if h, err := wire.DecodeHeartbeat(b); err == nil {
			enc, err := json.Marshal(h)
			if err != nil {
				t.Fatal(err)
			}
			if k := keysOf(t, enc); !k["command_keys"] || !k["enforcing"] {
				t.Fatalf("command_keys or enforcing missing: %s", enc)
			}
			if bytes.Contains(enc, []byte(`"command_keys":null`)) {
				t.Fatalf("command_keys null: %s", enc)
			}
		}
	})
}

func FuzzHostPerf(f *testing.F) {
	addSeeds(f, hostPerfFull)
	f.Fuzz(func(t *testing.T, b []byte) { fuzzDecode(t, b, wire.DecodeHostPerf, nil) })
}

func FuzzInventoryReport(f *testing.F) {
	addSeeds(f, inventoryFull, `{"data":{"a":[{"b":1e308,"c":-0,"d":"\ud800"}]}}`)
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzDecode(t, b, wire.DecodeInventoryReport, func(t *testing.T, r *wire.InventoryReport) {
			// Data that came off the wire can always be hashed, stably.
			h1, err := wire.HashData(r.Data)
			if err != nil {
				t.Fatalf("HashData: %v", err)
			}
			enc, err := json.Marshal(r.Data)
			if err != nil {
				t.Fatal(err)
			}
			var back map[string]any
			if err := json.Unmarshal(enc, &back); err != nil {
				t.Fatal(err)
			}
			if h2, err := wire.HashData(back); err != nil || h2 != h1 {
				t.Fatalf("hash after a round trip %s, %v; want %s", h2, err, h1)
			}
		})
	})
}

func FuzzConfigScope(f *testing.F) {
	addSeeds(f, configScopeFull, `{"max_local_concurrent":0,"heartbeat_interval":"-1s"}`, `{"heartbeat_interval":"1ns","target_version_jitter":"0s"}`,
		`{"inventory_interval":"9223372036854775807ns","target_version_jitter":"1e3h"}`)
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzDecode(t, b, wire.DecodeConfigScope, func(t *testing.T, s *wire.ConfigScope) {
			c, _ := wire.DefaultConfig(4).Apply(s)
			if c.MaxLocalConcurrent <= 0 || c.TargetVersionJitter < 0 || c.HeartbeatInterval < wire.MinHeartbeatInterval ||
				c.HostPerfInterval < wire.MinHostPerfInterval || c.InventoryInterval < wire.MinInventoryInterval || c.ProcessPerfTopN < 0 {
				t.Fatalf("Apply gave a config below the floors: %+v", c)
			}
		})
	})
}

func FuzzGroups(f *testing.F) {
	addSeeds(f, groupsDoc, `{"groups":null}`, `{"groups":["a","a",""]}`)
	f.Fuzz(func(t *testing.T, b []byte) { fuzzDecode(t, b, wire.DecodeGroups, nil) })
}

func FuzzKeyring(f *testing.F) {
	addSeeds(f, keyringDoc, `[{"kid":"k"}]`, `[null]`)
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzDecode(t, b, wire.DecodeKeyring, func(t *testing.T, k []wire.KeyringEntry) {
			for i, e := range k {
				if e.Kid == "" || e.PublicKey == "" {
					t.Fatalf("entry %d lacks kid or public_key: %+v", i, e)
				}
			}
		})
	})
}
