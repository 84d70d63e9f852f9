package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
)

// FuzzMediaTypes checks the Content-Type and Accept readers: never a
// panic; the media type of every Content-Type that mime.ParseMediaType
// reads is the one contentType reads; Accept is case-insensitive; and a
// type named first, with no weight, is always admitted.
func FuzzMediaTypes(f *testing.F) {
	for _, s := range [][2]string{
		{"application/json", "application/json"},
		{"text/html, application/xhtml+xml;q=0.9, */*;q=0.8", "application/json"},
		{`text/html;x="a,b;q=0", *; q=.2`, "text/csv"},
		{"application/*;q=0, */*", "image/*"},
		{"Application/JSON; charset=utf-8", "*/*"},
		{`a/b;q="1"`, "a/b"},
		{"", "text/plain"},
		{"{/0", "0/0"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, header, produced string) {
		p, ok := parseRange(produced)
		if !ok {
			return
		}
		produces := []mediaRange{p}
		got := acceptable([]string{header}, produces)
		if isPrintableASCII(header) && acceptable([]string{strings.ToUpper(header)}, produces) != got {
			t.Fatalf("Accept %q and its upper case disagree on %s", header, p)
		}
		if p.Type != "*" && p.Sub != "*" && !acceptable([]string{p.String() + ", " + header}, produces) {
			t.Fatalf("Accept naming %s first does not admit it: %q", p, header)
		}

		typ, sub, ok := contentType([]string{header})
		if ok && !(gatehouse.IsToken(typ) && gatehouse.IsToken(sub)) {
			t.Fatalf("contentType(%q) = %q/%q, not tokens", header, typ, sub)
		}
		if !isPrintableASCII(header) {
			return // mime trims other white space than HTTP's
		}
		// mime reads RFC 2045 tokens, which allow { and } as RFC 9110's
		// do not.
		mt, _, err := mime.ParseMediaType(header)
		mtyp, msub, _ := strings.Cut(mt, "/")
		if err == nil && gatehouse.IsToken(mtyp) && gatehouse.IsToken(msub) && mtyp != "*" && msub != "*" {
			if !ok || strings.ToLower(typ+"/"+sub) != mt {
				t.Fatalf("Content-Type %q: mime reads %q; contentType %q/%q, %v", header, mt, typ, sub, ok)
			}
		}
		if ok {
			// Parameters are not read (a duplicate one, say, which mime
			// refuses, does not matter): the type must agree with mime's
			// reading of what precedes them.
			base, _, _ := strings.Cut(header, ";")
			bmt, _, berr := mime.ParseMediaType(base)
			if berr != nil || strings.ToLower(typ+"/"+sub) != bmt {
				t.Fatalf("Content-Type %q: contentType reads %q/%q; mime reads %q, %v", header, typ, sub, bmt, berr)
			}
		}
	})
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < ' ' || s[i] > '~') && s[i] != '\t' {
			return false
		}
	}
	return true
}

// FuzzJSONBody checks the body decoder against encoding/json (it accepts
// only valid JSON and builds the same tree; what it refuses beyond that is
// a duplicate key or deep nesting, each a 400 on "body"), and that every
// location in an accepted document has a path that reads back as that
// location and no other.
func FuzzJSONBody(f *testing.F) {
	for _, s := range []string{
		`{"items":[{"price":1,"tags":["a"]}],"a.b":{"2":{"":1}},"body":[true,null]}`,
		`{"a":1,"a":2}`,
		`{"a":1,"\u0061":2}`,
		`[1, 2,]`,
		"{\"\\u0000\\n\\\"\":\"\xff\"}",
		`"\ud800"`,
		`{"x":{"y":[[[{"z":-0.0e+00}]]]}} `,
		`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		doc, err := decodeJSON(b)
		if err != nil {
			var e *gatehouse.Error
			if !errors.As(err, &e) || e.Code != gatehouse.EINVALID || len(e.Fields) != 1 || e.Fields[0].Field != "body" {
				t.Fatalf("decodeJSON(%q) error %#v is not a 400 on the body", b, err)
			}
			if json.Valid(b) && utf8.Valid(b) && len(bytes.TrimSpace(b)) > 0 {
				if m := e.Fields[0].Message; !strings.Contains(m, "twice in one object") && !strings.Contains(m, "nests deeper") {
					t.Fatalf("decodeJSON refused valid JSON %q: %s", b, m)
				}
			}
			return
		}
		if !json.Valid(b) || !utf8.Valid(b) {
			t.Fatalf("decodeJSON accepted %q", b)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var want any
		if err := dec.Decode(&want); err != nil || !reflect.DeepEqual(doc, want) {
			t.Fatalf("decodeJSON(%q) = %#v; encoding/json reads %#v (%v)", b, doc, want, err)
		}

		seen := map[string]bool{}
		var walk func(v any, loc []pathToken)
		walk = func(v any, loc []pathToken) {
			tokens := make([]string, len(loc))
			for i, tok := range loc {
				tokens[i] = tok.s
			}
			path := instancePath(doc, tokens)
			back, ok := parsePath(path)
			if !ok || !equalPath(back, loc) {
				t.Fatalf("path %s of %v reads back as %v, %v", path, loc, back, ok)
			}
			if seen[path] {
				t.Fatalf("two locations have the path %s", path)
			}
			seen[path] = true
			switch v := v.(type) {
			case []any:
				for i, e := range v {
					walk(e, append(loc[:len(loc):len(loc)], pathToken{strconv.Itoa(i), true}))
				}
			case map[string]any:
				for k, e := range v {
					walk(e, append(loc[:len(loc):len(loc)], pathToken{k, false}))
				}
			}
		}
		walk(doc, nil)
	})
}

// pathToken is one step of a location: an array index or an object key.
type pathToken struct {
	s     string
	index bool
}

func equalPath(a, b []pathToken) bool { return len(a) == 0 && len(b) == 0 || reflect.DeepEqual(a, b) }

// parsePath reads a path instancePath wrote back into its steps.
func parsePath(s string) ([]pathToken, bool) {
	if s == "body" {
		return nil, true
	}
	var out []pathToken
	for i := 0; i < len(s); {
		switch {
		case s[i] == '[' && i+1 < len(s) && s[i+1] == '"':
			j := i + 2
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j+1 >= len(s) || s[j+1] != ']' {
				return nil, false
			}
			var key string
			if json.Unmarshal([]byte(s[i+1:j+1]), &key) != nil {
				return nil, false
			}
			out = append(out, pathToken{key, false})
			i = j + 2
		case s[i] == '[':
			end := strings.IndexByte(s[i:], ']')
			if end < 2 {
				return nil, false
			}
			out = append(out, pathToken{s[i+1 : i+end], true})
			i += end + 1
		case s[i] == '.' && i > 0 || i == 0:
			if i > 0 {
				i++
			}
			j := i
			for j < len(s) && s[j] != '.' && s[j] != '[' {
				j++
			}
			if !isIdentifier(s[i:j]) || len(out) == 0 && s[i:j] == "body" {
				return nil, false
			}
			out = append(out, pathToken{s[i:j], false})
			i = j
		default:
			return nil, false
		}
	}
	return out, true
}
