// Package jsondoc reads a JSON body as JSON Schema validators take it
// (objects map[string]any, arrays []any, numbers json.Number), refusing
// what parsers disagree on. The content and openapi policies check
// request bodies with it, and the openapi response audit bodies.
package jsondoc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Error says why a body is not one JSON document, at byte Offset
// (0-based; -1 for none).
type Error struct {
	Offset int
	What   string
}

func (e *Error) Error() string { return e.What }

// Describe says what is wrong with b and where: the byte at Offset by
// line, column and byte, all counted from 1 (the column counts bytes).
func (e *Error) Describe(b []byte) string {
	if e.Offset < 0 {
		return e.What
	}
	i := min(e.Offset, len(b))
	line := 1 + bytes.Count(b[:i], []byte{'\n'})
	col := i - bytes.LastIndexByte(b[:i], '\n')
	return fmt.Sprintf("%s at line %d, column %d (byte %d)", e.What, line, col, i+1)
}

func fail(i int, what string) *Error { return &Error{Offset: i, What: what} }

// MaxDepth is the deepest nesting of arrays and objects Decode reads;
// deeper is refused.
const MaxDepth = 256

// Decode parses a body as exactly one JSON document, as the
// schema validator takes it (objects map[string]any, arrays []any,
// numbers json.Number). It refuses, with a 400 that says where, what
// parsers disagree on and so what could slip past the schema to an
// upstream that reads it differently: invalid UTF-8 (which encoding/json
// would silently replace), a key twice in one object (some parsers keep
// the first, others the last), data after the document, and nesting over
// MaxDepth.
func Decode(b []byte) (any, *Error) {
	if !utf8.Valid(b) {
		i := 0
		for i < len(b) {
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			i += n
		}
		return nil, fail(i, "is not valid UTF-8")
	}
	if len(bytes.TrimLeft(b, " \t\r\n")) == 0 {
		return nil, fail(-1, "is empty; a JSON document is required")
	}
	if json.Valid(b) {
		// The common case, read without encoding/json's token API, which
		// allocates for every token; what is not JSON takes the slow path
		// below, whose errors say exactly what and where.
		p := parser{b: b}
		p.space()
		v, err := p.value(0)
		if err != nil {
			return nil, err
		}
		return v, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := parseJSONValue(dec, b, 0)
	if err != nil {
		var de *Error
		var se *json.SyntaxError
		switch {
		case errors.As(err, &de):
			return nil, de
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return nil, fail(len(b), "ends before the JSON document does")
		case errors.As(err, &se):
			// Offset counts the bytes before the offending one.
			return nil, fail(int(se.Offset), "is not valid JSON: "+strings.TrimPrefix(se.Error(), "json: "))
		default:
			return nil, fail(int(dec.InputOffset()), "is not valid JSON")
		}
	}
	end := int(dec.InputOffset())
	if _, err := dec.Token(); err != io.EOF {
		for end < len(b) && strings.IndexByte(" \t\r\n", b[end]) >= 0 {
			end++
		}
		return nil, fail(end, "has data after the JSON document")
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
	if depth >= MaxDepth {
		return nil, fail(skipSpace(b, start), fmt.Sprintf("nests deeper than %d levels", MaxDepth))
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
			return nil, fail(at, "has an object key that is not a string")
		}
		if _, dup := obj[key]; dup {
			return nil, fail(at, fmt.Sprintf("has the key %s twice in one object", QuoteKey(key)))
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

// QuoteKey writes s as a JSON string, HTML characters as they are.
func QuoteKey(s string) string {
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

// parser reads a document json.Valid accepted: it needs to find only what
// JSON allows and this package refuses (a key twice, nesting too deep).
type parser struct {
	b []byte
	i int
}

func (p *parser) space() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\r' || p.b[p.i] == '\n') {
		p.i++
	}
}

func (p *parser) value(depth int) (any, *Error) {
	switch c := p.b[p.i]; c {
	case '{', '[':
		if depth >= MaxDepth {
			return nil, fail(p.i, fmt.Sprintf("nests deeper than %d levels", MaxDepth))
		}
		p.i++
		p.space()
		if c == '[' {
			arr := []any{}
			for p.b[p.i] != ']' {
				v, err := p.value(depth + 1)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
				p.space()
				if p.b[p.i] == ',' {
					p.i++
					p.space()
				}
			}
			p.i++
			return arr, nil
		}
		obj := map[string]any{}
		for p.b[p.i] != '}' {
			at := p.i
			key := p.string()
			if _, dup := obj[key]; dup {
				return nil, fail(at, fmt.Sprintf("has the key %s twice in one object", QuoteKey(key)))
			}
			p.space()
			p.i++ // ':'
			p.space()
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			obj[key] = v
			p.space()
			if p.b[p.i] == ',' {
				p.i++
				p.space()
			}
		}
		p.i++
		return obj, nil
	case '"':
		return p.string(), nil
	case 't':
		p.i += len("true")
		return true, nil
	case 'f':
		p.i += len("false")
		return false, nil
	case 'n':
		p.i += len("null")
		return nil, nil
	}
	start := p.i
	for p.i < len(p.b) && strings.IndexByte("+-.0123456789eE", p.b[p.i]) >= 0 {
		p.i++
	}
	return json.Number(p.b[start:p.i]), nil
}

// string reads a string; one with escapes is decoded by encoding/json,
// so that it reads exactly as there (lone surrogates included).
func (p *parser) string() string {
	start := p.i
	p.i++
	escaped := false
	for p.b[p.i] != '"' {
		if p.b[p.i] == '\\' {
			escaped = true
			p.i++
		}
		p.i++
	}
	p.i++
	if !escaped {
		return string(p.b[start+1 : p.i-1])
	}
	var s string
	_ = json.Unmarshal(p.b[start:p.i], &s) // valid: json.Valid said so
	return s
}
