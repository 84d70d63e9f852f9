// Package strictjson decodes request bodies the way an API that never guesses
// should: it rejects invalid UTF-8, duplicate object keys, trailing data and
// excessive nesting, and it reports every unknown field and wrong type at
// once (the first MaxErrors, and how many more), each by its path
// ("targets[1].weight"), instead of stopping at the first as encoding/json
// does.
//
// Decoding is two steps: Parse turns bytes into a generic tree (the same
// tree that JSON merge patch operates on), and Assign copies a tree into a
// Go value, matching fields by their json tags. A request body must be an
// object: ParseObject and Decode refuse null, arrays and scalars.
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
	// Unlisted is set only on the entry that ends a list cut at MaxErrors
	// (see Unlisted): the number of errors it stands for, so that whoever
	// merges this list into a longer one can count them again.
	Unlisted int
}

func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// Parse parses b as exactly one JSON value. Objects become map[string]any,
// arrays []any, numbers json.Number; strings, bools and nil as usual.
func Parse(b []byte) (any, error) {
	if !utf8.Valid(b) {
		return nil, FieldError{Field: "body", Message: "is not valid UTF-8"}
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, FieldError{Field: "body", Message: "is empty; a JSON document is required"}
	}
	p := parser{b: b}
	v, err := p.document()
	var fe FieldError
	switch {
	case err == nil:
		return v, nil
	case errors.As(err, &fe):
		return nil, fe
	}
	return parseTokens(b)
}

// parseTokens is Parse by encoding/json's tokens: many times slower than
// parser, so it only runs to say where and what a syntax error is.
func parseTokens(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := parseValue(dec, 0)
	if err != nil {
		return nil, syntaxError(err, dec)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, FieldError{Field: "body", Message: fmt.Sprintf("has data after the JSON document (byte %d)", dec.InputOffset())}
	}
	return v, nil
}

// parser parses one JSON document from valid UTF-8 by recursive descent,
// building the tree Parse returns. It reports a duplicate key or excessive
// nesting at the same point parseValue would; any syntax error is only
// errSyntax, and parseTokens then describes it.
type parser struct {
	b []byte
	i int
}

var errSyntax = errors.New("strictjson: syntax error")

func (p *parser) document() (any, error) {
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	if p.ws(); p.i != len(p.b) {
		return nil, errSyntax
	}
	return v, nil
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// next skips whitespace and reports whether the next byte is c, consuming
// it if so.
func (p *parser) next(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *parser) value(depth int) (any, error) {
	p.ws()
	if p.i == len(p.b) {
		return nil, errSyntax
	}
	switch c := p.b[p.i]; {
	case c == '{' || c == '[':
		if depth >= MaxDepth {
			return nil, FieldError{Field: "body", Message: fmt.Sprintf("nests deeper than %d levels", MaxDepth)}
		}
		p.i++
		if c == '{' {
			return p.object(depth)
		}
		return p.array(depth)
	case c == '"':
		return p.string()
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	}
	for _, lit := range literals {
		if bytes.HasPrefix(p.b[p.i:], lit.text) {
			p.i += len(lit.text)
			return lit.v, nil
		}
	}
	return nil, errSyntax
}

var literals = []struct {
	text []byte
	v    any
}{{[]byte("true"), true}, {[]byte("false"), false}, {[]byte("null"), nil}}

func (p *parser) object(depth int) (any, error) {
	obj := map[string]any{}
	if p.next('}') {
		return obj, nil
	}
	for {
		if p.ws(); p.i == len(p.b) || p.b[p.i] != '"' {
			return nil, errSyntax
		}
		key, err := p.string()
		if err != nil {
			return nil, err
		}
		if _, dup := obj[key]; dup {
			return nil, FieldError{Field: "body", Message: fmt.Sprintf("has the key %q twice in one object", key)}
		}
		if !p.next(':') {
			return nil, errSyntax
		}
		if obj[key], err = p.value(depth + 1); err != nil {
			return nil, err
		}
		if p.next('}') {
			return obj, nil
		}
		if !p.next(',') {
			return nil, errSyntax
		}
	}
}

func (p *parser) array(depth int) (any, error) {
	arr := []any{}
	if p.next(']') {
		return arr, nil
	}
	for {
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		arr = append(arr, v)
		if p.next(']') {
			return arr, nil
		}
		if !p.next(',') {
			return nil, errSyntax
		}
	}
}

// string reads a string at p.i (its opening quote). A string with escapes
// is decoded by encoding/json, so that surrogates are handled exactly as
// there.
func (p *parser) string() (string, error) {
	start := p.i
	p.i++
	escaped := false
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c == '"':
			p.i++
			if !escaped {
				return string(p.b[start+1 : p.i-1]), nil
			}
			var s string
			if err := json.Unmarshal(p.b[start:p.i], &s); err != nil {
				return "", errSyntax
			}
			return s, nil
		case c == '\\':
			escaped = true
			p.i += 2 // the escape's first character is checked by Unmarshal
		case c < 0x20:
			return "", errSyntax
		default:
			p.i++
		}
	}
	return "", errSyntax
}

