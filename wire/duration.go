package wire

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Lengths of the humantime units that are not exact in Go's time package.
const (
	humanMonth = 2_630_016 * time.Second  // 30.44 days.
	humanYear  = 31_557_600 * time.Second // 365.25 days.
)

// humanUnits maps every unit spelling of the humantime grammar to its length.
var humanUnits = map[string]time.Duration{
	"nanos": time.Nanosecond, "nsec": time.Nanosecond, "ns": time.Nanosecond,
	"usec": time.Microsecond, "us": time.Microsecond, "µs": time.Microsecond,
	"millis": time.Millisecond, "msec": time.Millisecond, "ms": time.Millisecond,
	"seconds": time.Second, "second": time.Second, "secs": time.Second, "sec": time.Second, "s": time.Second,
	"minutes": time.Minute, "minute": time.Minute, "min": time.Minute, "mins": time.Minute, "m": time.Minute,
	"hours": time.Hour, "hour": time.Hour, "hr": time.Hour, "hrs": time.Hour, "h": time.Hour,
	"days": 24 * time.Hour, "day": 24 * time.Hour, "d": 24 * time.Hour,
	"weeks": 7 * 24 * time.Hour, "week": 7 * 24 * time.Hour, "wk": 7 * 24 * time.Hour, "wks": 7 * 24 * time.Hour, "w": 7 * 24 * time.Hour,
	"months": humanMonth, "month": humanMonth, "M": humanMonth,
	"years": humanYear, "year": humanYear, "yr": humanYear, "yrs": humanYear, "y": humanYear,
}

// ParseDuration parses a duration written in the grammar of the Rust
// humantime crate (humantime::parse_duration), which upstream kanade uses
// for every duration on the wire: staleness.max_cache_age and the
// ConfigScope durations.
//
// A duration is one or more spans, each an unsigned integer and a unit,
// optionally separated by whitespace: "0s", "30s", "5min", "1h 30m",
// "1h30m", "2days", "1 week 2 days". Units (case-sensitive):
//
//	ns, nsec, nanos                   nanoseconds
//	us, usec, µs                      microseconds
//	ms, msec, millis                  milliseconds
//	s, sec, secs, second, seconds
//	m, min, mins, minute, minutes
//	h, hr, hrs, hour, hours
//	d, day, days
//	w, wk, wks, week, weeks
//	M, month, months                  30.44 days
//	y, yr, yrs, year, years           365.25 days
//
// As in humantime, whitespace may appear inside a number ("1 0s" is ten
// seconds), a number needs a unit ("30" is an error), and there is no sign.
// A number may carry a decimal fraction ("1.5h", "4.2s", as humantime 2.2
// and later accept), truncated to the nanosecond. Go's own forms that
// humantime also accepts ("10m", "1h30m") mean the same; Go-only forms such
// as "-1s", "+1s" or "1.5" without a unit are rejected.
//
// Errors wrap [ErrDuration] (and so [ErrInvalid]): an empty string, an
// unknown unit, a missing number or unit, and any value above the largest
// time.Duration (about 292 years), which Go cannot represent even where
// humantime could. ParseDuration never panics.
func ParseDuration(s string) (time.Duration, error) {
	d, err := parseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%w %q: %s", ErrDuration, truncateForError(s), err.Error())
	}
	return d, nil
}

// parseDuration is ParseDuration with the bare reason as its error.
func parseDuration(s string) (time.Duration, error) {
	p := durParser{src: s}
	return p.parse()
}

var (
	errDurEmpty    = errors.New("value was empty")
	errDurOverflow = errors.New("number is too large")
)

type durParser struct {
	src   string
	pos   int
	total time.Duration
}

// next returns the rune at pos and advances; ok is false at the end.
func (p *durParser) next() (r rune, ok bool) {
	if p.pos >= len(p.src) {
		return 0, false
	}
	r, n := utf8.DecodeRuneInString(p.src[p.pos:])
	p.pos += n
	return r, true
}

func isUnitRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == 'µ'
}

// firstDigit skips whitespace and returns the digit that starts a span;
// ok is false at the end of the input.
func (p *durParser) firstDigit() (digit uint64, ok bool, err error) {
	off := p.pos
	for {
		r, more := p.next()
		if !more {
			return 0, false, nil
		}
		switch {
		case r >= '0' && r <= '9':
			return uint64(r - '0'), true, nil
		case unicode.IsSpace(r):
		default:
			return 0, false, fmt.Errorf("expected number at %d", off)
		}
	}
}

