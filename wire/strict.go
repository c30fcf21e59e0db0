package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"
)

// Strict decoding.
//
// encoding/json matches object keys to struct fields case-insensitively
// (with Unicode folding: "SCRIPT", "Script" and "ſcript" all fill Script)
// and lets the last of two equal keys win. Upstream decodes with serde,
// where a key must match a field exactly (any other spelling is an unknown
// field, ignored) and a struct field given twice is an error. So
// {"script":"a","SCRIPT":"b"} runs "a" upstream and "b" through a plain
// json.Unmarshal, and {"script":"a","script":"b"} is refused upstream.
//
// strictCheck walks the document once, guided by the Go type it will be
// decoded into, before json.Unmarshal runs:
//
//   - a key that names a field of the struct exactly is checked against the
//     keys already seen in that object: a second one is an error wrapping
//     ErrInvalid ("duplicate field"), at every nesting level;
//   - a key that only case-folds to a field name is renamed to "" in a copy
//     of the document (made only when there is such a key), so that
//     encoding/json ignores it like any other unknown key;
//   - maps, json.RawMessage and interface values are not struct fields:
//     their keys are kept as they are (serde's maps and serde_json::Value
//     also let the last of two equal keys win).
//
// Malformed JSON is left to json.Unmarshal, which reports it.

// maxStrictDepth bounds the nesting the check follows; deeper documents are
// left to encoding/json, which refuses them at its own limit.
const maxStrictDepth = 10000

// errStop ends the check without an error of its own: the document is
// malformed (or too deep) and json.Unmarshal will say how.
var errStop = errors.New("wire: stop strict check")

type schemaKind uint8

const (
	kindOpaque schemaKind = iota // anything whose keys are not struct fields
	kindStruct
	kindMap
	kindList
)

// schema is what strictCheck needs to know of a Go type.
type schema struct {
	kind   schemaKind
	fields map[string]*field // kindStruct: exact JSON names (and aliases)
	names  []string          // kindStruct: the canonical JSON names, for case folding
	elem   *schema           // kindMap, kindList: the element type
}

// field is one JSON key of a struct.
type field struct {
	index      int     // bit in the duplicate set; aliases share their field's
	name       string  // canonical JSON name, for messages
	typ        *schema // nil: opaque
	stringOnly bool    // the value must be a JSON string or null
}

// Extra keys some types accept under another name, and fields whose JSON
// type is narrower on the wire than their Go type's decoder.
var (
	schemaAliases = map[reflect.Type]map[string]string{
		reflect.TypeOf(Command{}): {"job_id": "exec_id"},
	}
	schemaStringOnly = map[reflect.Type]map[string]bool{
		reflect.TypeOf(ObsEvent{}): {"event_record_id": true},
	}
	rawMessageType = reflect.TypeOf(json.RawMessage(nil))
	timeType       = reflect.TypeOf(time.Time{})
	schemaCache    sync.Map // reflect.Type -> *schema
)

// schemaOf returns the schema of t, building and caching it.
func schemaOf(t reflect.Type) *schema {
	if s, ok := schemaCache.Load(t); ok {
		return s.(*schema)
	}
	s := buildSchema(t, map[reflect.Type]*schema{})
	schemaCache.Store(t, s)
	return s
}

func buildSchema(t reflect.Type, building map[reflect.Type]*schema) *schema {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if s, ok := building[t]; ok {
		return s
	}
	switch {
	case t == rawMessageType || t == timeType:
		return &schema{kind: kindOpaque}
	case t.Kind() == reflect.Struct:
		s := &schema{kind: kindStruct, fields: map[string]*field{}}
		building[t] = s
		stringOnly := schemaStringOnly[t]
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() || f.Anonymous {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			fd := &field{index: len(s.names), name: name, typ: buildSchema(f.Type, building), stringOnly: stringOnly[name]}
			s.fields[name] = fd
			s.names = append(s.names, name)
		}
		for alias, target := range schemaAliases[t] {
			if fd, ok := s.fields[target]; ok {
				s.fields[alias] = fd
				s.names = append(s.names, alias)
			}
		}
		return s
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String:
		return &schema{kind: kindMap, elem: buildSchema(t.Elem(), building)}
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		return &schema{kind: kindList, elem: buildSchema(t.Elem(), building)}
	default:
		return &schema{kind: kindOpaque}
	}
}

// folds reports whether key case-folds to one of s's field names without
// being one (the caller checked the exact match).
func (s *schema) folds(key string) bool {
	for _, n := range s.names {
		if strings.EqualFold(key, n) {
			return true
		}
	}
	return false
}

