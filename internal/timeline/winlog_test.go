package timeline

import (
	"embed"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// mapped lists every fixture of testdata that a row maps, with what it
// must become. Every row of Rows has at least one.
var mapped = []struct {
	file, kind, source, recordID, at, payload string
}{
	{"system-7001-winlogon.xml", "logon", "winlog:System", "100101", "2026-12-02T08:01:02.1234567Z",
		`{"session_id":1,"sid":"S-1-5-21-1111111111-2222222222-3333333333-1001","user":"user-1001"}`},
	{"system-7002-winlogon.xml", "logoff", "winlog:System", "100190", "2026-12-02T11:30:00.0000001Z",
		`{"session_id":1,"sid":"S-1-5-21-1111111111-2222222222-3333333333-1001","user":"user-1001"}`},
	{"security-4800.xml", "lock", "winlog:Security", "55001", "2026-12-02T09:15:00.5Z", `{"session_id":1,"user":"alice"}`},
	{"security-4801.xml", "unlock", "winlog:Security", "55007", "2026-12-02T09:20:10Z", `{"session_id":1,"user":"alice"}`},
	{"system-12-kernel-general.xml", "boot", "winlog:System", "100001", "2026-12-02T07:59:58.5Z", `null`},
	{"system-13-kernel-general.xml", "shutdown", "winlog:System", "100201", "2026-12-02T11:59:00Z", `null`},
	{"system-41-kernel-power.xml", "unexpected_shutdown", "winlog:System", "100002", "2026-12-02T07:59:59Z", `null`},
	{"system-42-kernel-power.xml", "sleep", "winlog:System", "100150", "2026-12-02T10:00:00Z", `null`},
	{"system-107-kernel-power.xml", "resume", "winlog:System", "100160", "2026-12-02T10:20:00Z", `null`},
	{"system-506-kernel-power.xml", "sleep", "winlog:System", "100170", "2026-12-02T10:40:00Z", `{"standby":"modern"}`},
	{"system-507-kernel-power.xml", "resume", "winlog:System", "100171", "2026-12-02T10:50:00Z", `{"standby":"modern"}`},
	{"system-27-kernel-boot-hibernate.xml", "resume", "winlog:System", "100165", "2026-12-02T10:31:00Z", `{"from":"hibernate"}`},
	{"system-1-power-troubleshooter.xml", "wake_detail", "winlog:System", "100161", "2026-12-02T10:20:05Z",
		`{"sleep_start":"2026-12-02T10:00:01.1000000Z","wake_source":"Intel(R) Ethernet Connection","wake_time":"2026-12-02T10:19:58.2000000Z"}`},
	{"system-1-power-troubleshooter-no-text.xml", "wake_detail", "winlog:System", "100181", "2026-12-02T11:05:00Z",
		`{"sleep_start":"2026-12-02T11:00:10.0000000Z","wake_source":"0","wake_time":"2026-12-02T11:04:50.0000000Z"}`},
	{"system-6005-eventlog.xml", "log_service_started", "winlog:System", "100010", "2026-12-02T08:00:05Z", `null`},
	{"system-6006-eventlog.xml", "log_service_stopped", "winlog:System", "100202", "2026-12-02T11:59:05Z", `null`},
}

// skipped are fixtures of mapped ids that produce no event: they are
// upstream's deliberate skips (Kernel-Boot 27 other than a hibernate
// resume, already covered by boot) and events of other providers or ids.
var skipped = []string{
	"system-27-kernel-boot-cold.xml",
	"system-27-kernel-boot-fast.xml",
	"ignored-system-7001-scm.xml",
	"ignored-system-109-kernel-power.xml",
	"ignored-system-12-other-provider.xml",
}

func fakeResolve(sid string) string {
	return "user-" + sid[strings.LastIndexByte(sid, '-')+1:]
}

// fixtures is testdata, embedded: under Wine the test binary does not run
// in the package directory.
//
//go:embed testdata/*.xml
var fixtures embed.FS

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := fixtures.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeMappedFixtures(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range mapped {
		t.Run(c.file, func(t *testing.T) {
			ev, err := DecodeEventXML(readFixture(t, c.file))
			if err != nil {
				t.Fatal(err)
			}
			row, payload, ok := MapEvent(ev, fakeResolve)
			if !ok {
				t.Fatalf("not mapped: %+v", ev)
			}
			seen[row.Key()] = true
			if row.Kind != c.kind || "winlog:"+row.Channel != c.source {
				t.Errorf("kind %s source winlog:%s, want %s %s", row.Kind, row.Channel, c.kind, c.source)
			}
			if got := ev.RecordID; got == 0 || c.recordID != strconv.FormatUint(got, 10) {
				t.Errorf("record id %d, want %s", got, c.recordID)
			}
			want, _ := time.Parse(time.RFC3339Nano, c.at)
			if !ev.At.Equal(want) || ev.At.Location() != time.UTC {
				t.Errorf("at %v, want %v UTC", ev.At, want)
			}
			if string(payload) != c.payload {
				t.Errorf("payload\n got %s\nwant %s", payload, c.payload)
			}
		})
	}
	for _, r := range Rows {
		if !seen[r.Key()] {
			t.Errorf("row %s has no fixture", r.Key())
		}
	}
}

func TestDecodeSkippedFixtures(t *testing.T) {
	for _, f := range skipped {
		t.Run(f, func(t *testing.T) {
			ev, err := DecodeEventXML(readFixture(t, f))
			if err != nil {
				t.Fatal(err)
			}
			if row, p, ok := MapEvent(ev, fakeResolve); ok {
				t.Fatalf("mapped to %s with payload %s, want nothing", row.Key(), p)
			}
		})
	}
}

// TestLogonPayloadFallbacks: the raw SID when no resolver is given,
// positional Data for a classic provider's shape, nulls when absent.
func TestLogonPayloadFallbacks(t *testing.T) {
	const head = `<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><Provider Name='Microsoft-Windows-Winlogon'/><EventID>7001</EventID><TimeCreated SystemTime='2026-12-02T08:00:00Z'/><EventRecordID>7</EventRecordID><Channel>System</Channel></System>`
	for _, c := range []struct{ data, want string }{
		{`<EventData><Data Name='TSId'>2</Data><Data Name='UserSid'>S-1-5-18</Data></EventData>`, `{"session_id":2,"sid":"S-1-5-18","user":"S-1-5-18"}`},
		{`<EventData><Data>3</Data><Data>S-1-5-21-1-2-3-500</Data></EventData>`, `{"session_id":3,"sid":"S-1-5-21-1-2-3-500","user":"S-1-5-21-1-2-3-500"}`},
		{`<EventData><Data Name='TSId'>x</Data></EventData>`, `{"session_id":null,"sid":null,"user":null}`},
		{``, `{"session_id":null,"sid":null,"user":null}`},
	} {
		ev, err := DecodeEventXML([]byte(head + c.data + `</Event>`))
		if err != nil {
			t.Fatal(err)
		}
		_, p, ok := MapEvent(ev, nil)
		if !ok || string(p) != c.want {
			t.Errorf("%s: payload %s (%v), want %s", c.data, p, ok, c.want)
		}
	}
}

func TestDecodeMalformed(t *testing.T) {
	const ns = `xmlns='http://schemas.microsoft.com/win/2004/08/events/event'`
	for name, doc := range map[string]string{
		"empty":          ``,
		"not xml":        `not xml at all`,
		"truncated":      `<Event ` + ns + `><System><EventID>12</EventID>`,
		"other root":     `<Events><System/></Events>`,
		"no system":      `<Event ` + ns + `></Event>`,
		"no record id":   `<Event ` + ns + `><System><EventID>12</EventID><TimeCreated SystemTime='2026-12-02T08:00:00Z'/></System></Event>`,
		"bad record id":  `<Event ` + ns + `><System><EventID>12</EventID><TimeCreated SystemTime='2026-12-02T08:00:00Z'/><EventRecordID>-1</EventRecordID></System></Event>`,
		"no time":        `<Event ` + ns + `><System><EventID>12</EventID><EventRecordID>5</EventRecordID></System></Event>`,
		"bad time":       `<Event ` + ns + `><System><EventID>12</EventID><TimeCreated SystemTime='yesterday'/><EventRecordID>5</EventRecordID></System></Event>`,
		"no event id":    `<Event ` + ns + `><System><TimeCreated SystemTime='2026-12-02T08:00:00Z'/><EventRecordID>5</EventRecordID></System></Event>`,
		"huge event id":  `<Event ` + ns + `><System><EventID>70000</EventID><TimeCreated SystemTime='2026-12-02T08:00:00Z'/><EventRecordID>5</EventRecordID></System></Event>`,
		"bad entity":     `<Event ` + ns + `><System><EventID>&bogus;</EventID></System></Event>`,
		"too large":      `<Event>` + strings.Repeat(" ", maxEventXML) + `</Event>`,
		"mismatched tag": `<Event ` + ns + `><System></Event></System>`,
	} {
		t.Run(name, func(t *testing.T) {
			ev, err := DecodeEventXML([]byte(doc))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeEventXML = %+v, %v; want ErrMalformed", ev, err)
			}
		})
	}
}

