package strictjson

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func nested(open, close string, n int, inner string) string {
	return strings.Repeat(open, n) + inner + strings.Repeat(close, n)
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		desc string
		in   string
		want any
	}{
		{"empty object", `{}`, map[string]any{}},
		{"empty array", `[]`, []any{}},
		{"null", `null`, nil},
		{"true", `true`, true},
		{"false", ` false `, false},
		{"integer kept as json.Number", `42`, json.Number("42")},
		{"negative exponent number kept verbatim", `-1.5e3`, json.Number("-1.5e3")},
		{"huge number kept verbatim", `1e400`, json.Number("1e400")},
		{"string", `"héllo"`, "héllo"},
		{"escaped string", `"a\"b\\c\u00e9\n"`, "a\"b\\cé\n"},
		{"surrounding whitespace", " \t\r\n{\"a\":1}\n\n", map[string]any{"a": json.Number("1")}},
		{"nested document", `{"a":[1,{"b":null,"c":"d"}],"e":{"f":true}}`, map[string]any{
			"a": []any{json.Number("1"), map[string]any{"b": nil, "c": "d"}},
			"e": map[string]any{"f": true},
		}},
		{"same key in different objects", `{"a":{"x":1},"b":{"x":2}}`, map[string]any{
			"a": map[string]any{"x": json.Number("1")}, "b": map[string]any{"x": json.Number("2")},
		}},
		{"same key in sibling array elements", `[{"x":1},{"x":2}]`, []any{
			map[string]any{"x": json.Number("1")}, map[string]any{"x": json.Number("2")},
		}},
		{"keys differing only in case are distinct", `{"a":1,"A":2}`, map[string]any{"a": json.Number("1"), "A": json.Number("2")}},
		{"exactly MaxDepth arrays", nested("[", "]", MaxDepth, ""), nil},
		{"exactly MaxDepth objects", nested(`{"a":`, "}", MaxDepth-1, "{}"), nil},
		{"exactly MaxDepth with a scalar innermost", nested("[", "]", MaxDepth, "1"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if strings.Contains(tt.desc, "MaxDepth") {
				return // only acceptance matters
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q) = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		desc string
		in   string
		want string // substring of the message; the field is always "body"
	}{
		{"empty body", ``, "is empty"},
		{"whitespace only", " \n\t\r ", "is empty"},

		{"invalid UTF-8 in a string", "\"\xff\"", "is not valid UTF-8"},
		{"truncated UTF-8 sequence", "{\"a\":\"\xc3\"}", "is not valid UTF-8"},
		{"invalid UTF-8 in a key", "{\"\xfe\":1}", "is not valid UTF-8"},
		{"invalid UTF-8 outside strings", "{}\xff", "is not valid UTF-8"},
		{"UTF-16 surrogate encoded in UTF-8", "\"\xed\xa0\x80\"", "is not valid UTF-8"},

		{"truncated object", `{"a":1`, "is truncated"},
		{"truncated after colon", `{"a":`, "is truncated"},
		{"truncated after key", `{"a"`, "is truncated"},
		{"truncated open brace", `{`, "is truncated"},
		{"truncated array", `[1,2`, "is truncated"},
		{"truncated string", `"abc`, "is truncated"},
		{"truncated nested", `{"a":[{"b":1}`, "is truncated"},

		{"unquoted key", `{a:1}`, "is malformed JSON"},
		{"single quotes", `{'a':1}`, "is malformed JSON"},
		{"trailing comma in array", `[1,]`, "is malformed JSON"},
		{"trailing comma in object", `{"a":1,}`, "is malformed JSON"},
		{"leading comma", `[,1]`, "is malformed JSON"},
		{"missing colon", `{"a" 1}`, "is malformed JSON"},
		{"missing comma in array", `[1 2]`, "is malformed JSON"},
		{"missing comma in object", `{"a":1 "b":2}`, "is malformed JSON"},
		{"mismatched bracket", `{"a":1]`, "is malformed JSON"},
		{"non-string key", `{1:2}`, "is malformed JSON"},
		{"leading zero", `01`, "data after"},
		{"NaN", `NaN`, "is malformed JSON"},
		{"bare word", `nulx`, "is malformed JSON"},
		{"truncated literal", `nul`, "is truncated"},
		{"control character in string", "\"a\x01b\"", "is malformed JSON"},
		{"invalid escape", `"\x"`, "is malformed JSON"},
		{"lone closing bracket", `]`, "is malformed JSON"},
		{"byte order mark", "\ufeff{}", "is malformed JSON"},

		{"two objects", `{} {}`, "has data after the JSON document"},
		{"two numbers", `1 2`, "has data after the JSON document"},
		{"garbage after object", `{"a":1}x`, "has data after the JSON document"},
		{"extra closing bracket", `[]]`, "has data after the JSON document"},
		{"extra closing brace", `{}}`, "has data after the JSON document"},
		{"comment after document", `{} // c`, "has data after the JSON document"},
		{"null twice", `null null`, "has data after the JSON document"},

		{"duplicate key", `{"a":1,"a":2}`, `has the key "a" twice`},
		{"duplicate key with equal values", `{"a":1,"a":1}`, `has the key "a" twice`},
		{"duplicate key nested in object", `{"x":{"b":1,"b":2}}`, `has the key "b" twice`},
		{"duplicate key nested in array", `[{"c":null,"c":null}]`, `has the key "c" twice`},
		{"duplicate key deep", `{"a":[{"b":{"c":{"d":1,"d":[]}}}]}`, `has the key "d" twice`},
		{"duplicate key spelled with an escape", `{"a":1,"\u0061":2}`, `has the key "a" twice`},
		{"duplicate empty key", `{"":1,"":2}`, `has the key "" twice`},

		{"MaxDepth+1 arrays", nested("[", "]", MaxDepth+1, ""), "nests deeper than 32 levels"},
		{"MaxDepth+1 objects", nested(`{"a":`, "}", MaxDepth, "{}"), "nests deeper than 32 levels"},
		{"MaxDepth+1 mixed", nested(`[{"a":`, "}]", MaxDepth/2, "[]"), "nests deeper than 32 levels"},
		{"very deep and unterminated", strings.Repeat("[", 100000), "nests deeper than 32 levels"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse(%q) = %#v, want an error containing %q", tt.in, got, tt.want)
			}
			var fe FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Parse(%q) error %T %v, want a FieldError", tt.in, err, err)
			}
			if fe.Field != "body" {
				t.Errorf("Parse(%q) field = %q, want body", tt.in, fe.Field)
			}
			if !strings.Contains(fe.Message, tt.want) {
				t.Errorf("Parse(%q) message = %q, want it to contain %q", tt.in, fe.Message, tt.want)
			}
			if got != nil {
				t.Errorf("Parse(%q) returned a tree %#v along with an error", tt.in, got)
			}
		})
	}
}

