package agent

import (
	"strings"
	"testing"

	"github.com/kanade/kanade-agent/wire"
)

func TestBuildCheck(t *testing.T) {
	h := &wire.CheckHint{Name: "x", StatusField: "status", DetailField: "detail", Health: true}
	tests := []struct {
		code           int32
		stdout, stderr string
		status, detail string
	}{
		{0, `{"status":"ok"}`, "", wire.CheckOK, ""},
		{0, `{"status":"fail","detail":["C:","D:"]}`, "", wire.CheckFail, `["C:","D:"]`},
		{0, `{"status":"warn","detail":12.50}`, "", wire.CheckWarn, "12.50"},
		{0, `{"status":"warn","detail":""}`, "", wire.CheckWarn, ""},
		{0, `{"status":"green"}`, "", wire.CheckUnknown, "`status` = \"green\" is not one of ok/warn/fail/unknown"},
		{0, `{"detail":"hi"}`, "", wire.CheckUnknown, "stdout has no `status` field"},
		{0, `[1,2]`, "", wire.CheckUnknown, "check stdout was not a JSON object"},
		{0, `not json`, "", wire.CheckUnknown, "check stdout was not JSON: "},
		{0, "msg\n#KANADE-CHECK-BEGIN\n{\"status\":\"ok\",\"detail\":\"fine\"}\n#KANADE-CHECK-END\n", "", wire.CheckOK, "fine"},
		{-1, `{"status":"ok"}`, "  timeout after 5s \n", wire.CheckUnknown, "check script exited -1: timeout after 5s"},
		{2, ``, "", wire.CheckUnknown, "check script exited 2"},
		{1, ``, strings.Repeat("é", 300), wire.CheckUnknown, "check script exited 1: " + strings.Repeat("é", 200)},
	}
	for _, tc := range tests {
		c := buildCheck(h, tc.code, tc.stdout, tc.stderr)
		if c.Name != "x" || c.Status != tc.status || !strings.HasPrefix(c.Detail, tc.detail) || c.HealthHidden {
			t.Errorf("buildCheck(%d, %q, %q) = %+v, want %s %q", tc.code, tc.stdout, tc.stderr, c, tc.status, tc.detail)
		}
		if tc.status != wire.CheckUnknown && c.Detail != tc.detail {
			t.Errorf("detail %q, want %q", c.Detail, tc.detail)
		}
	}
}

func TestParseBundlesAndLabels(t *testing.T) {
	b, err := parseBundles(`{"bundles":[{"label":"2026_01","files":["/a"," ","/b"]},{"label":7,"files":[]},{"files":["/c"]}]}`, "files")
	if err != nil || len(b) != 3 || *b[0].label != "2026_01" || strings.Join(b[0].files, ",") != "/a,/b" || b[1].label != nil || b[2].label != nil {
		t.Fatalf("parseBundles: %+v, %v", b, err)
	}
	if b, err := parseBundles(`{"logs":["/x"],"bundles":null}`, "logs"); err != nil || len(b) != 1 || b[0].files[0] != "/x" {
		t.Fatalf("single form: %+v, %v", b, err)
	}
	for doc, want := range map[string]string{
		`{"files":"x"}`:    "'files' is not an array",
		`{"files":[1]}`:    "'files' entry is not a string",
		`{}`:               "stdout JSON has no 'files'",
		`nope`:             "stdout is not valid JSON",
		`{"bundles":[{}]}`: "no 'bundles[0].files'",
	} {
		if _, err := parseBundles(doc, "files"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseBundles(%s) err %v, want %q", doc, err, want)
		}
	}
	if got := sanitizeLabel("big day/ü_1"); got != "big-day---1" {
		t.Errorf("sanitizeLabel = %q", got)
	}
	used := map[string]bool{}
	l := func(s string) *string { return &s }
	var got []string
	for _, in := range []*string{nil, l("a"), nil, l("a"), l("bundle-2")} {
		if o := dedupLabel(used, in); o == nil {
			got = append(got, "<nil>")
		} else {
			got = append(got, *o)
		}
	}
	if strings.Join(got, ",") != "<nil>,a,bundle-2,a-2,bundle-2-2" {
		t.Errorf("dedupLabel: %v", got)
	}
	if got := collectResultJSON(nil); got != `{"bundles":[],"ok":false}` {
		t.Errorf("collectResultJSON(nil) = %s", got)
	}
}
