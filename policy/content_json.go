package policy

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/gatehouse/gatehouse"
)

// maxJSONDepth is the deepest nesting of arrays and objects a body checked
// against a schema may have; deeper is 400.
const maxJSONDepth = 256

// maxViolationMessage bounds one violation's message in bytes: messages
// quote the offending value, which may be long.
const maxViolationMessage = 200

// decodeJSON parses a request body as exactly one JSON document, as the
// schema validator takes it (objects map[string]any, arrays []any,
// numbers json.Number). It refuses, with a 400 that says where, what
// parsers disagree on and so what could slip past the schema to an
// upstream that reads it differently: invalid UTF-8 (which encoding/json
// would silently replace), a key twice in one object (some parsers keep
// the first, others the last), data after the document, and nesting over
// maxJSONDepth.
func decodeJSON(b []byte) (any, error) {
	if !utf8.Valid(b) {
		i := 0
		for i < len(b) {
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			i += n
		}
		return nil, badJSON(b, i, "is not valid UTF-8")
	}
	if len(bytes.TrimLeft(b, " \t\r\n")) == 0 {
		return nil, badJSON(b, -1, "is empty; a JSON document is required")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := parseJSONValue(dec, b, 0)
	if err != nil {
		var ge *gatehouse.Error
		var se *json.SyntaxError
		switch {
		case errors.As(err, &ge):
			return nil, ge
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return nil, badJSON(b, len(b), "ends before the JSON document does")
		case errors.As(err, &se):
			// Offset counts the bytes before the offending one.
			return nil, badJSON(b, int(se.Offset), "is not valid JSON: "+strings.TrimPrefix(se.Error(), "json: "))
		default:
			return nil, badJSON(b, int(dec.InputOffset()), "is not valid JSON")
		}
	}
	end := int(dec.InputOffset())
	if _, err := dec.Token(); err != io.EOF {
		for end < len(b) && strings.IndexByte(" \t\r\n", b[end]) >= 0 {
			end++
		}
		return nil, badJSON(b, end, "has data after the JSON document")
	}
	return v, nil
}

func parseJSONValue(dec *json.Decoder, b []byte, depth int) (any, error) {
	start := int(dec.InputOffset())
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	if depth >= maxJSONDepth {
		return nil, badJSON(b, skipSpace(b, start), fmt.Sprintf("nests deeper than %d levels", maxJSONDepth))
	}
	if d == '[' {
		arr := []any{}
		for dec.More() {
			v, err := parseJSONValue(dec, b, depth+1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		_, err := dec.Token() // ']'
		return arr, err
	}
	obj := map[string]any{}
	for dec.More() {
		at := skipSpace(b, int(dec.InputOffset()))
		kt, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := kt.(string)
		if !ok { // the decoder returns nothing else here
			return nil, badJSON(b, at, "has an object key that is not a string")
		}
		if _, dup := obj[key]; dup {
			return nil, badJSON(b, at, fmt.Sprintf("has the key %s twice in one object", quoteKey(key)))
		}
		if obj[key], err = parseJSONValue(dec, b, depth+1); err != nil {
			return nil, err
		}
	}
	_, err = dec.Token() // '}'
	return obj, err
}

// skipSpace returns the offset of the first byte at or after i that is
// neither JSON whitespace nor a separator: where the next value starts.
func skipSpace(b []byte, i int) int {
	for i < len(b) && strings.IndexByte(" \t\r\n,:", b[i]) >= 0 {
		i++
	}
	return i
}

// badJSON is the 400 for a body that is not a JSON document, naming the
// byte at offset i (0-based; -1 for none) by line, column and byte, all
// counted from 1. The column counts bytes.
func badJSON(b []byte, i int, what string) *gatehouse.Error {
	msg := what
	if i >= 0 {
		i = min(i, len(b))
		line := 1 + bytes.Count(b[:i], []byte{'\n'})
		col := i - bytes.LastIndexByte(b[:i], '\n')
		msg = fmt.Sprintf("%s at line %d, column %d (byte %d)", what, line, col, i+1)
	}
	return &gatehouse.Error{Code: gatehouse.EINVALID, Message: "The request body " + msg + ".",
		Fields: []gatehouse.FieldError{{Field: "body", Message: msg}}}
}

// printer words the validator's messages.
var printer = message.NewPrinter(language.English)

// schemaViolations is the 422 for a body that fails a schema: every
// violation the validator found, each a field (instancePath) and the
// validator's message, in document order. The problem lists the first
// gatehouse.MaxFieldErrors and counts the rest, as every problem does.
func schemaViolations(err error, doc any) error {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return gatehouse.Internal(fmt.Errorf("validating against the content schema: %w", err))
	}
	type violation struct {
		loc []string
		gatehouse.FieldError
	}
	var all []violation
	seen := map[gatehouse.FieldError]bool{}
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		// The validator nests what it found under what it was checking
		// (a property, an item, a $ref, allOf); the leaves are the
		// violations.
		if len(e.Causes) == 0 {
			f := gatehouse.FieldError{Field: instancePath(doc, e.InstanceLocation),
				Message: clip(e.ErrorKind.LocalizedString(printer), maxViolationMessage)}
			if !seen[f] { // the branches of anyOf may say the same
				seen[f] = true
				all = append(all, violation{e.InstanceLocation, f})
			}
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	// The validator's order follows map iteration: sort for a stable
	// answer, array indexes by number.
	slices.SortStableFunc(all, func(a, b violation) int {
		if c := slices.CompareFunc(a.loc, b.loc, compareToken); c != 0 {
			return c
		}
		return strings.Compare(a.Message, b.Message)
	})
	msg := fmt.Sprintf("The request body does not match this route's schema: %d violations.", len(all))
	if len(all) == 1 {
		msg = "The request body does not match this route's schema: 1 violation."
	}
	fields := make([]gatehouse.FieldError, len(all))
	for i, v := range all {
		fields[i] = v.FieldError
	}
	return &gatehouse.Error{Code: gatehouse.EUNPROCESSABLE, Message: msg, Fields: fields}
}

// compareToken orders instance location tokens: numbers (array indexes)
// by value, before names.
func compareToken(a, b string) int {
	x, errA := strconv.Atoi(a)
	y, errB := strconv.Atoi(b)
	switch {
	case errA == nil && errB == nil:
		return cmp.Compare(x, y)
	case errA == nil:
		return -1
	case errB == nil:
		return 1
	}
	return strings.Compare(a, b)
}

// clip shortens s to at most n bytes, at a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// instancePath names a location in doc in the form the admin API's errors
// use: "body" for the document itself, names joined by dots and indexes
// in brackets ("items[2].price"). A name that is not an identifier
// (letters, digits and _, not starting with a digit), or a top-level
// "body", is written as a quoted JSON string in brackets
// (`headers["content-type"]`), so that every location has one path and
// every path one location. The tokens are the validator's: which are
// indexes and which names is told by walking doc.
func instancePath(doc any, loc []string) string {
	if len(loc) == 0 {
		return "body"
	}
	var sb strings.Builder
	v := doc
	for _, tok := range loc {
		if arr, ok := v.([]any); ok {
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(arr) {
				sb.WriteByte('[')
				sb.WriteString(tok)
				sb.WriteByte(']')
				v = arr[i]
				continue
			}
		}
		obj, _ := v.(map[string]any)
		v = obj[tok]
		switch {
		case !isIdentifier(tok) || sb.Len() == 0 && tok == "body":
			sb.WriteByte('[')
			sb.WriteString(quoteKey(tok))
			sb.WriteByte(']')
		case sb.Len() == 0:
			sb.WriteString(tok)
		default:
			sb.WriteByte('.')
			sb.WriteString(tok)
		}
	}
	return sb.String()
}

func isIdentifier(s string) bool {
	if s == "" || '0' <= s[0] && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// quoteKey writes s as a JSON string, HTML characters as they are.
func quoteKey(s string) string {
	var sb strings.Builder
	sb.Grow(len(s) + 2)
	sb.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			sb.WriteByte('\\')
			sb.WriteRune(r)
		case r == '\n':
			sb.WriteString(`\n`)
		case r == '\r':
			sb.WriteString(`\r`)
		case r == '\t':
			sb.WriteString(`\t`)
		case r < 0x20:
			fmt.Fprintf(&sb, `\u%04x`, r)
		default:
			sb.WriteRune(r)
		}
	}
	sb.WriteByte('"')
	return sb.String()
}