// strictCheck checks b for decoding into a value of type t (see above).
// It returns the document to decode: b itself, or a copy in which every
// key that only case-folds to a field name is renamed to "". Its error
// says which field is duplicated or of the wrong JSON type, and where; the
// caller wraps it in ErrInvalid.
func strictCheck(b []byte, t reflect.Type) ([]byte, error) {
	s := scanner{b: b}
	err := s.value(schemaOf(t))
	if err == errStop {
		return b, nil
	}
	if err != nil {
		return nil, err
	}
	if len(s.renames) == 0 {
		return b, nil
	}
	out := make([]byte, 0, len(b))
	last := 0
	for _, r := range s.renames {
		out = append(out, b[last:r[0]]...)
		out = append(out, `""`...)
		last = r[1]
	}
	return append(out, b[last:]...), nil
}

type scanner struct {
	b       []byte
	i       int
	depth   int
	path    []string // field names from the root to the current value
	renames [][2]int // key tokens (quotes included) to rename to ""
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) value(sc *schema) error {
	s.ws()
	if s.i >= len(s.b) {
		return errStop
	}
	switch s.b[s.i] {
	case '{':
		return s.object(sc)
	case '[':
		return s.array(sc)
	case '"':
		_, _, _, err := s.str()
		return err
	default: // a number or a literal; encoding/json checks its spelling
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return nil
			}
			s.i++
		}
		return nil
	}
}

// str scans the string at s.i, returning its token's bounds and whether it
// holds escapes.
func (s *scanner) str() (start, end int, escaped bool, err error) {
	start = s.i
	for i := s.i + 1; i < len(s.b); i++ {
		switch s.b[i] {
		case '\\':
			escaped = true
			i++
		case '"':
			s.i = i + 1
			return start, s.i, escaped, nil
		}
	}
	return 0, 0, false, errStop
}

func (s *scanner) enter() error {
	s.depth++
	if s.depth > maxStrictDepth {
		return errStop
	}
	s.i++
	return nil
}

func (s *scanner) array(sc *schema) error {
	if err := s.enter(); err != nil {
		return err
	}
	var elem *schema
	if sc != nil && sc.kind == kindList {
		elem = sc.elem
	}
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		s.depth--
		return nil
	}
	for {
		if err := s.value(elem); err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.b) {
			return errStop
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			s.depth--
			return nil
		default:
			return errStop
		}
	}
}

func (s *scanner) object(sc *schema) error {
	if err := s.enter(); err != nil {
		return err
	}
	var seen uint64
	var seenMore map[int]bool // fields past the 64th, in the unlikely case
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		s.depth--
		return nil
	}
	for {
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return errStop
		}
		ks, ke, escaped, err := s.str()
		if err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return errStop
		}
		s.i++
		var child *schema
		var fd *field
		switch {
		case sc == nil:
		case sc.kind == kindStruct:
			raw := s.b[ks+1 : ke-1]
			var ok bool
			var key string
			if escaped {
				if json.Unmarshal(s.b[ks:ke], &key) != nil {
					return errStop
				}
				fd, ok = sc.fields[key]
			} else {
				fd, ok = sc.fields[string(raw)] // no allocation
			}
			switch {
			case ok:
				dup := false
				if fd.index < 64 {
					dup = seen&(1<<fd.index) != 0
					seen |= 1 << fd.index
				} else {
					if seenMore == nil {
						seenMore = map[int]bool{}
					}
					dup, seenMore[fd.index] = seenMore[fd.index], true
				}
				if dup {
					return fmt.Errorf("duplicate field %q%s", fd.name, s.where())
				}
				child = fd.typ
			default:
				if !escaped {
					key = string(raw)
				}
				if sc.folds(key) {
					s.renames = append(s.renames, [2]int{ks, ke})
				}
			}
		case sc.kind == kindMap:
			child = sc.elem
		}
		if fd != nil {
			if fd.stringOnly {
				s.ws()
				if s.i < len(s.b) && s.b[s.i] != '"' && s.b[s.i] != 'n' {
					return fmt.Errorf("field %q%s must be a string or null", fd.name, s.where())
				}
			}
			s.path = append(s.path, fd.name)
		}
		if err := s.value(child); err != nil {
			return err
		}
		if fd != nil {
			s.path = s.path[:len(s.path)-1]
		}
		s.ws()
		if s.i >= len(s.b) {
			return errStop
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			s.depth--
			return nil
		default:
			return errStop
		}
	}
}

// where names the object holding the current key, for messages.
func (s *scanner) where() string {
	if len(s.path) == 0 {
		return ""
	}
	return " in " + strings.Join(s.path, ".")
}
