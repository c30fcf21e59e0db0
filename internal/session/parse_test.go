package session

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseLine(t *testing.T) {
	for _, c := range []struct {
		in    string
		ms    uint64
		known bool
		bad   bool
	}{
		{in: `{"idle_ms":2500}`, ms: 2500, known: true},
		{in: `  {"idle_ms":0}  `, ms: 0, known: true},
		{in: `{"idle_ms":18446744073709551615}`, ms: 1<<64 - 1, known: true},
		{in: `{"idle_ms":2500,"x":[1]}`, ms: 2500, known: true},
		{in: `{"idle_ms":null}`},
		{in: `{"idle_ms":18446744073709551616}`, bad: true},
		{in: `{"idle_ms":-1}`, bad: true},
		{in: `{"idle_ms":1.5}`, bad: true},
		{in: `{"idle_ms":"1"}`, bad: true},
		{in: `{"other":1}`, bad: true},
		{in: `[1]`, bad: true},
		{in: `not json`, bad: true},
		{in: ``, bad: true},
		{in: `{"idle_ms":1`, bad: true},
	} {
		ms, known, err := parseLine([]byte(c.in))
		if (err != nil) != c.bad || ms != c.ms || known != c.known {
			t.Errorf("parseLine(%q) = %d, %v, %v", c.in, ms, known, err)
		}
	}
}

func TestReadLinesBounded(t *testing.T) {
	in := "a\n" + strings.Repeat("x", 100) + "\nb\r\n" + strings.Repeat("y", 10) + "\nc"
	var got []string
	err := readLines(strings.NewReader(in), 10, func(l []byte, err error) {
		if errors.Is(err, ErrLineTooLong) {
			got = append(got, "LONG")
			return
		}
		got = append(got, string(l))
	})
	if err != nil {
		t.Fatal(err)
	}
	// A line of exactly the bound is kept; a longer one is reported once.
	if want := "a,LONG,b," + strings.Repeat("y", 10) + ",c"; strings.Join(got, ",") != want {
		t.Errorf("lines %q, want %q", strings.Join(got, ","), want)
	}
}

func TestIsHelper(t *testing.T) {
	for _, c := range []struct {
		args []string
		want bool
	}{
		{[]string{"--session-agent"}, true},
		{[]string{"-session-agent"}, true},
		{[]string{"--session-agent-interval=1s", "--session-agent=true"}, true},
		{[]string{"run", "--pc-id", "x"}, false},
		{[]string{"--session-agent-interval=1s"}, false},
		{nil, false},
	} {
		if got := IsHelper(c.args); got != c.want {
			t.Errorf("IsHelper(%q) = %v", c.args, got)
		}
	}
}

func TestHelperInterval(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == IntervalEnv {
				return v
			}
			return ""
		}
	}
	for _, c := range []struct {
		args []string
		env  string
		want time.Duration
		bad  bool
	}{
		{args: []string{HelperFlag}, want: DefaultSample},
		{args: []string{HelperFlag, IntervalFlag + "=2s"}, env: "5s", want: 2 * time.Second},
		{args: []string{HelperFlag}, env: "5s", want: 5 * time.Second},
		{args: []string{HelperFlag}, env: "five", bad: true},
		{args: []string{HelperFlag, IntervalFlag + "=1ns"}, bad: true},
		{args: []string{HelperFlag, "--nope"}, bad: true},
		{args: []string{HelperFlag, "extra"}, bad: true},
	} {
		got, err := helperInterval(c.args, env(c.env))
		if (err != nil) != c.bad || (!c.bad && got != c.want) {
			t.Errorf("helperInterval(%q, env %q) = %v, %v", c.args, c.env, got, err)
		}
	}
}

func TestFromWTS(t *testing.T) {
	for ev, want := range map[uint32]string{1: "", 2: "", 3: "", 4: "", 5: KindLogon, 6: KindLogoff, 7: KindLock, 8: KindUnlock, 9: "", 10: "", 11: ""} {
		if c := FromWTS(ev, 4); c.Kind != want || c.Session != 4 {
			t.Errorf("FromWTS(%d, 4) = %+v, want kind %q", ev, c, want)
		}
	}
}
