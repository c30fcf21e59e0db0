package subject_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kanade/kanade-agent/subject"
)

func TestValidToken(t *testing.T) {
	tests := []struct {
		name   string
		tok    string
		reason string // empty: valid
	}{
		{"simple", "desktop-01", ""},
		{"uuid", "0f8fad5b-d9cb-469f-a165-70867728950e", ""},
		{"punctuation", "a_b-c=d/e\\f@g#h+i~j", ""},
		{"unicode letters", "経理部", ""},
		{"unicode mixed", "pc-müller-Ωμέγα", ""},
		{"emoji", "pc-🖥", ""},
		{"replacement char as such", "a\uFFFDb", ""},
		{"one byte", "x", ""},
		{"128 bytes", strings.Repeat("a", 128), ""},
		{"128 bytes multibyte", strings.Repeat("é", 64), ""},
		{"empty", "", "empty"},
		{"129 bytes", strings.Repeat("a", 129), "129 bytes, over 128"},
		{"129 bytes multibyte", strings.Repeat("é", 64) + "a", "129 bytes, over 128"},
		{"dot", "a.b", "'.'"},
		{"leading dot", ".a", "'.'"},
		{"only dot", ".", "'.'"},
		{"star", "a*", "'*'"},
		{"only star", "*", "'*'"},
		{"gt", ">", "'>'"},
		{"gt inside", "a>b", "'>'"},
		{"space", "a b", "whitespace"},
		{"tab", "a\tb", "whitespace"},
		{"newline", "a\nb", "whitespace"},
		{"carriage return", "a\rb", "whitespace"},
		{"vertical tab", "a\vb", "whitespace"},
		{"form feed", "a\fb", "whitespace"},
		{"no-break space", "a\u00a0b", "whitespace"},
		{"ideographic space", "a\u3000b", "whitespace"},
		{"line separator", "a\u2028b", "whitespace"},
		{"NEL", "a\u0085b", "whitespace"},
		{"NUL", "a\x00b", "control character"},
		{"only NUL", "\x00", "control character"},
		{"bell", "a\ab", "control character"},
		{"escape", "a\x1bb", "control character"},
		{"DEL", "a\x7fb", "control character"},
		{"C1 control", "a\u009bb", "control character"},
		{"invalid UTF-8", "a\xffb", "not valid UTF-8"},
		{"truncated UTF-8", "\xe7\xb5", "not valid UTF-8"},
		{"overlong encoding of dot", "a\xc0\xaeb", "not valid UTF-8"},
		{"surrogate half", "a\xed\xa0\x80b", "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := subject.ValidToken("pc_id", tt.tok)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("ValidToken(%q) = %v, want nil", tt.tok, err)
				}
				return
			}
			checkTokenError(t, err, "pc_id", tt.tok)
			var te *subject.TokenError
			errors.As(err, &te)
			if !strings.Contains(te.Reason, tt.reason) {
				t.Errorf("reason %q does not mention %q", te.Reason, tt.reason)
			}
		})
	}
}

// checkTokenError fails t unless err is a *TokenError for tok with the given
// kind, that unwraps to ErrInvalidToken and whose message names the kind.
func checkTokenError(t *testing.T, err error, kind, tok string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error for %s %q", kind, tok)
	}
	if !errors.Is(err, subject.ErrInvalidToken) {
		t.Errorf("error %v does not wrap ErrInvalidToken", err)
	}
	var te *subject.TokenError
	if !errors.As(err, &te) {
		t.Fatalf("error %T %v is not a *TokenError", err, err)
	}
	if te.Kind != kind {
		t.Errorf("Kind = %q, want %q", te.Kind, kind)
	}
	if te.Token != tok {
		t.Errorf("Token = %q, want %q", te.Token, tok)
	}
	if te.Reason == "" {
		t.Error("empty Reason")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "subject: invalid "+kind+" ") {
		t.Errorf("message %q does not start with %q", msg, "subject: invalid "+kind)
	}
	if !strings.HasSuffix(msg, te.Reason) {
		t.Errorf("message %q does not end with the reason %q", msg, te.Reason)
	}
}

