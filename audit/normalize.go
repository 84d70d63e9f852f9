package audit

import (
	"encoding/json"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/internal/media"
)

// MaxErrorBody is how much of an upstream's error body error
// normalisation reads for a message: over it, the problem has none.
const MaxErrorBody = 64 << 10

// MaxMessage bounds the message taken from an upstream's error body, in
// bytes: a JSON field's value, or a text/plain body (a longer text body
// is a page, not a message).
const MaxMessage = 512

// messageFields are the members of a JSON error body that carry its
// message, in the order they are tried: the conventions of common
// frameworks and APIs (OAuth's error_description before its error code).
var messageFields = []string{"message", "error_description", "detail", "error", "title", "msg", "description"}

// UpstreamMessage returns the message of an upstream's error body of the
// given Content-Type: a recognisable member of a JSON body (message,
// error_description, detail, error, title, error.message,
// errors[0].message...), or a short text/plain body; "" if it has none.
// The message is one line of printable UTF-8, at most MaxMessage bytes.
func UpstreamMessage(contentType string, body []byte) string {
	typ, sub, ok := media.ContentType([]string{contentType})
	if !ok {
		return ""
	}
	switch {
	case media.IsJSON(typ, sub):
		var v any
		if json.Unmarshal(body, &v) != nil {
			return ""
		}
		return fromJSON(v, 0)
	case strings.EqualFold(typ, "text") && strings.EqualFold(sub, "plain"):
		if len(body) > MaxMessage {
			return ""
		}
		return clean(string(body))
	}
	return ""
}

// fromJSON finds the message in a decoded JSON value: a string member of
// messageFields, or one inside an object member (error.message) or the
// first element of an array member (errors[0].message, errors[0]).
func fromJSON(v any, depth int) string {
	if depth > 2 {
		return ""
	}
	switch v := v.(type) {
	case string:
		if depth == 0 {
			return "" // a bare string is no error body anyone agreed on
		}
		if len(v) > MaxMessage {
			return ""
		}
		return clean(v)
	case map[string]any:
		for _, k := range messageFields {
			if m, ok := v[k]; ok {
				if s := fromJSON(m, depth+1); s != "" {
					return s
				}
			}
		}
		if errs, ok := v["errors"].([]any); ok && len(errs) > 0 {
			return fromJSON(errs[0], depth+1)
		}
	}
	return ""
}

// clean makes s one line of printable text: invalid UTF-8 and control
// characters become spaces, runs of space one, and the ends are trimmed.
func clean(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) || unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}
