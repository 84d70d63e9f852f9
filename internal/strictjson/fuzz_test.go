package strictjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"unicode/utf8"
)

var parseSeeds = []string{
	``,
	` `,
	`null`,
	`true`,
	`0`,
	`-0.0e+00`,
	`1e400`,
	`"\u00e9\ud83d\ude00\ud800"`,
	`{}`,
	`[]`,
	`{"a":1,"b":[true,false,null],"c":{"d":"e"}}`,
	`{"a":1,"a":2}`,
	`{"a":1,"\u0061":2}`,
	`{"a":1}{}`,
	`{"a":1`,
	`[1,]`,
	`{"name":"svc","url":"http://example.com:8080/base","targets":[{"url":"http://a","weight":0}]}`,
	`{"type":"rate-limit","config":{"requests":10,"per":"minute"}}`,
	nested("[", "]", MaxDepth, ""),
	nested("[", "]", MaxDepth+1, ""),
	nested(`{"a":`, "}", MaxDepth-1, "{}"),
	"\"\xff\"",
	"\ufeff{}",
	`"a\u2028b<&>"`,
}

// normalize makes trees comparable: numbers become their float value when
// they have one, so that 1, 1.0 and 1e0 compare equal after a re-encoding
// that might canonicalise them.
func normalize(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = normalize(e)
		}
		return out
	case json.Number:
		if f, err := v.Float64(); err == nil {
			return f
		}
		return string(v)
	}
	return v
}

func depth(v any) int {
	switch v := v.(type) {
	case map[string]any:
		d := 0
		for _, e := range v {
			d = max(d, depth(e))
		}
		return d + 1
	case []any:
		d := 0
		for _, e := range v {
			d = max(d, depth(e))
		}
		return d + 1
	}
	return 0
}

func FuzzParse(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tree, err := Parse(b)
		// The fast parser and the token-based one agree on every document
		// they both see: the same tree, or the same error.
		if utf8.Valid(b) && len(bytes.TrimSpace(b)) > 0 {
			want, wantErr := parseTokens(b)
			if !reflect.DeepEqual(tree, want) || fmt.Sprint(err) != fmt.Sprint(wantErr) {
				t.Fatalf("Parse(%q) = %#v, %v; parseTokens says %#v, %v", b, tree, err, want, wantErr)
			}
		}
		if err != nil {
			fe, ok := err.(FieldError)
			if !ok || fe.Field != "body" || fe.Message == "" {
				t.Fatalf("Parse(%q) error %#v is not a body FieldError", b, err)
			}
			return
		}
		if !json.Valid(b) {
			t.Fatalf("Parse accepted %q, which json.Valid rejects", b)
		}
		if d := depth(tree); d > MaxDepth {
			t.Fatalf("Parse accepted depth %d > MaxDepth", d)
		}
		enc, err := json.Marshal(tree)
		if err != nil {
			t.Fatalf("cannot re-encode the tree of %q: %v", b, err)
		}
		again, err := Parse(enc)
		if err != nil {
			t.Fatalf("re-encoded %q (from %q) does not parse: %v", enc, b, err)
		}
		if !reflect.DeepEqual(again, tree) {
			t.Fatalf("round trip changed the tree:\n in  %q\n out %q", b, enc)
		}
		if !reflect.DeepEqual(normalize(again), normalize(tree)) {
			t.Fatalf("round trip changed the normalised tree of %q", b)
		}
		// ToTree agrees with Parse on anything Parse produced.
		viaToTree, err := ToTree(tree)
		if err != nil || !reflect.DeepEqual(viaToTree, tree) {
			t.Fatalf("ToTree(Parse(%q)) = %#v, %v", b, viaToTree, err)
		}
	})
}

func FuzzMerge(f *testing.F) {
	merges := [][2]string{
		{`{"a":"b"}`, `{"a":"c"}`},
		{`{"a":"b"}`, `{"b":"c"}`},
		{`{"a":"b"}`, `{"a":null}`},
		{`{"a":"b","b":"c"}`, `{"a":null}`},
		{`{"a":["b"]}`, `{"a":"c"}`},
		{`{"a":"c"}`, `{"a":["b"]}`},
		{`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`},
		{`{"a":[{"b":"c"}]}`, `{"a":[1]}`},
		{`["a","b"]`, `["c","d"]`},
		{`{"a":"b"}`, `["c"]`},
		{`{"a":"foo"}`, `null`},
		{`{"a":"foo"}`, `"bar"`},
		{`{"e":null}`, `{"a":1}`},
		{`[1,2]`, `{"a":"b","c":null}`},
		{`{}`, `{"a":{"bb":{"ccc":null}}}`},
		{`{"name":"svc","targets":[{"url":"http://a"}],"retries":1}`, `{"url":"http://b","targets":null}`},
		{`{"type":"acl","config":{"allow":["a"]}}`, `{"config":{"allow":null,"deny":["b"]}}`},
		{`null`, `{"a":{"b":null}}`},
	}
	for _, m := range merges {
		f.Add([]byte(m[0]), []byte(m[1]))
	}
	f.Fuzz(func(t *testing.T, tb, pb []byte) {
		target, err1 := Parse(tb)
		patch, err2 := Parse(pb)
		if err1 != nil || err2 != nil {
			return
		}
		once := Merge(target, patch)
		twice := Merge(once, patch)
		if !reflect.DeepEqual(once, twice) {
			t.Fatalf("Merge is not idempotent for %s + %s:\n once  %#v\n twice %#v", tb, pb, once, twice)
		}
		// Neither input was modified.
		if t2, _ := Parse(tb); !reflect.DeepEqual(t2, target) {
			t.Fatalf("Merge modified the target %s", tb)
		}
		if p2, _ := Parse(pb); !reflect.DeepEqual(p2, patch) {
			t.Fatalf("Merge modified the patch %s", pb)
		}
		p, isObj := patch.(map[string]any)
		if !isObj {
			if !reflect.DeepEqual(once, patch) {
				t.Fatalf("a non-object patch must replace the target")
			}
			return
		}
		out, ok := once.(map[string]any)
		if !ok {
			t.Fatalf("an object patch must give an object, got %#v", once)
		}
		for k, v := range p {
			_, present := out[k]
			if v == nil && present {
				t.Fatalf("member %q set to null in the patch survived", k)
			}
			if v != nil && !present {
				t.Fatalf("member %q of the patch is missing", k)
			}
		}
		if tm, ok := target.(map[string]any); ok {
			for k, v := range tm {
				if _, inPatch := p[k]; !inPatch && !reflect.DeepEqual(out[k], v) {
					t.Fatalf("member %q not in the patch changed", k)
				}
			}
		}
		// The result is itself a valid document.
		b, err := json.Marshal(once)
		if err != nil || !json.Valid(b) {
			t.Fatalf("result does not encode: %v", err)
		}
	})
}
