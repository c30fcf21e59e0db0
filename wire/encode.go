package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Marshal encodes v as upstream's serde_json::to_vec does for the wire
// types: compact, no trailing newline, and '<', '>' and '&' written as
// themselves (encoding/json's json.Marshal writes them as \u003c, \u003e
// and \u0026, which decode to the same strings but are different bytes).
// Publishers should use it for every message they send. Timestamps of the
// wire types are written as chrono writes a DateTime<Utc> (see chronoTime).
// One difference remains, only in bytes, not in meaning: Go writes U+2028
// and U+2029 escaped.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// marshal is json.Marshal without HTML escaping, for MarshalJSON methods:
// what they return is what Marshal (or an Encoder with SetEscapeHTML(false))
// writes.
func marshal(v any) ([]byte, error) { return Marshal(v) }

// jsonFloat is a float64 written as serde_json writes an f64: the shortest
// form that reads back to the same value, always with a fraction or an
// exponent ("1.0", "0.3", "1e16", "1.5e-7"), and null for NaN and
// infinities (encoding/json refuses to encode those at all, which would
// lose the whole message).
type jsonFloat float64

// MarshalJSON implements json.Marshaler.
func (f jsonFloat) MarshalJSON() ([]byte, error) {
	return appendSerdeFloat(nil, float64(f)), nil
}

// UnmarshalJSON implements json.Unmarshaler: any JSON number, or null for 0.
func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = jsonFloat(v)
	return nil
}

// appendSerdeFloat appends f in the format of the ryu crate's
// format_finite, which serde_json uses for f64.
func appendSerdeFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	if f == 0 {
		if math.Signbit(f) {
			return append(b, "-0.0"...)
		}
		return append(b, "0.0"...)
	}
	if f < 0 {
		b = append(b, '-')
		f = -f
	}
	// Shortest round-trip digits and the decimal exponent: d.ddde±x.
	e := strconv.FormatFloat(f, 'e', -1, 64)
	mant, exp, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	x, _ := strconv.Atoi(exp)
	n := len(digits)
	k := x + 1 // position of the decimal point after the first digit
	switch {
	case n <= k && k <= 16:
		b = append(b, digits...)
		for i := n; i < k; i++ {
			b = append(b, '0')
		}
		return append(b, ".0"...)
	case 0 < k && k <= 16:
		b = append(b, digits[:k]...)
		b = append(b, '.')
		return append(b, digits[k:]...)
	case -5 < k && k <= 0:
		b = append(b, "0."...)
		for i := k; i < 0; i++ {
			b = append(b, '0')
		}
		return append(b, digits...)
	case n == 1:
		b = append(b, digits...)
	default:
		b = append(b, digits[0], '.')
		b = append(b, digits[1:]...)
	}
	b = append(b, 'e')
	return strconv.AppendInt(b, int64(k-1), 10)
}

// jsonFloatPtr converts p for encoding.
func jsonFloatPtr(p *float64) *jsonFloat {
	if p == nil {
		return nil
	}
	f := jsonFloat(*p)
	return &f
}

// chronoTime is a time.Time written as upstream's chrono (serde feature)
// writes a DateTime<Utc>: RFC 3339 in UTC with "Z" (never an offset,
// whatever the time's location), and fractional seconds as
// SecondsFormat::AutoSi selects them: none when the nanoseconds are 0,
// else 3, 6 or 9 digits, the fewest that hold every non-zero digit
// ("…:05.500Z", "…:05.123456Z", "…:05.123456780Z"). encoding/json's
// time.Time trims trailing zeros instead (".5Z", ".12345678Z") and keeps
// the location's offset ("+09:00").
type chronoTime time.Time

// MarshalJSON implements json.Marshaler.
func (t chronoTime) MarshalJSON() ([]byte, error) {
	u := time.Time(t).UTC()
	if y := u.Year(); y < 0 || y > 9999 {
		// Outside RFC 3339's years: encoding/json's error, as before.
		return u.MarshalJSON()
	}
	b := make([]byte, 0, len(`"2006-01-02T15:04:05.000000000Z"`))
	b = append(b, '"')
	b = u.AppendFormat(b, "2006-01-02T15:04:05")
	switch ns := u.Nanosecond(); {
	case ns == 0:
	case ns%1_000_000 == 0:
		b = appendFraction(b, ns/1_000_000, 3)
	case ns%1_000 == 0:
		b = appendFraction(b, ns/1_000, 6)
	default:
		b = appendFraction(b, ns, 9)
	}
	return append(b, 'Z', '"'), nil
}

// appendFraction appends '.' and n zero-padded to width digits.
func appendFraction(b []byte, n, width int) []byte {
	b = append(b, '.')
	d := strconv.Itoa(n)
	for i := len(d); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, d...)
}

// chronoTimePtr converts p for encoding.
func chronoTimePtr(p *time.Time) *chronoTime {
	if p == nil {
		return nil
	}
	t := chronoTime(*p)
	return &t
}

// serdeValue rewrites the JSON document raw as serde_json writes it after
// reading it into a serde_json::Value (what upstream does with an
// ObsEvent's payload: the agent decodes the event and encodes it again):
// compact; object keys sorted bytewise (serde_json's Map is a BTreeMap),
// the last of duplicate keys kept; an integer that fits u64 or i64
// written as an integer ("-0" as "0"), any other number as an f64 in
// serde_json's form ("1E2" as "100.0"); strings with only '"', '\\' and
// control characters escaped. It fails on what is not one JSON value and
// on a number out of f64's range (serde_json refuses those too).
func serdeValue(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err == nil {
		return nil, errTrailingData
	}
	return appendSerdeValue(nil, v)
}

// errTrailingData is serdeValue's error for a second value after the first.
var errTrailingData = errors.New("trailing data after the JSON value")

func appendSerdeValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case string:
		return appendSerdeString(b, x), nil
	case json.Number:
		return appendSerdeNumber(b, string(x))
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendSerdeValue(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendSerdeString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendSerdeValue(b, x[k]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	}
	return nil, fmt.Errorf("wire: unexpected JSON value %T", v)
}

// appendSerdeNumber appends the JSON number s as serde_json writes the
// serde_json::Number it reads s into.
func appendSerdeNumber(b []byte, s string) ([]byte, error) {
	if !strings.ContainsAny(s, ".eE") {
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			return strconv.AppendUint(b, u, 10), nil
		}
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return strconv.AppendInt(b, i, 10), nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("wire: number %s is out of range", truncateForError(s))
	}
	return appendSerdeFloat(b, f), nil
}

// appendSerdeString appends s quoted as serde_json writes a string: '"'
// and '\\' escaped, \b \t \n \f \r by name, other control characters as
// \u00xx, everything else (non-ASCII, '/', '<', U+2028) as itself.
func appendSerdeString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