// number reads a number by RFC 8259's grammar and keeps its text.
func (p *parser) number() (any, error) {
	start := p.i
	digits := func() int {
		n := 0
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.b[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(p.b) && p.b[p.i] == '0':
		p.i++
	case digits() == 0:
		return nil, errSyntax
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return nil, errSyntax
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return nil, errSyntax
		}
	}
	return json.Number(p.b[start:p.i]), nil
}

func syntaxError(err error, dec *json.Decoder) error {
	var fe FieldError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &fe):
		return fe
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return FieldError{Field: "body", Message: "is truncated: the JSON document ends early"}
	case errors.As(err, &se):
		return FieldError{Field: "body", Message: fmt.Sprintf("is malformed JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))}
	default:
		return FieldError{Field: "body", Message: fmt.Sprintf("is malformed JSON near byte %d", dec.InputOffset())}
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
			return nil, FieldError{Field: "body", Message: fmt.Sprintf("nests deeper than %d levels", MaxDepth)}
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
					return nil, FieldError{Field: "body", Message: "has an object key that is not a string"}
				}
				if _, dup := obj[key]; dup {
					return nil, FieldError{Field: "body", Message: fmt.Sprintf("has the key %q twice in one object", key)}
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
		return nil, FieldError{Field: "body", Message: fmt.Sprintf("has an unexpected %q", t)}
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

// ParseObject parses b as a request body: exactly one JSON value, which must
// be an object. A body of null, an array or a scalar is refused here, once,
// rather than read as an empty object by whatever assigns it.
func ParseObject(b []byte) (map[string]any, error) {
	tree, err := Parse(b)
	if err != nil {
		return nil, err
	}
	obj, ok := tree.(map[string]any)
	if !ok {
		return nil, FieldError{Field: "body", Message: "must be a JSON object, not " + describe(tree)}
	}
	return obj, nil
}

// describe names the JSON type of a parsed value, for messages.
func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	}
	return "an object"
}

// Decode parses b as a request body (see ParseObject) and assigns it to
// dst, a pointer to a struct.
func Decode(b []byte, dst any) []FieldError {
	tree, err := ParseObject(b)
	if err != nil {
		var fe FieldError
		errors.As(err, &fe)
		return []FieldError{fe}
	}
	return Assign(tree, dst)
}

// MaxErrors is how many field errors Assign lists. A body can be made of
// hundreds of thousands of wrong values, and an answer naming each would be
// many times larger than the body: past MaxErrors they are only counted,
// and a final error on "body" says how many were left out. gatehouse's
// problems follow the same rule, whatever found their errors.
const MaxErrors = 100

// Unlisted is the entry that ends a list cut at MaxErrors, standing for
// the n errors left out.
func Unlisted(n int) FieldError {
	return FieldError{Field: "body", Message: fmt.Sprintf("has %d more errors, not listed: only the first %d are", n, MaxErrors), Unlisted: n}
}

// Assign copies tree into dst, which must be a non-nil pointer. Fields absent
// from tree, or null in it, keep the value dst already has, so callers set
// defaults first. Every unknown field and wrong type is reported, sorted by
// path, up to MaxErrors.
func Assign(tree any, dst any) []FieldError {
	var d decoder
	d.assign(tree, reflect.ValueOf(dst).Elem(), "")
	sort.SliceStable(d.errs, func(i, j int) bool { return d.errs[i].Field < d.errs[j].Field })
	if d.omitted > 0 {
		d.errs = append(d.errs, Unlisted(d.omitted))
	}
	return d.errs
}

// decoder collects the errors of one Assign.
type decoder struct {
	errs    []FieldError
	omitted int // errors past MaxErrors, counted only
}

// full reports whether errors are now only counted. Paths are then not
// built either: formatting them is most of the cost of a body of errors.
func (d *decoder) full() bool { return len(d.errs) >= MaxErrors }

func (d *decoder) fail(path, msg string) {
	if d.full() {
		d.omitted++
		return
	}
	if path == "" {
		path = "body"
	}
	d.errs = append(d.errs, FieldError{Field: path, Message: msg})
}

// member and index are the paths of an object member and an array element.
func (d *decoder) member(parent, name string) string {
	if d.full() {
		return ""
	}
	if name == "" {
		name = `""` // an empty key must not yield an empty (or the parent's) path
	}
	if parent == "" {
		return name
	}
	return parent + "." + name
}