func TestFieldErrorString(t *testing.T) {
	if got := (FieldError{Field: "a.b", Message: "is bad"}).Error(); got != "a.b: is bad" {
		t.Errorf("Error() = %q", got)
	}
}

// Types for the Assign tests.

type target struct {
	URL    string `json:"url"`
	Weight int    `json:"weight"`
}

func (t *target) SetDefaults() { t.Weight = 100 }

type config struct {
	Per      string `json:"per"`
	Requests int    `json:"requests"`
}

type embeddedMeta struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
}

type doc struct {
	embeddedMeta
	Name    string            `json:"name"`
	Count   int               `json:"count"`
	Small   int8              `json:"small"`
	Big     int64             `json:"big"`
	Ratio   float64           `json:"ratio"`
	Ratio32 float32           `json:"ratio32"`
	On      bool              `json:"on"`
	Targets []target          `json:"targets"`
	Matrix  [][]int           `json:"matrix"`
	Config  config            `json:"config"`
	PConfig *config           `json:"pconfig"`
	PTarget *target           `json:"ptarget"`
	Tags    map[string]target `json:"tags"`
	Labels  map[string]string `json:"labels"`
	When    time.Time         `json:"when"`
	WhenP   *time.Time        `json:"when_p"`
	Raw     json.RawMessage   `json:"raw"`
	Any     any               `json:"any"`
	Complex complex128        `json:"complex"`
	Hidden  string            `json:"-"`
	NoTag   string
	//lint:ignore U1000 present to prove unexported fields cannot be decoded
	private string
}

