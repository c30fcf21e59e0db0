package wire_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

// humantime's own test vectors (humantime::parse_duration), plus the forms
// the issue names and the edges of Go's time.Duration.
func TestParseDuration(t *testing.T) {
	const (
		day   = 24 * time.Hour
		week  = 7 * day
		month = 2_630_016 * time.Second
		year  = 31_557_600 * time.Second
	)
	tests := []struct {
		in   string
		want time.Duration
	}{
		// Units, every spelling.
		{"17nsec", 17}, {"17nanos", 17}, {"33ns", 33},
		{"3usec", 3 * time.Microsecond}, {"78us", 78 * time.Microsecond}, {"163µs", 163 * time.Microsecond},
		{"31msec", 31 * time.Millisecond}, {"31millis", 31 * time.Millisecond}, {"6ms", 6 * time.Millisecond},
		{"3000s", 3000 * time.Second}, {"300sec", 300 * time.Second}, {"300secs", 300 * time.Second},
		{"50seconds", 50 * time.Second}, {"1second", time.Second},
		{"100m", 100 * time.Minute}, {"12min", 12 * time.Minute}, {"12mins", 12 * time.Minute},
		{"1minute", time.Minute}, {"7minutes", 7 * time.Minute},
		{"2h", 2 * time.Hour}, {"7hr", 7 * time.Hour}, {"7hrs", 7 * time.Hour}, {"1hour", time.Hour}, {"24hours", day},
		{"1day", day}, {"2days", 2 * day}, {"365d", 365 * day},
		{"1week", week}, {"7weeks", 7 * week}, {"104wks", 104 * week}, {"100wk", 100 * week}, {"52w", 52 * week},
		{"1month", month}, {"3months", 3 * month}, {"12M", 12 * month},
		{"1year", year}, {"7years", 7 * year}, {"15yrs", 15 * year}, {"10yr", 10 * year}, {"17y", 17 * year},
		// Combinations and whitespace.
		{"20 min 17 nsec ", 20*time.Minute + 17}, {"2h 15m", 2*time.Hour + 15*time.Minute},
		{"1h 30m", 90 * time.Minute}, {"1h30m", 90 * time.Minute}, {"1m 30s", 90 * time.Second},
		{"5min", 5 * time.Minute}, {"0s", 0}, {"0ns", 0}, {"  \t30s\n", 30 * time.Second},
		{"1 0s", 10 * time.Second}, // humantime skips whitespace inside a number
		{"1 h", time.Hour}, {"1h1h", 2 * time.Hour}, {"2days 3h", 2*day + 3*time.Hour},
		{"1s 500ms", 1500 * time.Millisecond}, {"999999999ns 1ns", time.Second},
		{"1\u00a0h", time.Hour}, // Unicode whitespace, as Rust's char::is_whitespace
		// Fractions (humantime 2.2+).
		{"1.5h", 90 * time.Minute}, {"4.2s", 4200 * time.Millisecond}, {"0.5ms", 500 * time.Microsecond},
		{"1.s", time.Second}, {"0.000000001s", 1}, {"0.0000000019s", 1}, {"1.5y", year + year/2},
		// Go's forms that humantime shares.
		{"10m", 10 * time.Minute}, {"1500ms", 1500 * time.Millisecond},
		// The largest time.Duration.
		{"9223372036854775807ns", math.MaxInt64},
		{"9223372036s 854775807ns", math.MaxInt64},
		{"292y", 292 * year},
	}
	for _, tt := range tests {
		got, err := wire.ParseDuration(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseDurationErrors(t *testing.T) {
	tests := []struct {
		in, mention string
	}{
		{"", "empty"}, {"   ", "empty"}, {"\r", "empty"},
		{"30", "time unit needed"}, {"10 months 1", "time unit needed"},
		{"10nights", `unknown time unit "nights"`}, {"5 Min", `unknown time unit "Min"`}, {"1H", `unknown time unit "H"`},
		{"222nsec221nanosmsec7s5msec572s", `unknown time unit "nanosmsec"`},
		{"\x00", "expected number"}, {"-1s", "expected number"}, {"+1s", "expected number"}, {"s", "expected number"},
		{".5s", "expected number"}, {"1h -1m", "expected number"}, {"1h m", "expected number"},
		{"1~", "invalid character"}, {"1Nå", "invalid character"}, {"1..5s", "invalid character"}, {"1,5s", "invalid character"},
		{"1h,30m", "invalid character"}, {"1.5.5s", "invalid character"},
		// Too large for humantime or for Go.
		{"100000000000000000000ns", "too large"}, {"100000000000000000000s", "too large"},
		{"10000000000000000000m", "too large"}, {"9223372036854775808ns", "too large"},
		{"9223372036s 854775808ns", "too large"}, {"293y", "too large"}, {"106752d", "too large"},
		{"18446744073709551615ns", "too large"}, {"18446744073709551616ns", "too large"},
		{strings.Repeat("9", 100) + "s", "too large"},
	}
	for _, tt := range tests {
		d, err := wire.ParseDuration(tt.in)
		if err == nil || !errors.Is(err, wire.ErrDuration) || !errors.Is(err, wire.ErrInvalid) || !strings.Contains(err.Error(), tt.mention) {
			t.Errorf("ParseDuration(%q) = %v, %v; want an error mentioning %q", tt.in, d, err, tt.mention)
		}
		if d != 0 {
			t.Errorf("ParseDuration(%q) = %v with an error, want 0", tt.in, d)
		}
	}
	// A huge input gives a short message.
	_, err := wire.ParseDuration(strings.Repeat("x", 10000))
	if err == nil || len(err.Error()) > 300 {
		t.Errorf("error for a huge input: %d bytes", len(err.Error()))
	}
}

// humantime::format_duration's own examples, and a round trip.
func TestFormatDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"}, {-time.Second, "0s"}, {9420 * time.Second, "2h 37m"}, {32 * time.Millisecond, "32ms"},
		{123 * time.Microsecond, "123us"}, {90 * time.Second, "1m 30s"}, {48 * time.Hour, "2days"},
		{24 * time.Hour, "1day"}, {31_557_600 * time.Second, "1year"}, {2 * 2_630_016 * time.Second, "2months"},
		{1500 * time.Millisecond, "1s 500ms"}, {time.Nanosecond, "1ns"},
	}
	for _, tt := range tests {
		if got := wire.FormatDuration(tt.in); got != tt.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, d := range []time.Duration{1, 999, time.Second + 1, 86399 * time.Second, math.MaxInt64, 7*24*time.Hour + 3} {
		s := wire.FormatDuration(d)
		if back, err := wire.ParseDuration(s); err != nil || back != d {
			t.Errorf("ParseDuration(FormatDuration(%d) = %q) = %v, %v", d, s, back, err)
		}
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"0s", "5min", "1h 30m", "2days", "1.5h", "163µs", "9223372036854775807ns", "1 0s", "-1s", "",
		"18446744073709551615s", "1.99999999999999999999y", "1h1h1h1h", "\u00a01\u2003h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := wire.ParseDuration(s)
		if err != nil {
			if d != 0 || !errors.Is(err, wire.ErrInvalid) {
				t.Fatalf("ParseDuration(%q) = %v, %v", s, d, err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v: negative", s, d)
		}
		// What it writes it reads back.
		if back, err := wire.ParseDuration(wire.FormatDuration(d)); err != nil || back != d {
			t.Fatalf("round trip of %v (%q): %v, %v", d, wire.FormatDuration(d), back, err)
		}
	})
}
