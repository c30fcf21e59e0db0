package wire_test

import (
	"errors"
	"testing"

	"github.com/kanade/kanade-agent/wire"
)

func TestJobHintsRequiredFields(t *testing.T) {
	base := `{"id":"j","version":"1","request_id":"r","shell":"sh","script":"true","timeout_secs":1,`
	for _, tc := range []struct{ name, doc string }{
		{"check without name", base + `"check":{"status_field":"s"}}`},
		{"collect without name", base + `"collect":{"files_field":"f"}}`},
		{"finalize without shell", base + `"finalize":{"script":"x","timeout_secs":1}}`},
		{"finalize without script", base + `"finalize":{"shell":"sh","timeout_secs":1}}`},
		{"finalize without timeout", base + `"finalize":{"shell":"sh","script":"x"}}`},
		{"finalize bad shell", base + `"finalize":{"shell":"bash","script":"x","timeout_secs":1}}`},
		{"finalize bad run_as", base + `"finalize":{"shell":"sh","script":"x","timeout_secs":1,"run_as":"root"}}`},
	} {
		if _, err := wire.DecodeCommand([]byte(tc.doc)); !errors.Is(err, wire.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", tc.name, err)
		}
	}
	c, err := wire.DecodeCommand([]byte(base + `"check":{"name":"n"},"collect":{"name":"c"},"finalize":{"shell":"sh","script":"x","timeout_secs":3}}`))
	if err != nil {
		t.Fatal(err)
	}
	if h := c.Check; h.StatusField != "status" || h.DetailField != "detail" || !h.Fleet || !h.Health {
		t.Errorf("check defaults: %+v", h)
	}
	if c.Collect.FilesField != "files" || c.Collect.MaxSizeBytes() != wire.DefaultCollectMaxSize {
		t.Errorf("collect defaults: %+v", c.Collect)
	}
	if f := c.Finalize; f.EffectiveRunAs() != wire.RunAsSystem || f.OnEachBundle || f.TimeoutSecs != 3 {
		t.Errorf("finalize defaults: %+v", f)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1024": 1024, "50MB": 50_000_000, "500 KB": 500_000, "1GiB": 1 << 30, "2kib": 2048, " 7b ": 7} {
		if got, err := wire.ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MB", "5 TB", "-1", "99999999999999999999", "18446744073709551615GiB"} {
		if _, err := wire.ParseSize(in); !errors.Is(err, wire.ErrInvalid) {
			t.Errorf("ParseSize(%q) err = %v, want ErrInvalid", in, err)
		}
	}
	if got := (&wire.CollectHint{MaxSize: "bogus"}).MaxSizeBytes(); got != wire.DefaultCollectMaxSize {
		t.Errorf("unparsable max_size gives %d, want the default", got)
	}
}

func TestFencedPayload(t *testing.T) {
	tests := []struct{ stdout, want string }{
		{`  {"a":1}` + "\n", `{"a":1}`},
		{"hello\n#KANADE-CHECK-BEGIN\n{\"status\":\"ok\"}\n#KANADE-CHECK-END\nbye\n", `{"status":"ok"}`},
		{"#KANADE-CHECK-BEGIN\n{\"status\":\"ok\"}", `{"status":"ok"}`},                                  // unterminated
		{"#KANADE-COLLECT-BEGIN\n{\"files\":[]}\n#KANADE-COLLECT-END\n", ""},                             // another hint's fence
		{"echo #KANADE-CHECK-BEGIN mid-line\n{\"x\":1}", "echo #KANADE-CHECK-BEGIN mid-line\n{\"x\":1}"}, // not at a line start
	}
	for _, tc := range tests {
		if got := wire.FencedPayload(tc.stdout, wire.CheckBlockBegin, wire.CheckBlockEnd); got != tc.want {
			t.Errorf("FencedPayload(%q) = %q, want %q", tc.stdout, got, tc.want)
		}
	}
}
