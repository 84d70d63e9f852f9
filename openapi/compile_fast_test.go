package openapi

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// fastParams are the styles document's parameters that have a fast check.
func fastParams(t testing.TB) []*param {
	s := stylesSpec(t)
	var out []*param
	seen := map[*param]bool{}
	var walk func(n *pathNode)
	walk = func(n *pathNode) {
		if n.item != nil {
			for _, op := range n.item.ops {
				for _, p := range op.params {
					if p.fast != nil && !seen[p] {
						seen[p] = true
						out = append(out, p)
					}
				}
			}
		}
		for _, c := range n.literal {
			walk(c)
		}
		for _, e := range n.mixed {
			walk(e.next)
		}
		if n.param != nil {
			walk(n.param)
		}
	}
	walk(&s.root)
	return out
}

func TestFastCheckCoversTheCommonSchemas(t *testing.T) {
	names := map[string]bool{}
	for _, p := range fastParams(t) {
		names[p.field] = true
	}
	for _, want := range []string{"query.limit", "query.big", "query.sort", "query.since", "query.code", "query.tags",
		"query.filter", "query.point", "header.X-Rate", "path.id"} {
		if !names[want] {
			t.Errorf("%s has no fast check", want)
		}
	}
	// Item is recursive: its parts are items.
	op, _ := stylesSpec(t).Find("POST", "/v2/items")
	if c, _ := op.body.content([]string{"application/json"}); c.json.fast == nil {
		t.Error("the Item body has no fast check")
	}
}

// FuzzFastCheckNeverAcceptsWhatTheValidatorRefuses: the fast check may
// only say valid where the validator does.
func FuzzFastCheckNeverAcceptsWhatTheValidatorRefuses(f *testing.F) {
	params := fastParams(f)
	for _, seed := range []string{"5", "100", "101", "-1", "0", "1.0", "1e2", "9223372036854775808", "2147483648",
		"asc", "ABC", "abcd", "2026-12-04T10:00:00Z", "", "true", "ÄÄÄ", "0.5", "99.999999999999999999", "min", "x"} {
		f.Add(seed, seed)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		for _, p := range params {
			var v any
			switch p.shape {
			case array:
				v = []any{coerce(a, p.types), coerce(b, p.types)}
			case object:
				obj := map[string]any{}
				for name, t := range p.props {
					obj[name] = coerce(a, t)
				}
				obj[b] = coerce(b, p.types)
				v = obj
			default:
				v = coerce(a, p.types)
			}
			if p.fast.check(v) {
				if err := p.schema.Validate(v); err != nil {
					raw, _ := json.Marshal(v)
					t.Fatalf("%s: the fast check accepts %s, the validator refuses: %v", p.field, raw, err)
				}
			}
		}
	})
}

// Hostile schemas are compiled in bounded work: a cycle of schemas that
// are only $refs (which the validator compiles), and an enum of
// thousands, checked as a set.
func TestHostileSchemasCompileAndCheckInBoundedWork(t *testing.T) {
	c := jsonschema.NewCompiler()
	if err := c.AddResource("cycle.json", map[string]any{"$defs": map[string]any{
		"A": map[string]any{"$ref": "#/$defs/B"}, "B": map[string]any{"$ref": "#/$defs/A"}}}); err != nil {
		t.Fatal(err)
	}
	if sch, err := c.Compile("cycle.json#/$defs/A"); err == nil && newFastCheck(sch) != nil {
		t.Fatal("a cycle of $refs has a fast check")
	}
	var enum []string
	for i := range 5000 {
		enum = append(enum, fmt.Sprintf("%q", fmt.Sprint("v", i)))
	}
	doc := `{"openapi":"3.0.3","info":{"title":"t","version":"1"},"paths":{"/a":{"get":{
		"parameters":[{"name":"e","in":"query","schema":{"type":"string","enum":[` + strings.Join(enum, ",") + `]}}],
		"responses":{"200":{"description":"ok"}}}}}}`
	s := mustCompile(t, []byte(doc), "/")
	for _, tt := range []struct {
		query string
		ok    bool
	}{{"e=v4999", true}, {"e=v5000", false}} {
		if _, ref := s.CheckHead(head("GET", "/a?"+tt.query)); (ref == nil) != tt.ok {
			t.Errorf("%s: %+v; want ok=%v", tt.query, ref, tt.ok)
		}
	}
}