func TestTokenErrorMessage(t *testing.T) {
	long := strings.Repeat("x", 200)
	err := subject.ValidToken("request_id", long)
	msg := err.Error()
	if strings.Contains(msg, long) || !strings.Contains(msg, `"`+strings.Repeat("x", 40)+`..."`) {
		t.Errorf("long token not shortened: %s", msg)
	}
	if !strings.Contains(msg, "200 bytes, over 128") {
		t.Errorf("message %q does not give the length", msg)
	}
	// Control characters are quoted, not printed raw.
	msg = subject.ValidToken("group", "a\nb\x00").Error()
	if strings.ContainsAny(msg, "\n\x00") || !strings.Contains(msg, `"a\nb\x00"`) {
		t.Errorf("message %q prints control characters raw", msg)
	}
}

// builders lists every builder with one valid call, its subject, and the kinds
// of its token arguments in order.
var builders = []struct {
	name  string
	build func(toks ...string) (string, error)
	args  []string
	kinds []string
	want  string
}{
	{"CommandsGroup", one(subject.CommandsGroup), []string{"tokyo-office"}, []string{"group"}, "commands.group.tokyo-office"},
	{"CommandsPC", one(subject.CommandsPC), []string{"desktop-01"}, []string{"pc_id"}, "commands.pc.desktop-01"},
	{"Kill", one(subject.Kill), []string{"exec-42"}, []string{"exec_id"}, "kill.exec-42"},
	{"Ping", one(subject.Ping), []string{"desktop-01"}, []string{"pc_id"}, "agents.desktop-01.ping"},
	{"LogsFetch", one(subject.LogsFetch), []string{"desktop-01"}, []string{"pc_id"}, "logs.fetch.desktop-01"},
	{"Result", one(subject.Result), []string{"req-01JQ5W0Z"}, []string{"request_id"}, "results.req-01JQ5W0Z"},
	{"EventStarted", two(subject.EventStarted), []string{"exec-42", "desktop-01"}, []string{"exec_id", "pc_id"}, "events.started.exec-42.desktop-01"},
	{"Obs", one(subject.Obs), []string{"desktop-01"}, []string{"pc_id"}, "obs.desktop-01"},
	{"Inventory", two(subject.Inventory), []string{"desktop-01", "hw"}, []string{"pc_id", "category"}, "inventory.desktop-01.hw"},
	{"Heartbeat", one(subject.Heartbeat), []string{"desktop-01"}, []string{"pc_id"}, "heartbeat.desktop-01"},
	{"HostPerf", one(subject.HostPerf), []string{"desktop-01"}, []string{"pc_id"}, "host_perf.desktop-01"},
	{"ExecConsumer", one(subject.ExecConsumer), []string{"desktop-01"}, []string{"pc_id"}, "agent-desktop-01"},
	{"ConfigGroupKey", one(subject.ConfigGroupKey), []string{"tokyo-office"}, []string{"group"}, "groups.tokyo-office"},
	{"ConfigPCKey", one(subject.ConfigPCKey), []string{"desktop-01"}, []string{"pc_id"}, "pcs.desktop-01"},
	{"ResultOutputKey stdout", func(t ...string) (string, error) { return subject.ResultOutputKey(t[0], "stdout") },
		[]string{"req-01JQ5W0Z"}, []string{"request_id"}, "req-01JQ5W0Z/stdout"},
	{"ResultOutputKey stderr", func(t ...string) (string, error) { return subject.ResultOutputKey(t[0], "stderr") },
		[]string{"req-01JQ5W0Z"}, []string{"request_id"}, "req-01JQ5W0Z/stderr"},
}

func one(f func(string) (string, error)) func(...string) (string, error) {
	return func(t ...string) (string, error) { return f(t[0]) }
}

func two(f func(string, string) (string, error)) func(...string) (string, error) {
	return func(t ...string) (string, error) { return f(t[0], t[1]) }
}

// badTokens are refused by every builder, for every argument.
var badTokens = []string{
	"", "a.b", "*", ">", "a b", "a\tb", "a\nb", "a\x00b", "a\x1fb", "\xff", strings.Repeat("a", 129),
}

func TestBuilders(t *testing.T) {
	for _, b := range builders {
		t.Run(b.name, func(t *testing.T) {
			got, err := b.build(b.args...)
			if err != nil || got != b.want {
				t.Fatalf("got %q, %v; want %q", got, err, b.want)
			}
			// Unicode and the longest token are fine.
			for _, ok := range []string{"経理部", strings.Repeat("z", subject.MaxTokenLen)} {
				args := append([]string(nil), b.args...)
				args[0] = ok
				if got, err := b.build(args...); err != nil || !strings.Contains(got, ok) {
					t.Errorf("token %q: got %q, %v", ok, got, err)
				}
			}
			for i := range b.args {
				for _, bad := range badTokens {
					args := append([]string(nil), b.args...)
					args[i] = bad
					got, err := b.build(args...)
					if got != "" {
						t.Errorf("arg %d %q: returned subject %q with the error", i, bad, got)
					}
					checkTokenError(t, err, b.kinds[i], bad)
				}
			}
		})
	}
}

