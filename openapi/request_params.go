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

// value decodes p from r; path is the raw value of a path parameter,
// query the request's query, split.
// ok is false when the parameter is absent.
func (p *param) value(r *http.Request, path string, query []queryPair) (v any, ok bool, msg string) {
	switch p.in {
	case "path":
		return p.fromPath(path)
	case "query":
		return p.fromQuery(query)
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

// allowedEmpty is the value of a query parameter sent empty (?q=) where
// its allowEmptyValue says so: present, so a required one is satisfied,
// but with no value for its schema to judge.
type allowedEmpty struct{}

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

// queryPair is one name=value of a query: the name decoded, the value
// as sent.
type queryPair struct{ key, raw string }

// splitQuery splits a raw query once for all of an operation's
// parameters; a name that does not decode is kept as sent.
func splitQuery(q string, pairs []queryPair) []queryPair {
	for q != "" {
		var pair string
		pair, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(pair, "=")
		if key, ok := unescape(k, encQuery); ok {
			k = key
		}
		pairs = append(pairs, queryPair{k, v})
	}
	return pairs
}

// fromQuery finds the parameter in a query.
func (p *param) fromQuery(q []queryPair) (any, bool, string) {
	switch {
	case p.style == "deepObject":
		return p.deepObject(q)
	case p.shape == object && p.explode:
		// Exploded form objects are the properties as fields of their own.
		var obj map[string]any
		for _, kv := range q {
			if _, known := p.props[kv.key]; !known {
				continue
			}
			val, ok := unescape(kv.raw, encQuery)
			if !ok {
				return nil, true, "is not correctly percent-encoded"
			}
			if obj == nil {
				obj = map[string]any{}
			}
			obj[kv.key] = coerce(val, p.props[kv.key])
		}
		return obj, obj != nil, ""
	case p.shape == array && p.explode:
		var items []string
		for _, kv := range q {
			if kv.key == p.name {
				items = append(items, kv.raw)
			}
		}
		if items == nil {
			return nil, false, ""
		}
		return p.items(items, encQuery)
	}
	for _, kv := range q {
		if kv.key != p.name {
			continue
		}
		v := kv.raw
		if v == "" && p.allowEmpty {
			return allowedEmpty{}, true, ""
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

func (p *param) deepObject(q []queryPair) (any, bool, string) {
	var obj map[string]any
	for _, kv := range q {
		rest, ok := strings.CutPrefix(kv.key, p.deepPrefix)
		if !ok {
			continue
		}
		prop, ok := strings.CutSuffix(rest, "]")
		if !ok || strings.ContainsAny(prop, "[]") {
			return nil, true, "must be " + p.name + "[name]=value pairs (deepObject style, one level)"
		}
		val, ok := unescape(kv.raw, encQuery)
		if !ok {
			return nil, true, "is not correctly percent-encoded"
		}
		t, known := p.props[prop]
		if !known {
			t = p.types
		}
		if obj == nil {
			obj = map[string]any{}
		}
		obj[prop] = coerce(val, t)
	}
	return obj, obj != nil, ""
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
