package policy

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/jsondoc"
	"github.com/gatehouse/gatehouse/internal/schemaerr"
	"github.com/gatehouse/gatehouse/internal/strictjson"
)

// maxJSONDepth is the deepest nesting a body checked against a schema
// may have; deeper is 400.
const maxJSONDepth = jsondoc.MaxDepth

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

// schemaViolations is the 422 for a body that fails a schema: the
// violations the validator found (schemaerr.FirstLeaves), each a field
// (instancePath) and the validator's message. Only the first
// gatehouse.MaxFieldErrors are worded and listed, the rest counted, as
// every problem does: a hostile body can fail a schema millions of times.
func schemaViolations(err error, doc any) error {
	leaves, unlisted, ok := schemaerr.FirstLeaves(err, func(loc []string) string { return instancePath(doc, loc) }, gatehouse.MaxFieldErrors)
	if !ok {
		return gatehouse.Internal(fmt.Errorf("validating against the content schema: %w", err))
	}
	msg := fmt.Sprintf("The request body does not match this route's schema: %d violations.", len(leaves)+unlisted)
	if len(leaves)+unlisted == 1 {
		msg = "The request body does not match this route's schema: 1 violation."
	}
	fields := make([]gatehouse.FieldError, len(leaves), len(leaves)+1)
	for i, v := range leaves {
		fields[i] = gatehouse.FieldError{Field: v.Field, Message: v.Message}
	}
	if unlisted > 0 {
		fields = append(fields, gatehouse.FieldError(strictjson.Unlisted(unlisted)))
	}
	return &gatehouse.Error{Code: gatehouse.EUNPROCESSABLE, Message: msg, Fields: fields}
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
