package policy

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/jsondoc"
)

// maxJSONDepth is the deepest nesting a body checked against a schema
// may have; deeper is 400.
const maxJSONDepth = jsondoc.MaxDepth

// maxViolationMessage bounds one violation's message in bytes: messages
// quote the offending value, which may be long.
const maxViolationMessage = 200

// decodeJSON parses a request body as exactly one JSON document, as
// jsondoc.Decode reads it; what it refuses is a 400 that says where.
func decodeJSON(b []byte) (any, error) {
	v, err := jsondoc.Decode(b)
	if err != nil {
		return nil, badJSON(err.Describe(b))
	}
	return v, nil
}

// badJSON is the 400 for a body that is not a JSON document; msg says
// what and where (jsondoc.Error.Describe).
func badJSON(msg string) *gatehouse.Error {
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
			sb.WriteString(jsondoc.QuoteKey(tok))
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
