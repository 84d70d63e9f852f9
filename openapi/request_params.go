package openapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse/internal/jsondoc"
)

// Decoding a parameter: find its raw value(s) in the request, split them
// as its style says (on the escaped text, so that an escaped separator
// stays inside its piece), unescape the pieces and turn each into the
// JSON type its schema expects. What cannot be read is a violation with
// the parameter's field; what can is validated by its schema.

// paramValue decodes p from r; path is the raw value of a path parameter.
// ok is false when the parameter is absent.
func (p *param) value(r *http.Request, path string) (v any, ok bool, msg string) {
	switch p.in {
	case "path":
		return p.fromPath(path)
	case "query":
		return p.fromQuery(r.URL.RawQuery)
	case "header":
		vals := r.Header[p.name]
		if len(vals) == 0 {
			return nil, false, ""
		}
		return p.fromList(strings.Join(vals, ","), ",", p.explode, encNone)
	default:
		raw, ok := cookie(r.Header["Cookie"], p.name)
		if !ok {
			return nil, false, ""
		}
		return p.fromList(raw, ",", p.explode, encNone)
	}
}

func (p *param) fromPath(raw string) (any, bool, string) {
	switch p.style {
	case "label":
		if !strings.HasPrefix(raw, ".") {
			return nil, true, "must start with . (label style)"
		}
		sep := ","
		if p.explode {
			sep = "."
		}
		return p.fromList(raw[1:], sep, p.explode, encPath)
	case "matrix":
		prefix := ";" + p.name + "="
		if p.shape == object && p.explode {
			if !strings.HasPrefix(raw, ";") {
				return nil, true, "must start with ; (matrix style)"
			}
			return p.fromList(raw[1:], ";", true, encPath)
		}
		if p.shape == array && p.explode {
			var items []string
			for _, piece := range strings.Split(raw, ";")[1:] {
				v, ok := strings.CutPrefix(";"+piece, prefix)
				if !ok {
					return nil, true, "must be ;" + p.name + "=value for each item (matrix style)"
				}
				items = append(items, v)
			}
			if len(items) == 0 {
				return nil, true, "must be ;" + p.name + "=value for each item (matrix style)"
			}
			return p.items(items, encPath)
		}
		v, ok := strings.CutPrefix(raw, prefix)
		if !ok {
			return nil, true, "must be " + prefix + "value (matrix style)"
		}
		return p.fromList(v, ",", false, encPath)
	}
	return p.fromList(raw, ",", p.explode, encPath)
}

// fromList reads a value sent as one string: a primitive whole, an array
// split at sep, an object as name,value pairs split at sep, or (explode)
// as name=value pairs.
func (p *param) fromList(raw, sep string, explode bool, enc encoding) (any, bool, string) {
	switch p.shape {
	case primitive:
		if p.jsonContent {
			return p.fromJSON(raw, enc)
		}
		s, ok := unescape(raw, enc)
		if !ok {
			return nil, true, "is not correctly percent-encoded"
		}
		return coerce(s, p.types), true, ""
	case array:
		if raw == "" {
			return []any{}, true, ""
		}
		return p.items(strings.Split(raw, sep), enc)
	}
	obj := map[string]any{}
	if raw == "" {
		return obj, true, ""
	}
	pieces := strings.Split(raw, sep)
	if explode {
		for _, piece := range pieces {
			k, v, ok := strings.Cut(piece, "=")
			if !ok {
				return nil, true, "must be name=value pairs"
			}
			if msg := p.setProp(obj, k, v, enc); msg != "" {
				return nil, true, msg
			}
		}
		return obj, true, ""
	}
	if len(pieces)%2 != 0 {
		return nil, true, "must be name,value pairs"
	}
	for i := 0; i < len(pieces); i += 2 {
		if msg := p.setProp(obj, pieces[i], pieces[i+1], enc); msg != "" {
			return nil, true, msg
		}
	}
	return obj, true, ""
}

func (p *param) items(raw []string, enc encoding) (any, bool, string) {
	out := make([]any, len(raw))
	for i, r := range raw {
		s, ok := unescape(r, enc)
		if !ok {
			return nil, true, "is not correctly percent-encoded"
		}
		out[i] = coerce(s, p.types)
	}
	return out, true, ""
}

func (p *param) setProp(obj map[string]any, k, v string, enc encoding) string {
	name, ok1 := unescape(k, enc)
	val, ok2 := unescape(v, enc)
	if !ok1 || !ok2 {
		return "is not correctly percent-encoded"
	}
	t, ok := p.props[name]
	if !ok {
		t = p.types
	}
	obj[name] = coerce(val, t)
	return ""
}

func (p *param) fromJSON(raw string, enc encoding) (any, bool, string) {
	s, ok := unescape(raw, enc)
	if !ok {
		return nil, true, "is not correctly percent-encoded"
	}
	b := []byte(s)
	v, err := jsondoc.Decode(b)
	if err != nil {
		return nil, true, err.Describe(b)
	}
	return v, true, ""
}