func (d *decoder) index(parent string, i int) string {
	if d.full() {
		return ""
	}
	return parent + "[" + strconv.Itoa(i) + "]"
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

// assign copies v into dst, dispatching on dst's type.
func (d *decoder) assign(v any, dst reflect.Value, path string) {
	if v == nil {
		return
	}
	switch {
	case dst.Type() == rawType:
		d.assignRaw(v, dst, path)
		return
	case dst.Type() == timeType:
		d.assignTime(v, dst, path)
		return
	}
	switch dst.Kind() {
	case reflect.Pointer:
		if dst.IsNil() {
			elem := reflect.New(dst.Type().Elem())
			setDefaults(elem.Elem())
			dst.Set(elem)
		}
		d.assign(v, dst.Elem(), path)
	case reflect.Interface:
		dst.Set(reflect.ValueOf(v))
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Float32, reflect.Float64:
		if msg := assignScalar(v, dst); msg != "" {
			d.fail(path, msg)
		}
	case reflect.Slice:
		d.assignSlice(v, dst, path)
	case reflect.Map:
		d.assignMap(v, dst, path)
	case reflect.Struct:
		d.assignStruct(v, dst, path)
	default:
		d.fail(path, "cannot be decoded")
	}
}

func (d *decoder) assignRaw(v any, dst reflect.Value, path string) {
	b, err := json.Marshal(v)
	if err != nil {
		d.fail(path, "cannot be encoded")
		return
	}
	dst.SetBytes(b)
}

func (d *decoder) assignTime(v any, dst reflect.Value, path string) {
	s, ok := v.(string)
	if !ok {
		d.fail(path, "must be a string holding an RFC 3339 time")
		return
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err == nil {
		// time.Parse is laxer than RFC 3339 (one-digit hours, ',' before
		// fractions, offsets of 24 hours or more); a time with such an
		// offset cannot even be encoded again.
		_, err = t.MarshalText()
	}
	if err != nil || !rfc3339Syntax.MatchString(s) {
		d.fail(path, "must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
		return
	}
	dst.Set(reflect.ValueOf(t))
}

// assignScalar sets a string, bool or number, or returns what is wrong.
func assignScalar(v any, dst reflect.Value) string {
	switch dst.Kind() {
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			return "must be a string"
		}
		dst.SetString(s)
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			return "must be true or false"
		}
		dst.SetBool(b)
	case reflect.Float32, reflect.Float64:
		n, ok := v.(json.Number)
		if !ok {
			return "must be a number"
		}
		f, err := n.Float64()
		if err != nil {
			return "must be a number in range"
		}
		dst.SetFloat(f)
	default: // the signed integers
		n, ok := v.(json.Number)
		if !ok {
			return "must be an integer"
		}
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil || dst.OverflowInt(i) {
			return "must be an integer in range"
		}
		dst.SetInt(i)
	}
	return ""
}

func (d *decoder) assignSlice(v any, dst reflect.Value, path string) {
	arr, ok := v.([]any)
	if !ok {
		d.fail(path, "must be an array")
		return
	}
	out := reflect.MakeSlice(dst.Type(), len(arr), len(arr))
	for i, item := range arr {
		setDefaults(out.Index(i))
		ipath := d.index(path, i)
		if item == nil {
			d.fail(ipath, "must not be null")
			continue
		}
		d.assign(item, out.Index(i), ipath)
	}
	dst.Set(out)
}

func (d *decoder) assignMap(v any, dst reflect.Value, path string) {
	obj, ok := v.(map[string]any)
	if !ok || dst.Type().Key().Kind() != reflect.String {
		d.fail(path, "must be an object")
		return
	}
	out := reflect.MakeMapWithSize(dst.Type(), len(obj))
	for _, k := range sortedKeys(obj) {
		ev := reflect.New(dst.Type().Elem()).Elem()
		setDefaults(ev)
		d.assign(obj[k], ev, d.member(path, k))
		out.SetMapIndex(reflect.ValueOf(k).Convert(dst.Type().Key()), ev)
	}
	dst.Set(out)
}

func (d *decoder) assignStruct(v any, dst reflect.Value, path string) {
	obj, ok := v.(map[string]any)
	if !ok {
		d.fail(path, "must be an object")
		return
	}
	fields := structFields(dst.Type())
	for _, k := range sortedKeys(obj) {
		idx, known := fields[k]
		if !known {
			d.fail(d.member(path, k), "is not a known field")
			continue
		}
		d.assign(obj[k], dst.FieldByIndex(idx), d.member(path, k))
	}
}

// sortedKeys walks objects in a fixed order, so that which errors fall
// past MaxErrors does not change from one request to the next.
func sortedKeys(obj map[string]any) []string {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
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
