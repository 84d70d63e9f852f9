// Package strictjson decodes request bodies the way an API that never guesses
// should: it rejects invalid UTF-8, duplicate object keys, trailing data and
// excessive nesting, and it reports every unknown field and wrong type at
// once, each by its path ("targets[1].weight"), instead of stopping at the
// first as encoding/json does.
//
// Decoding is two steps: Parse turns bytes into a generic tree (the same
// tree that JSON merge patch operates on), and Assign copies a tree into a
// Go value, matching fields by their json tags.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting of arrays and objects Parse accepts.
const MaxDepth = 32

// FieldError is one problem with one field, named by its path. The path of
// the document itself is "body".
type FieldError struct {
	Field   string
	Message string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// Parse parses b as exactly one JSON value. Objects become map[string]any,
// arrays []any, numbers json.Number; strings, bools and nil as usual.
func Parse(b []byte) (any, error) {
	if !utf8.Valid(b) {
		return nil, FieldError{"body", "is not valid UTF-8"}
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, FieldError{"body", "is empty; a JSON document is required"}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := parseValue(dec, 0)
	if err != nil {
		return nil, syntaxError(err, dec)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, FieldError{"body", fmt.Sprintf("has data after the JSON document (byte %d)", dec.InputOffset())}
	}
	return v, nil
}

func syntaxError(err error, dec *json.Decoder) error {
	var fe FieldError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &fe):
		return fe
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return FieldError{"body", "is truncated: the JSON document ends early"}
	case errors.As(err, &se):
		return FieldError{"body", fmt.Sprintf("is malformed JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))}
	default:
		return FieldError{"body", fmt.Sprintf("is malformed JSON near byte %d", dec.InputOffset())}
	}
}

func parseValue(dec *json.Decoder, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth >= MaxDepth {
			return nil, FieldError{"body", fmt.Sprintf("nests deeper than %d levels", MaxDepth)}
		}
		switch t {
		case '{':
			obj := map[string]any{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, ok := kt.(string)
				if !ok {
					return nil, FieldError{"body", "has an object key that is not a string"}
				}
				if _, dup := obj[key]; dup {
					return nil, FieldError{"body", fmt.Sprintf("has the key %q twice in one object", key)}
				}
				v, err := parseValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				obj[key] = v
			}
			if _, err := dec.Token(); err != nil { // '}'
				return nil, err
			}
			return obj, nil
		case '[':
			arr := []any{}
			for dec.More() {
				v, err := parseValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return nil, err
			}
			return arr, nil
		}
		return nil, FieldError{"body", fmt.Sprintf("has an unexpected %q", t)}
	default:
		return tok, nil
	}
}

// Merge applies an RFC 7396 JSON merge patch to target and returns the
// result. Neither argument is modified.
func Merge(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	out := make(map[string]any, len(t)+len(p))
	if ok {
		for k, v := range t {
			out[k] = v
		}
	}
	for k, v := range p {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = Merge(out[k], v)
	}
	return out
}

// ToTree converts any JSON-encodable value into the generic tree Parse
// returns.
func ToTree(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}

// Decode parses b and assigns it to dst, a pointer to a struct.
func Decode(b []byte, dst any) []FieldError {
	tree, err := Parse(b)
	if err != nil {
		var fe FieldError
		errors.As(err, &fe)
		return []FieldError{fe}
	}
	return Assign(tree, dst)
}

// Assign copies tree into dst, which must be a non-nil pointer. Fields absent
// from tree, or null in it, keep the value dst already has, so callers set
// defaults first. Every unknown field and wrong type is reported, sorted by
// path.
func Assign(tree any, dst any) []FieldError {
	var errs []FieldError
	assign(tree, reflect.ValueOf(dst).Elem(), "", &errs)
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Field < errs[j].Field })
	return errs
}

// Defaulter is implemented by types whose zero value is not their default.
// Assign calls SetDefaults on each value it creates (an array element, a
// map value, a pointer's target) before filling it in, so that absent
// fields keep their defaults there as they do at the top level.
type Defaulter interface{ SetDefaults() }

func setDefaults(v reflect.Value) {
	if v.CanAddr() {
		if d, ok := v.Addr().Interface().(Defaulter); ok {
			d.SetDefaults()
		}
	}
}