// fromQuery finds the parameter in a raw query string.
func (p *param) fromQuery(q string) (any, bool, string) {
	switch {
	case p.style == "deepObject":
		return p.deepObject(q)
	case p.shape == object && p.explode:
		// Exploded form objects are the properties as fields of their own.
		obj := map[string]any{}
		found := false
		for q != "" {
			var k, v string
			k, v, q = nextPair(q)
			name, ok := unescape(k, encQuery)
			if _, known := p.props[name]; !ok || !known {
				continue
			}
			found = true
			if msg := p.setProp(obj, k, v, encQuery); msg != "" {
				return nil, true, msg
			}
		}
		return obj, found, ""
	case p.shape == array && p.explode:
		var items []string
		for q != "" {
			var k, v string
			k, v, q = nextPair(q)
			if keyIs(k, p.name) {
				items = append(items, v)
			}
		}
		if items == nil {
			return nil, false, ""
		}
		return p.items(items, encQuery)
	}
	for q != "" {
		var k, v string
		k, v, q = nextPair(q)
		if !keyIs(k, p.name) {
			continue
		}
		if v == "" && p.allowEmpty {
			return nil, false, ""
		}
		switch p.style {
		case "spaceDelimited", "pipeDelimited":
			// The delimiter is sent escaped or not (%20, +, %7C):
			// unescaped first, the pieces are not unescaped again.
			s, ok := unescape(v, encQuery)
			if !ok {
				return nil, true, "is not correctly percent-encoded"
			}
			sep := " "
			if p.style == "pipeDelimited" {
				sep = "|"
			}
			return p.fromList(s, sep, false, encNone)
		}
		return p.fromList(v, ",", false, encQuery)
	}
	return nil, false, ""
}

func (p *param) deepObject(q string) (any, bool, string) {
	obj := map[string]any{}
	found := false
	for q != "" {
		var k, v string
		k, v, q = nextPair(q)
		name, ok := unescape(k, encQuery)
		if !ok {
			continue
		}
		rest, ok := strings.CutPrefix(name, p.name+"[")
		if !ok {
			continue
		}
		prop, ok := strings.CutSuffix(rest, "]")
		if !ok || strings.ContainsAny(prop, "[]") {
			return nil, true, "must be " + p.name + "[name]=value pairs (deepObject style, one level)"
		}
		found = true
		val, ok := unescape(v, encQuery)
		if !ok {
			return nil, true, "is not correctly percent-encoded"
		}
		t, known := p.props[prop]
		if !known {
			t = p.types
		}
		obj[prop] = coerce(val, t)
	}
	return obj, found, ""
}

// nextPair cuts the first name=value pair off a raw query.
func nextPair(q string) (k, v, rest string) {
	pair, rest, _ := strings.Cut(q, "&")
	k, v, _ = strings.Cut(pair, "=")
	return k, v, rest
}

// keyIs reports whether a raw query key is name, without allocating for
// a key that needs no unescaping.
func keyIs(raw, name string) bool {
	if raw == name {
		return true
	}
	if !strings.ContainsAny(raw, "%+") {
		return false
	}
	k, ok := unescape(raw, encQuery)
	return ok && k == name
}

// encoding is how a parameter's text is escaped where it is sent.
type encoding uint8

const (
	encNone  encoding = iota // headers and cookies: as sent, spaces trimmed
	encPath                  // percent-encoding
	encQuery                 // percent-encoding, and + for a space
)

// unescape decodes s, without allocating when there is nothing to decode.
func unescape(s string, enc encoding) (string, bool) {
	if enc == encNone {
		return strings.Trim(s, " \t"), true // a list's pieces after ", "
	}
	if !strings.ContainsAny(s, "%+") {
		return s, true
	}
	var u string
	var err error
	if enc == encQuery {
		u, err = url.QueryUnescape(s)
	} else {
		u, err = url.PathUnescape(s)
	}
	return u, err == nil
}

// cookie finds a cookie's raw value in Cookie fields.
func cookie(fields []string, name string) (string, bool) {
	for _, f := range fields {
		for f != "" {
			var pair string
			pair, f, _ = strings.Cut(f, ";")
			k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if ok && k == name {
				return v, true
			}
		}
	}
	return "", false
}

// coerce turns a piece of a parameter into the JSON type its schema
// expects: a number, a boolean, or (what it cannot be read as, or when
// the schema wants a string) the string itself, for the schema to judge.
func coerce(s string, t typeSet) any {
	if t&(tInteger|tNumber) != 0 && isJSONNumber(s) {
		return json.Number(s)
	}
	if t&tBoolean != 0 {
		switch s {
		case "true":
			return true
		case "false":
			return false
		}
	}
	if t&tNull != 0 && t&tString == 0 && s == "" {
		return nil
	}
	return s
}

// isJSONNumber reports whether s is a number as JSON writes it (no
// leading +, no hex, no Inf or NaN), as the schema validator reads it.
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}
