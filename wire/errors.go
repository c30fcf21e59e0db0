package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
)

// ErrInvalid is wrapped by every decode or validation error: the input was
// not JSON of the expected shape, or broke a rule of the protocol.
var ErrInvalid = errors.New("wire: invalid")

// ErrDuration is wrapped by every error of [ParseDuration]. It wraps
// [ErrInvalid] too, so errors.Is(err, ErrInvalid) holds for it.
var ErrDuration = fmt.Errorf("%w: duration", ErrInvalid)

// Unmarshal decodes the JSON document b into v, a pointer to one of this
// package's types (or a slice or map of them), as the Decode functions do
// but without their validation: keys match fields only in their exact case
// (any other spelling is an unknown field, ignored), a struct field given
// twice is an error, and every error wraps ErrInvalid and says where the
// document is wrong. Use it wherever a wire type is read from the network
// and the Decode function's validation must come later (for example a
// command whose signature is checked before it is validated).
func Unmarshal(b []byte, v any) error {
	name := "document"
	if t := reflect.TypeOf(v); t != nil {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Name() != "" {
			name = t.Name()
		}
	}
	return decode(b, v, name)
}

// decode unmarshals b into v as upstream's serde would (exact-case keys
// only, no duplicate struct fields: see strictCheck) and turns
// encoding/json's errors into ones that say which document was wrong,
// where, and why; they wrap ErrInvalid.
func decode(b []byte, v any, what string) error {
	b, err := strictCheck(b, reflect.TypeOf(v))
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalid, what, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		if errors.Is(err, ErrInvalid) {
			return err // from one of our UnmarshalJSON methods: already says what and why
		}
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return fmt.Errorf("%w: %s: malformed JSON at byte %d: %v", ErrInvalid, what, se.Offset, se)
		case errors.As(err, &te) && te.Field == "":
			want := "a JSON object"
			if te.Type != nil && (te.Type.Kind() == reflect.Slice || te.Type.Kind() == reflect.Array) {
				want = "a JSON array"
			}
			return fmt.Errorf("%w: %s: %s value where %s expected", ErrInvalid, what, te.Value, want)
		case errors.As(err, &te):
			return fmt.Errorf("%w: %s: field %q: %s value where %s expected", ErrInvalid, what, te.Field, te.Value, te.Type)
		default:
			return fmt.Errorf("%w: %s: %v", ErrInvalid, what, err)
		}
	}
	return nil
}