// rfc3339Syntax is RFC 3339's date-time production, upper-case T and Z.
var rfc3339Syntax = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$`)

var (
	timeType = reflect.TypeFor[time.Time]()
	rawType  = reflect.TypeFor[json.RawMessage]()
)

func fieldPath(parent, name string) string {
	if name == "" {
		name = `""` // an empty key must not yield an empty (or the parent's) path
	}
	if parent == "" {
		return name
	}
	return parent + "." + name
}

func assign(v any, dst reflect.Value, path string, errs *[]FieldError) {
	if v == nil {
		return
	}
	fail := func(msg string) {
		p := path
		if p == "" {
			p = "body"
		}
		*errs = append(*errs, FieldError{p, msg})
	}
	switch {
	case dst.Type() == rawType:
		b, err := json.Marshal(v)
		if err != nil {
			fail("cannot be encoded")
			return
		}
		dst.SetBytes(b)
		return
	case dst.Type() == timeType:
		s, ok := v.(string)
		if !ok {
			fail("must be a string holding an RFC 3339 time")
			return
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err == nil {
			// time.Parse is laxer than RFC 3339 (one-digit hours, ','
			// before fractions, offsets of 24 hours or more); a time with
			// such an offset cannot even be encoded again.
			_, err = t.MarshalText()
		}
		if err != nil || !rfc3339Syntax.MatchString(s) {
			fail("must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
			return
		}
		dst.Set(reflect.ValueOf(t))
		return
	}
	switch dst.Kind() {
	case reflect.Pointer:
		if dst.IsNil() {
			elem := reflect.New(dst.Type().Elem())
			setDefaults(elem.Elem())
			dst.Set(elem)
		}
		assign(v, dst.Elem(), path, errs)
	case reflect.Interface:
		dst.Set(reflect.ValueOf(v))
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			fail("must be a string")
			return
		}
		dst.SetString(s)
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			fail("must be true or false")
			return
		}
		dst.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			fail("must be an integer")
			return
		}
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil || dst.OverflowInt(i) {
			fail("must be an integer in range")
			return
		}
		dst.SetInt(i)
	case reflect.Float32, reflect.Float64:
		n, ok := v.(json.Number)
		if !ok {
			fail("must be a number")
			return
		}
		f, err := n.Float64()
		if err != nil {
			fail("must be a number in range")
			return
		}
		dst.SetFloat(f)
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			fail("must be an array")
			return
		}
		out := reflect.MakeSlice(dst.Type(), len(arr), len(arr))
		for i, item := range arr {
			setDefaults(out.Index(i))
			ipath := fmt.Sprintf("%s[%d]", path, i)
			if item == nil {
				*errs = append(*errs, FieldError{ipath, "must not be null"})
				continue
			}
			assign(item, out.Index(i), ipath, errs)
		}
		dst.Set(out)
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok || dst.Type().Key().Kind() != reflect.String {
			fail("must be an object")
			return
		}
		out := reflect.MakeMapWithSize(dst.Type(), len(obj))
		for k, item := range obj {
			ev := reflect.New(dst.Type().Elem()).Elem()
			setDefaults(ev)
			assign(item, ev, fieldPath(path, k), errs)
			out.SetMapIndex(reflect.ValueOf(k).Convert(dst.Type().Key()), ev)
		}
		dst.Set(out)
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			fail("must be an object")
			return
		}
		fields := structFields(dst.Type())
		for k, item := range obj {
			idx, known := fields[k]
			if !known {
				*errs = append(*errs, FieldError{fieldPath(path, k), "is not a known field"})
				continue
			}
			assign(item, dst.FieldByIndex(idx), fieldPath(path, k), errs)
		}
	default:
		fail("cannot be decoded")
	}
}

// structFields maps JSON names to field indexes, following embedded structs
// as encoding/json does. Fields tagged "-" are not accepted.
func structFields(t reflect.Type) map[string][]int {
	out := map[string][]int{}
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			idx := append(append([]int{}, prefix...), i)
			tag := f.Tag.Get("json")
			name, _, _ := strings.Cut(tag, ",")
			if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
				walk(f.Type, idx)
				continue
			}
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			out[name] = idx
		}
	}
	walk(t, nil)
	return out
}