func TestRowQuery(t *testing.T) {
	since := time.Date(2026, 6, 26, 0, 0, 0, 0, time.UTC)
	if q, want := Rows[0].Query(since, 0), "*[System[Provider[@Name='Microsoft-Windows-Winlogon'] and (EventID=7001) and TimeCreated[@SystemTime>='2026-06-26T00:00:00.000Z']]]"; q != want {
		t.Errorf("query\n got %s\nwant %s", q, want)
	}
	if q, want := Rows[13].Query(since.Add(1500*time.Millisecond), 41), "*[System[(EventID=6005) and TimeCreated[@SystemTime>='2026-06-26T00:00:01.500Z'] and (EventRecordID>41)]]"; q != want {
		t.Errorf("query\n got %s\nwant %s", q, want)
	}
	keys := map[string]bool{}
	for _, r := range Rows {
		if keys[r.Key()] {
			t.Errorf("duplicate key %s", r.Key())
		}
		keys[r.Key()] = true
	}
	if k := Rows[2].Key(); k != "Security::4800:lock" {
		t.Errorf("key %s", k)
	}
}

func FuzzDecodeEventXML(f *testing.F) {
	ents, _ := fixtures.ReadDir("testdata")
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".xml") {
			f.Add(readFixture(f, e.Name()))
		}
	}
	f.Add([]byte(`<Event><System><EventID>1</EventID></System></Event>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		ev, err := DecodeEventXML(doc)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		MapEvent(ev, fakeResolve)
		MapEvent(ev, nil)
	})
}