func fieldNames(errs []FieldError) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Field
	}
	return out
}

func TestAssign(t *testing.T) {
	date := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	tests := []struct {
		desc  string
		in    string
		start func(*doc) // defaults before decoding
		want  []FieldError
		check func(t *testing.T, d *doc)
	}{
		{
			desc: "every unknown field and wrong type reported at once, sorted by path",
			in: `{"nmae":"x","count":"3","on":1,"targets":[{"url":"a"},{"url":1,"weight":"x","extra":1}],
				"config":{"per":5,"x":1},"tags":{"t":{"weight":true}},"matrix":[[1],[2,"z"]]}`,
			want: []FieldError{
				{Field: "config.per", Message: "must be a string"},
				{Field: "config.x", Message: "is not a known field"},
				{Field: "count", Message: "must be an integer"},
				{Field: "matrix[1][1]", Message: "must be an integer"},
				{Field: "nmae", Message: "is not a known field"},
				{Field: "on", Message: "must be true or false"},
				{Field: "tags.t.weight", Message: "must be an integer"},
				{Field: "targets[1].extra", Message: "is not a known field"},
				{Field: "targets[1].url", Message: "must be a string"},
				{Field: "targets[1].weight", Message: "must be an integer"},
			},
		},
		{
			desc: "valid fields are still assigned when others fail",
			in:   `{"name":"n","count":"x","config":{"per":"minute","bogus":1}}`,
			want: []FieldError{{Field: "config.bogus", Message: "is not a known field"}, {Field: "count", Message: "must be an integer"}},
			check: func(t *testing.T, d *doc) {
				if d.Name != "n" || d.Config.Per != "minute" {
					t.Errorf("name %q per %q", d.Name, d.Config.Per)
				}
			},
		},
		{
			desc: "top level must be an object",
			in:   `[1]`,
			want: []FieldError{{Field: "body", Message: "must be an object"}},
		},
		{
			desc: "top level scalar",
			in:   `"x"`,
			want: []FieldError{{Field: "body", Message: "must be an object"}},
		},
		{
			desc:  "top-level null changes nothing",
			in:    `null`,
			start: func(d *doc) { d.Name = "keep" },
			check: func(t *testing.T, d *doc) {
				if d.Name != "keep" {
					t.Errorf("name = %q", d.Name)
				}
			},
		},
		{
			desc:  "absent and null fields keep their defaults",
			in:    `{"name":null,"config":{"per":null},"targets":null,"when":null,"pconfig":null}`,
			start: func(d *doc) { d.Name, d.Count, d.Config.Per, d.Targets = "def", 7, "hour", []target{{"u", 1}} },
			check: func(t *testing.T, d *doc) {
				if d.Name != "def" || d.Count != 7 || d.Config.Per != "hour" || len(d.Targets) != 1 || !d.When.IsZero() || d.PConfig != nil {
					t.Errorf("defaults lost: %+v", d)
				}
			},
		},
		{
			desc: "slice elements created get SetDefaults before being filled",
			in:   `{"targets":[{"url":"a"},{"url":"b","weight":0},{"url":"c","weight":null},{}]}`,
			check: func(t *testing.T, d *doc) {
				want := []target{{"a", 100}, {"b", 0}, {"c", 100}, {"", 100}}
				if !reflect.DeepEqual(d.Targets, want) {
					t.Errorf("targets = %+v, want %+v", d.Targets, want)
				}
			},
		},
		{
			desc: "map values and pointer targets get SetDefaults too",
			in:   `{"tags":{"x":{"url":"u"},"y":{"weight":5}},"ptarget":{"url":"p"}}`,
			check: func(t *testing.T, d *doc) {
				want := map[string]target{"x": {"u", 100}, "y": {"", 5}}
				if !reflect.DeepEqual(d.Tags, want) {
					t.Errorf("tags = %+v, want %+v", d.Tags, want)
				}
				if d.PTarget == nil || *d.PTarget != (target{"p", 100}) {
					t.Errorf("ptarget = %+v", d.PTarget)
				}
			},
		},
		{
			desc:  "an array replaces the default slice",
			in:    `{"targets":[]}`,
			start: func(d *doc) { d.Targets = []target{{"old", 1}} },
			check: func(t *testing.T, d *doc) {
				if d.Targets == nil || len(d.Targets) != 0 {
					t.Errorf("targets = %#v, want empty non-nil", d.Targets)
				}
			},
		},
		{
			desc: "null array elements are rejected",
			in:   `{"targets":[{"url":"a"},null],"matrix":[null,[null]]}`,
			want: []FieldError{
				{Field: "matrix[0]", Message: "must not be null"},
				{Field: "matrix[1][0]", Message: "must not be null"},
				{Field: "targets[1]", Message: "must not be null"},
			},
		},
		{
			desc: "wrong container types",
			in:   `{"targets":{},"config":[],"tags":[],"labels":"x","pconfig":1}`,
			want: []FieldError{
				{Field: "config", Message: "must be an object"},
				{Field: "labels", Message: "must be an object"},
				{Field: "pconfig", Message: "must be an object"},
				{Field: "tags", Message: "must be an object"},
				{Field: "targets", Message: "must be an array"},
			},
		},
		{
			desc: "integers at the limits",
			in:   `{"count":-9223372036854775808,"big":9223372036854775807,"small":-128,"version":-0}`,
			check: func(t *testing.T, d *doc) {
				if d.Count != math.MinInt64 || d.Big != math.MaxInt64 || d.Small != -128 || d.Version != 0 {
					t.Errorf("got %d %d %d %d", d.Count, d.Big, d.Small, d.Version)
				}
			},
		},
		{
			desc: "integer overflow and non-integers",
			in:   `{"count":9223372036854775808,"big":-9223372036854775809,"small":128,"version":1.5,"matrix":[[1e2,2.0,-1]]}`,
			want: []FieldError{
				{Field: "big", Message: "must be an integer in range"},
				{Field: "count", Message: "must be an integer in range"},
				{Field: "matrix[0][0]", Message: "must be an integer in range"},
				{Field: "matrix[0][1]", Message: "must be an integer in range"},
				{Field: "small", Message: "must be an integer in range"},
				{Field: "version", Message: "must be an integer in range"},
			},
		},
		{
			desc: "int8 underflow",
			in:   `{"small":-129}`,
			want: []FieldError{{Field: "small", Message: "must be an integer in range"}},
		},
		{
			desc: "floats",
			in:   `{"ratio":1.5e-3,"ratio32":2}`,
			check: func(t *testing.T, d *doc) {
				if d.Ratio != 1.5e-3 || d.Ratio32 != 2 {
					t.Errorf("ratio %v %v", d.Ratio, d.Ratio32)
				}
			},
		},
		{
			desc: "float out of range and wrong type",
			in:   `{"ratio":1e400,"ratio32":"1"}`,
			want: []FieldError{{Field: "ratio", Message: "must be a number in range"}, {Field: "ratio32", Message: "must be a number"}},
		},
		{
			desc: "time.Time parsed from RFC 3339",
			in:   `{"when":"2026-01-02T15:04:05Z","when_p":"2026-01-02T16:04:05.5+01:00"}`,
			check: func(t *testing.T, d *doc) {
				if !d.When.Equal(date) {
					t.Errorf("when = %v", d.When)
				}
				if d.WhenP == nil || !d.WhenP.Equal(date.Add(500*time.Millisecond)) {
					t.Errorf("when_p = %v", d.WhenP)
				}
			},
		},
		{
			desc: "times that are not RFC 3339",
			in:   `{"when":"2026-01-02","when_p":1767366245}`,
			want: []FieldError{
				{Field: "when", Message: "must be an RFC 3339 time such as 2026-01-02T15:04:05Z"},
				{Field: "when_p", Message: "must be a string holding an RFC 3339 time"},
			},
		},
		{
			desc: "time with an out-of-range offset (it could not be encoded again)",
			in:   `{"when":"2026-01-02T15:04:05+24:00","when_p":"2026-01-02T15:04:05-23:60"}`,
			want: []FieldError{
				{Field: "when", Message: "must be an RFC 3339 time such as 2026-01-02T15:04:05Z"},
				{Field: "when_p", Message: "must be an RFC 3339 time such as 2026-01-02T15:04:05Z"},
			},
		},
		{
			desc: "time with a one-digit hour or comma fraction is not RFC 3339",
			in:   `{"when":"2026-01-02T1:04:05Z","when_p":"2026-01-02T15:04:05,5Z"}`,
			want: []FieldError{
				{Field: "when", Message: "must be an RFC 3339 time such as 2026-01-02T15:04:05Z"},
				{Field: "when_p", Message: "must be an RFC 3339 time such as 2026-01-02T15:04:05Z"},
			},
		},
		{
			desc: "json.RawMessage receives the subtree, compacted",
			in:   `{"raw": { "b" : [1, 2.50, "x"], "a" : {"c": null} } }`,
			check: func(t *testing.T, d *doc) {
				if string(d.Raw) != `{"a":{"c":null},"b":[1,2.50,"x"]}` {
					t.Errorf("raw = %s", d.Raw)
				}
			},
		},
		{
			desc: "json.RawMessage takes scalars; null leaves it unset",
			in:   `{"raw":"s<&>"}`,
			check: func(t *testing.T, d *doc) {
				var s string
				if err := json.Unmarshal(d.Raw, &s); err != nil || s != "s<&>" {
					t.Errorf("raw = %s (%v)", d.Raw, err)
				}
			},
		},
		{
			desc: "json.RawMessage null",
			in:   `{"raw":null}`,
			check: func(t *testing.T, d *doc) {
				if d.Raw != nil {
					t.Errorf("raw = %s, want nil", d.Raw)
				}
			},
		},
		{
			desc: "interface field receives the tree",
			in:   `{"any":{"k":[1,"v",true]}}`,
			check: func(t *testing.T, d *doc) {
				want := map[string]any{"k": []any{json.Number("1"), "v", true}}
				if !reflect.DeepEqual(d.Any, want) {
					t.Errorf("any = %#v", d.Any)
				}
			},
		},
		{
			desc: "embedded struct fields are promoted",
			in:   `{"id":"x1","version":3,"name":"n"}`,
			check: func(t *testing.T, d *doc) {
				if d.ID != "x1" || d.Version != 3 || d.Name != "n" {
					t.Errorf("got %+v", d)
				}
			},
		},
		{
			desc: "untagged field by its Go name, matched case-sensitively",
			in:   `{"NoTag":"a","notag":"b","Name":"c"}`,
			want: []FieldError{{Field: "Name", Message: "is not a known field"}, {Field: "notag", Message: "is not a known field"}},
			check: func(t *testing.T, d *doc) {
				if d.NoTag != "a" {
					t.Errorf("NoTag = %q", d.NoTag)
				}
			},
		},
		{
			desc: "fields tagged - and unexported fields are unknown",
			in:   `{"Hidden":"a","-":"b","private":"c","embeddedMeta":{}}`,
			want: []FieldError{
				{Field: "-", Message: "is not a known field"},
				{Field: "Hidden", Message: "is not a known field"},
				{Field: "embeddedMeta", Message: "is not a known field"},
				{Field: "private", Message: "is not a known field"},
			},
		},
		{
			desc: "an empty key is named, not an empty path",
			in:   `{"":1,"config":{"":2},"labels":{"":3}}`,
			want: []FieldError{
				{Field: `""`, Message: "is not a known field"},
				{Field: `config.""`, Message: "is not a known field"},
				{Field: `labels.""`, Message: "must be a string"},
			},
		},
		{
			desc: "a kind strictjson cannot decode",
			in:   `{"complex":1}`,
			want: []FieldError{{Field: "complex", Message: "cannot be decoded"}},
		},
		{
			desc: "map keys appear in paths",
			in:   `{"labels":{"a":"x","b":2}}`,
			want: []FieldError{{Field: "labels.b", Message: "must be a string"}},
			check: func(t *testing.T, d *doc) {
				if d.Labels["a"] != "x" {
					t.Errorf("labels = %v", d.Labels)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			tree, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			var d doc
			if tt.start != nil {
				tt.start(&d)
			}
			got := Assign(tree, &d)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Assign errors:\n got %v\nwant %v", got, tt.want)
			}
			if tt.check != nil {
				tt.check(t, &d)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		desc string
		in   string
		want []string
	}{
		{"valid", `{"name":"a","targets":[{"url":"u"}]}`, nil},
		{"parse error becomes one body error", `{"name":"a"`, []string{"body"}},
		{"duplicate key becomes one body error", `{"name":"a","name":"b"}`, []string{"body"}},
		{"assign errors", `{"name":1,"x":2}`, []string{"name", "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			var d doc
			errs := Decode([]byte(tt.in), &d)
			if got := fieldNames(errs); !reflect.DeepEqual(got, append([]string{}, tt.want...)) {
				t.Errorf("Decode(%s) fields = %v (%v), want %v", tt.in, got, errs, tt.want)
			}
			for _, e := range errs {
				if e.Message == "" {
					t.Errorf("empty message for %s", e.Field)
				}
			}
		})
	}
}

func TestToTree(t *testing.T) {
	got, err := ToTree(struct {
		A int      `json:"a"`
		B []string `json:"b"`
		C *int     `json:"c"`
	}{A: 1, B: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": json.Number("1"), "b": []any{"x"}, "c": nil}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ToTree = %#v, want %#v", got, want)
	}
	if _, err := ToTree(make(chan int)); err == nil {
		t.Error("ToTree(chan) succeeded")
	}
}

func mustParse(t *testing.T, s string) any {
	t.Helper()
	v, err := Parse([]byte(s))
	if err != nil {
		t.Fatalf("Parse(%s): %v", s, err)
	}
	return v
}

func TestMerge(t *testing.T) {
	tests := []struct {
		desc                    string
		target, patch, expected string
	}{
		// RFC 7396, Appendix A.
		{"A.1 replace a member", `{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
		{"A.2 add a member", `{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`},
		{"A.3 remove a member", `{"a":"b"}`, `{"a":null}`, `{}`},
		{"A.4 remove one of two", `{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`},
		{"A.5 array replaced by string", `{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`},
		{"A.6 string replaced by array", `{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`},
		{"A.7 nested merge", `{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`},
		{"A.8 arrays are replaced, not merged", `{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
		{"A.9 array replaces array", `["a","b"]`, `["c","d"]`, `["c","d"]`},
		{"A.10 array patch replaces object", `{"a":"b"}`, `["c"]`, `["c"]`},
		{"A.11 null patch replaces everything", `{"a":"foo"}`, `null`, `null`},
		{"A.12 string patch replaces everything", `{"a":"foo"}`, `"bar"`, `"bar"`},
		{"A.13 nulls in the target survive", `{"e":null}`, `{"a":1}`, `{"e":null,"a":1}`},
		{"A.14 object patch on an array target", `[1,2]`, `{"a":"b","c":null}`, `{"a":"b"}`},
		{"A.15 nested nulls in a new member vanish", `{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`},
		// Beyond the appendix.
		{"empty patch changes nothing", `{"a":{"b":[1]}}`, `{}`, `{"a":{"b":[1]}}`},
		{"object patch on a scalar target", `"s"`, `{"a":1}`, `{"a":1}`},
		{"object patch on a null target", `null`, `{"a":{"b":null,"c":1}}`, `{"a":{"c":1}}`},
		{"removing an absent member", `{"a":1}`, `{"z":null}`, `{"a":1}`},
		{"object replaced by scalar", `{"a":{"b":1}}`, `{"a":5}`, `{"a":5}`},
		{"scalar replaced by object, nulls dropped", `{"a":5}`, `{"a":{"b":null,"c":2}}`, `{"a":{"c":2}}`},
		{"deep merge keeps siblings", `{"a":{"b":{"c":1,"d":2},"e":3}}`, `{"a":{"b":{"c":9}}}`, `{"a":{"b":{"c":9,"d":2},"e":3}}`},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			target, patch := mustParse(t, tt.target), mustParse(t, tt.patch)
			got := Merge(target, patch)
			if want := mustParse(t, tt.expected); !reflect.DeepEqual(got, want) {
				t.Errorf("Merge(%s, %s) = %#v, want %s", tt.target, tt.patch, got, tt.expected)
			}
			// Neither input is modified.
			if !reflect.DeepEqual(target, mustParse(t, tt.target)) {
				t.Errorf("target modified: %#v", target)
			}
			if !reflect.DeepEqual(patch, mustParse(t, tt.patch)) {
				t.Errorf("patch modified: %#v", patch)
			}
			// Applying the same patch again changes nothing.
			if again := Merge(got, patch); !reflect.DeepEqual(again, got) {
				t.Errorf("not idempotent: %#v then %#v", got, again)
			}
		})
	}
}

func TestMergeDoesNotShareMergedObjects(t *testing.T) {
	target := mustParse(t, `{"a":{"b":1},"c":{"d":2}}`)
	patch := mustParse(t, `{"a":{"x":3}}`)
	out := Merge(target, patch).(map[string]any)
	// The merged member is a new map: changing it leaves the target alone.
	out["a"].(map[string]any)["b"] = "changed"
	if target.(map[string]any)["a"].(map[string]any)["b"] != json.Number("1") {
		t.Error("Merge result shares a merged object with the target")
	}
	out["new"] = true
	if _, ok := target.(map[string]any)["new"]; ok {
		t.Error("Merge result is the target map itself")
	}
}

func TestDecodeRefusesATopLevelValueThatIsNotAnObject(t *testing.T) {
	for in, want := range map[string]string{
		`null`:  "must be a JSON object, not null",
		`[]`:    "must be a JSON object, not an array",
		`"x"`:   "must be a JSON object, not a string",
		`1.5`:   "must be a JSON object, not a number",
		`false`: "must be a JSON object, not a boolean",
	} {
		var d doc
		errs := Decode([]byte(in), &d)
		if len(errs) != 1 || errs[0] != (FieldError{Field: "body", Message: want}) {
			t.Errorf("Decode(%s) = %v; want [body: %s]", in, errs, want)
		}
	}
}

func TestAssignListsAtMostMaxErrorsAndCountsTheRest(t *testing.T) {
	const bad = 5000
	in := `{"targets":[` + strings.Repeat(`{"weight":"x"},`, bad-1) + `{"weight":"x"}],"nmae":1}`
	var d doc
	errs := Decode([]byte(in), &d)
	if len(errs) != MaxErrors+1 {
		t.Fatalf("got %d errors; want %d and one counting the rest", len(errs), MaxErrors+1)
	}
	// Fields are walked in order, so the first errors are always the same.
	if errs[0].Field != "nmae" || errs[1].Field != "targets[0].weight" {
		t.Errorf("first errors are %v, %v; want nmae, targets[0].weight", errs[0], errs[1])
	}
	last := errs[MaxErrors]
	want := fmt.Sprintf("has %d more errors, not listed: only the first %d are", bad+1-MaxErrors, MaxErrors)
	if last != (FieldError{Field: "body", Message: want, Unlisted: bad + 1 - MaxErrors}) {
		t.Errorf("last error is %v; want body: %s", last, want)
	}
}