func (p *durParser) parse() (time.Duration, error) {
	n, ok, err := p.firstDigit()
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, errDurEmpty
	}
	for {
		// The rest of the number: digits, whitespace, one decimal point.
		var frac, fracScale uint64 = 0, 1
		inFrac := false
		start := -1
		for {
			off := p.pos
			r, more := p.next()
			if !more {
				break
			}
			switch {
			case r >= '0' && r <= '9':
				if inFrac {
					// Digits past 18 cannot change a nanosecond count.
					if fracScale < 1e18 {
						frac, fracScale = frac*10+uint64(r-'0'), fracScale*10
					}
					continue
				}
				hi, lo := bits.Mul64(n, 10)
				if hi != 0 || lo > math.MaxUint64-uint64(r-'0') {
					return 0, errDurOverflow
				}
				n = lo + uint64(r-'0')
			case r == '.' && !inFrac:
				inFrac = true
			case unicode.IsSpace(r):
			case isUnitRune(r):
				start = off
			default:
				return 0, fmt.Errorf("invalid character at %d", off)
			}
			if start >= 0 {
				break
			}
		}
		if start < 0 {
			return 0, fmt.Errorf("time unit needed, for example %dsec or %dms", n, n)
		}
		// The unit: letters up to whitespace, a digit or the end.
		end := p.pos
		nextDigit := -1
		for {
			off := p.pos
			r, more := p.next()
			if !more {
				end = p.pos
				break
			}
			if r >= '0' && r <= '9' {
				end, nextDigit = off, int(r-'0')
				break
			}
			if unicode.IsSpace(r) {
				end = off
				break
			}
			if !isUnitRune(r) {
				return 0, fmt.Errorf("invalid character at %d", off)
			}
		}
		if err := p.add(n, frac, fracScale, p.src[start:end]); err != nil {
			return 0, err
		}
		if nextDigit >= 0 {
			n = uint64(nextDigit)
			continue
		}
		n, ok, err = p.firstDigit()
		if err != nil {
			return 0, err
		}
		if !ok {
			return p.total, nil
		}
	}
}

// add adds n.frac (frac/fracScale) of unit to the total, failing on overflow.
func (p *durParser) add(n, frac, fracScale uint64, unit string) error {
	u, ok := humanUnits[unit]
	if !ok {
		return fmt.Errorf("unknown time unit %q, supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations)", truncateForError(unit))
	}
	hi, whole := bits.Mul64(n, uint64(u))
	if hi != 0 || whole > math.MaxInt64 {
		return errDurOverflow
	}
	var part uint64
	if frac != 0 {
		// frac/fracScale < 1, so the quotient is below u and fits.
		fh, fl := bits.Mul64(frac, uint64(u))
		part, _ = bits.Div64(fh, fl, fracScale)
	}
	sum := whole + part
	if sum > math.MaxInt64 || uint64(p.total) > math.MaxInt64-sum {
		return errDurOverflow
	}
	p.total += time.Duration(sum)
	return nil
}

// FormatDuration writes d in the form humantime::format_duration produces,
// which ParseDuration reads back to the same value: "0s", "30s", "1h 30m",
// "2days 3h", "1year 2months", "1s 500ms". Negative durations are written as
// "0s" (humantime has no negative durations).
func FormatDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	secs := uint64(d / time.Second)
	nanos := uint64(d % time.Second)
	years := secs / 31_557_600
	ydays := secs % 31_557_600
	months := ydays / 2_630_016
	mdays := ydays % 2_630_016
	days := mdays / 86400
	daySecs := mdays % 86400
	var b strings.Builder
	item := func(v uint64, name string, plural bool) {
		if v == 0 {
			return
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatUint(v, 10))
		b.WriteString(name)
		if plural && v > 1 {
			b.WriteByte('s')
		}
	}
	item(years, "year", true)
	item(months, "month", true)
	item(days, "day", true)
	item(daySecs/3600, "h", false)
	item(daySecs%3600/60, "m", false)
	item(daySecs%60, "s", false)
	item(nanos/1_000_000, "ms", false)
	item(nanos/1000%1000, "us", false)
	item(nanos%1000, "ns", false)
	return b.String()
}

// truncateForError keeps error messages short whatever the input.
func truncateForError(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