// TestBuildersTokenCount checks that each subject has exactly the expected
// number of dot-separated tokens, so a token can never add or remove one.
func TestBuildersTokenCount(t *testing.T) {
	want := map[string]int{
		"CommandsGroup": 3, "CommandsPC": 3, "Kill": 2, "Ping": 3, "LogsFetch": 3, "Result": 2,
		"EventStarted": 4, "Obs": 2, "Inventory": 3, "Heartbeat": 2, "HostPerf": 2,
	}
	for _, b := range builders {
		n, ok := want[b.name]
		if !ok {
			continue
		}
		s, err := b.build(b.args...)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(strings.Split(s, ".")); got != n {
			t.Errorf("%s: %q has %d tokens, want %d", b.name, s, got, n)
		}
	}
}

func TestResultOutputKeyStream(t *testing.T) {
	for _, stream := range []string{"", "stdin", "STDOUT", "stdout ", "out"} {
		got, err := subject.ResultOutputKey("req-1", stream)
		if got != "" {
			t.Errorf("stream %q: returned %q with the error", stream, got)
		}
		checkTokenError(t, err, "stream", stream)
	}
}

func TestExecConsumerRefusesPathSeparators(t *testing.T) {
	// JetStream refuses consumer names with '/' or '\', though subjects allow them.
	for _, pc := range []string{"a/b", `a\b`, "/", `\`} {
		got, err := subject.ExecConsumer(pc)
		if got != "" {
			t.Errorf("%q: returned %q with the error", pc, got)
		}
		checkTokenError(t, err, "pc_id", pc)
	}
	// The subject builders still accept them.
	if s, err := subject.CommandsPC("a/b"); err != nil || s != "commands.pc.a/b" {
		t.Errorf("CommandsPC(a/b) = %q, %v", s, err)
	}
}

func TestStaticNames(t *testing.T) {
	tests := []struct{ got, want string }{
		{subject.CommandsAll, "commands.all"},
		{subject.CommandsWildcard, "commands.>"},
		{subject.ResultsWildcard, "results.>"},
		{subject.EventsWildcard, "events.>"},
		{subject.ObsWildcard, "obs.>"},
		{subject.InventoryAll, "inventory.>"},
		{subject.HeartbeatAll, "heartbeat.*"},
		{subject.HostPerfAll, "host_perf.*"},
		{subject.EventsStartedAll, "events.started.>"},
		{subject.StreamExec, "EXEC"},
		{subject.StreamResults, "RESULTS"},
		{subject.StreamEvents, "EVENTS"},
		{subject.StreamObs, "OBS_EVENTS"},
		{subject.StreamInventory, "INVENTORY"},
		{subject.BucketConfig, "agent_config"},
		{subject.BucketGroups, "agent_groups"},
		{subject.BucketGroupsDerived, "agent_groups_derived"},
		{subject.BucketScriptCurrent, "script_current"},
		{subject.BucketScriptStatus, "script_status"},
		{subject.ConfigGlobalKey, "global"},
		{subject.ConfigGroupsPrefix, "groups."},
		{subject.ConfigPCsPrefix, "pcs."},
		{subject.ObjectReleases, "agent_releases"},
		{subject.ObjectResultOutput, "result_output"},
		{subject.ObjectScripts, "scripts"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	// The config key builders agree with the prefixes.
	if k, _ := subject.ConfigGroupKey("g"); k != subject.ConfigGroupsPrefix+"g" {
		t.Errorf("ConfigGroupKey = %q", k)
	}
	if k, _ := subject.ConfigPCKey("p"); k != subject.ConfigPCsPrefix+"p" {
		t.Errorf("ConfigPCKey = %q", k)
	}
}

func TestSanitizePcID(t *testing.T) {
	tests := []struct {
		host, want string
	}{
		{"DESKTOP-01", "desktop-01"},
		{"desktop-01", "desktop-01"},
		{"host.corp.example.com", "host-corp-example-com"},
		{"My Laptop", "my-laptop"},
		{" padded\t", "-padded-"},
		{"a*b>c", "a-b-c"},
		{"line\nbreak\x00nul", "line-break-nul"},
		{`back\slash/slash`, "back-slash-slash"},
		{"ÜBER-PC", "ufcber-pc"},
		{"経理部-PC", "u7d4cu7406u90e8-pc"},
		{"a_b=c@d#e", "a_b=c-d-e"},
		{"bad\xffutf8", "bad-utf8"},
		{"", "unknown"},
		{".", "-"},
		{strings.Repeat("A", 200), strings.Repeat("a", 128)},
		{strings.Repeat("é", 100), strings.Repeat("ue9", 42)},
		// A rune whose spelling would straddle the limit is dropped whole.
		{"ab" + strings.Repeat("é", 100), "ab" + strings.Repeat("ue9", 42)},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			got := subject.SanitizePcID(tt.host)
			if got != tt.want {
				t.Errorf("SanitizePcID(%q) = %q, want %q", tt.host, got, tt.want)
			}
			checkPcID(t, tt.host, got)
		})
	}
}

// checkPcID checks the properties every SanitizePcID result must have.
func checkPcID(t *testing.T, host, got string) {
	t.Helper()
	if err := subject.ValidPcID(got); err != nil {
		t.Fatalf("SanitizePcID(%q) = %q, not a valid pc id: %v", host, got, err)
	}
	if _, err := subject.ExecConsumer(got); err != nil {
		t.Fatalf("SanitizePcID(%q) = %q, not a valid consumer name: %v", host, got, err)
	}
	if !utf8.ValidString(got) || len(got) > subject.MaxTokenLen {
		t.Fatalf("SanitizePcID(%q) = %q", host, got)
	}
	if again := subject.SanitizePcID(got); again != got {
		t.Fatalf("SanitizePcID not idempotent: %q → %q → %q", host, got, again)
	}
}

func TestValidPcID(t *testing.T) {
	for _, id := range []string{"desktop-01", "PC_7", "a=b", strings.Repeat("x", 128)} {
		if err := subject.ValidPcID(id); err != nil {
			t.Errorf("ValidPcID(%q) = %v", id, err)
		}
	}
	for id, reason := range map[string]string{
		"":                       "empty",
		"a.b":                    "'.'",
		"a b":                    "whitespace",
		"経理部":                    "KV key",
		"a@b":                    "KV key",
		"a/b":                    "KV key",
		strings.Repeat("x", 129): "over 128",
	} {
		err := subject.ValidPcID(id)
		checkTokenError(t, err, "pc_id", id)
		if !strings.Contains(err.Error(), reason) {
			t.Errorf("ValidPcID(%q) = %v, want it to mention %q", id, err, reason)
		}
	}
}

func FuzzSanitizePcID(f *testing.F) {
	for _, s := range []string{"DESKTOP-01", "host.corp", "", " ", "\xff\xfe", "a\u0130b", "ǅ", "\u2028",
		strings.Repeat("é", 70), strings.Repeat("\xff", 50), "İstanbul", "ΣΑΣ", "\U0010FFFF"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		checkPcID(t, host, subject.SanitizePcID(host))
	})
}

// FuzzValidToken checks that an accepted token never changes a subject's
// structure and that the builders agree with ValidToken.
func FuzzValidToken(f *testing.F) {
	for _, s := range []string{"a", "a.b", "", "経理部", "\x00", strings.Repeat("a", 129)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		err := subject.ValidToken("pc_id", tok)
		s, berr := subject.Heartbeat(tok)
		if (err == nil) != (berr == nil) {
			t.Fatalf("ValidToken %v but Heartbeat %v", err, berr)
		}
		if err != nil {
			if !errors.Is(err, subject.ErrInvalidToken) {
				t.Fatalf("%v does not wrap ErrInvalidToken", err)
			}
			return
		}
		if strings.ContainsAny(tok, ".*> \t\r\n\x00") || len(tok) > subject.MaxTokenLen || !utf8.ValidString(tok) {
			t.Fatalf("ValidToken accepted %q", tok)
		}
		if parts := strings.Split(s, "."); len(parts) != 2 || parts[1] != tok {
			t.Fatalf("Heartbeat(%q) = %q", tok, s)
		}
	})
}
