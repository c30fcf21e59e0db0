package ledger

import (
	"bytes"
	"testing"
)

// FuzzParseLog feeds arbitrary bytes after a valid header to the log parser:
// it must never panic, the valid prefix must re-encode to the same bytes,
// and every record it returns must be well formed.
func FuzzParseLog(f *testing.F) {
	seed := appendRecord(nil, kindLaunching, 1, "req-1", []byte("meta"))
	seed = appendRecord(seed, kindFinished, 2, "req-1", nil)
	f.Add(seed)
	f.Add(append(bytes.Clone(seed), "garbage"...))
	f.Add(seed[:len(seed)-3])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		data := append(fileHeader(), body...)
		res := parseLog(data)
		if res.validEnd < headerSize || res.validEnd > len(data) {
			t.Fatalf("validEnd %d out of range", res.validEnd)
		}
		var again []byte
		prefix := 0
		for _, r := range res.records {
			if r.id == "" || len(r.id) > MaxRequestIDLen || len(r.meta) > MaxMetaLen ||
				(r.kind != kindLaunching && r.kind != kindFinished) {
				t.Fatalf("bad record %+v", r)
			}
			if len(again) < res.validEnd-headerSize {
				again = appendRecord(again, r.kind, r.at, r.id, r.meta)
				prefix++
			}
		}
		if !bytes.Equal(again, data[headerSize:res.validEnd]) {
			t.Fatalf("valid prefix does not re-encode (%d records)", prefix)
		}
		// Salvage of the whole input must not panic either.
		var recs []record
		salvage(data, &recs)
	})
}
