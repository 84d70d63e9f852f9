package openapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/gatehouse/gatehouse/internal/doctree"
	"github.com/gatehouse/gatehouse/internal/jsondoc"
	"github.com/gatehouse/gatehouse/internal/schemaerr"
	"github.com/gatehouse/gatehouse/internal/strictjson"
)

// Schemas are compiled by santhosh-tekuri/jsonschema, once per
// deployment, from the whole document as one JSON resource: a schema is
// compiled at its JSON pointer, so that its $refs resolve against the
// document as written. kin-openapi's VisitJSON was the other candidate:
// on 3.1 it compiles a santhosh schema on every call (per request), and
// on 3.0 it walks kin's structures with MultiErrors allocating heavily.
// A 3.0 document is read as draft 4 (whose boolean exclusiveMinimum and
// exclusiveMaximum 3.0 kept), its `nullable` rewritten as a type array;
// a 3.1 document as 2020-12, its dialect.

// docURL names the document inside the compiler.
const docURL = "gatehouse:openapi.json"

// Violation is one thing wrong with a request (or a response body): the
// field, as a parameter's location ("query.limit") or a body's JSON
// pointer ("body/items/0/price"), and what is wrong with it.
type Violation struct {
	Field   string
	Message string
	// Unlisted is set only on the entry that ends a list cut at
	// strictjson.MaxErrors: how many violations it stands for (as
	// gatehouse.FieldError's).
	Unlisted int
}

// total counts the violations vs lists and stands for.
func total(vs []Violation) int {
	n := 0
	for _, v := range vs {
		n += max(v.Unlisted, 1)
	}
	return n
}

// schemas compiles the schemas of one document.
type schemas struct {
	c *jsonschema.Compiler
	// byPointer shares a schema compiled once between the parameters and
	// bodies that point at it.
	byPointer map[string]*jsonschema.Schema
}

func newSchemas(doc any, v31 bool) (*schemas, error) {
	c := jsonschema.NewCompiler()
	if v31 {
		c.DefaultDraft(jsonschema.Draft2020)
	} else {
		c.DefaultDraft(jsonschema.Draft4)
		nullable(doc)
	}
	c.AssertFormat()
	// Every schema the document holds at a place OpenAPI defines is made
	// known to the compiler when it loads the document. Otherwise each
	// pointer compiled on its own makes the compiler copy what it knows
	// of the document (its roots' processed subschemas), once per
	// pointer: a compile quadratic in the number of schemas.
	c.RegisterVocabulary(schemaPlaces)
	c.AssertVocabs()
	for _, f := range intFormats {
		c.RegisterFormat(f)
	}
	if err := c.AddResource(docURL, doc); err != nil {
		return nil, err
	}
	return &schemas{c: c, byPointer: map[string]*jsonschema.Schema{}}, nil
}

// schemaPlaces is a vocabulary with no keywords of its own: its
// subschema positions are where OpenAPI 3.0 and 3.1 put schemas, so that
// the compiler, reading the document as a schema, finds them all at
// once.
var schemaPlaces = func() *jsonschema.Vocabulary {
	var paths []jsonschema.SchemaPath
	// in adds the places of a parameter's, a media type map's or a header
	// map's schemas below prefix.
	param := func(prefix ...jsonschema.Position) {
		paths = append(paths,
			append(slices.Clone(prefix), jsonschema.Prop("schema")),
			append(slices.Clone(prefix), jsonschema.Prop("content"), jsonschema.AllProp{}, jsonschema.Prop("schema")))
	}
	content := func(prefix ...jsonschema.Position) {
		paths = append(paths, append(slices.Clone(prefix), jsonschema.Prop("content"), jsonschema.AllProp{}, jsonschema.Prop("schema")))
	}
	response := func(prefix ...jsonschema.Position) {
		content(prefix...)
		param(append(slices.Clone(prefix), jsonschema.Prop("headers"), jsonschema.AllProp{})...)
	}
	p, all, items := jsonschema.Prop("paths"), jsonschema.AllProp{}, jsonschema.AllItem{}
	param(p, all, jsonschema.Prop("parameters"), items)
	param(p, all, all, jsonschema.Prop("parameters"), items)
	content(p, all, all, jsonschema.Prop("requestBody"))
	response(p, all, all, jsonschema.Prop("responses"), all)
	c := jsonschema.Prop("components")
	paths = append(paths, jsonschema.SchemaPath{c, jsonschema.Prop("schemas"), all})
	param(c, jsonschema.Prop("parameters"), all)
	param(c, jsonschema.Prop("headers"), all)
	content(c, jsonschema.Prop("requestBodies"), all)
	response(c, jsonschema.Prop("responses"), all)
	return &jsonschema.Vocabulary{
		URL:        "gatehouse:openapi-schema-places",
		Subschemas: paths,
		Compile:    func(*jsonschema.CompilerContext, map[string]any) (jsonschema.SchemaExt, error) { return nil, nil },
	}
}()

// compile compiles the schema at pointer (RFC 6901, escaped).
func (s *schemas) compile(pointer string) (*jsonschema.Schema, error) {
	if sch, ok := s.byPointer[pointer]; ok {
		return sch, nil
	}
	sch, err := s.c.Compile(docURL + "#" + pointer)
	if err != nil {
		return nil, errors.New(schemaError(err))
	}
	s.byPointer[pointer] = sch
	return sch, nil
}

// schemaError words a compile error without the compiler's internal URL.
func schemaError(err error) string {
	return strings.ReplaceAll(err.Error(), docURL+"#", "")
}

// notRequired takes out of every required list of v the properties
// whose schema (or the schema its local $ref leads to) has keyword
// (readOnly, writeOnly) true; root is the document, for the $refs. It
// reports whether it took any. Like nullable, it walks every object,
// examples too, which nothing validates against.
func notRequired(v, root any, keyword string) bool {
	changed := false
	switch v := v.(type) {
	case map[string]any:
		req, _ := v["required"].([]any)
		props, _ := v["properties"].(map[string]any)
		if len(req) > 0 && props != nil {
			kept := req[:0:0]
			for _, name := range req {
				n, _ := name.(string)
				if p, ok := followRef(props[n], root).(map[string]any); ok && p[keyword] == true {
					continue
				}
				kept = append(kept, name)
			}
			switch {
			case len(kept) == len(req):
			case len(kept) == 0:
				delete(v, "required") // draft 4 refuses an empty list
				changed = true
			default:
				v["required"] = kept
				changed = true
			}
		}
		for _, c := range v {
			changed = notRequired(c, root, keyword) || changed
		}
	case []any:
		for _, c := range v {
			changed = notRequired(c, root, keyword) || changed
		}
	}
	return changed
}

// followRef follows a chain of local $refs from v in root, a few steps.
func followRef(v, root any) any {
	for range maxRefHops {
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return v
		}
		frag, ok := strings.CutPrefix(ref, "#")
		if !ok {
			return nil
		}
		v = root
		for _, tok := range strings.Split(strings.TrimPrefix(frag, "/"), "/") {
			if frag == "" {
				break
			}
			switch c := v.(type) {
			case map[string]any:
				v = c[doctree.UnescapeToken(tok)]
			case []any:
				i, err := strconv.Atoi(tok)
				if err != nil || i < 0 || i >= len(c) {
					return nil
				}
				v = c[i]
			default:
				return nil
			}
		}
	}
	return v
}

// nullable rewrites the 3.0 keyword nullable: true as what it means in
// JSON Schema, null added to the type (and to the enum, which would
// otherwise still refuse it). It walks every object: one that is not a
// schema but has a boolean nullable and a string type is an example,
// which nothing validates against.
func nullable(v any) {
	switch v := v.(type) {
	case map[string]any:
		if b, _ := v["nullable"].(bool); b {
			if t, ok := v["type"].(string); ok {
				v["type"] = []any{t, "null"}
			}
			if e, ok := v["enum"].([]any); ok && !slices.Contains(e, nil) {
				v["enum"] = append(e, nil)
			}
		}
		for _, c := range v {
			nullable(c)
		}
	case []any:
		for _, c := range v {
			nullable(c)
		}
	}
}

// intFormats are OpenAPI's integer formats, which JSON Schema leaves
// unknown: a value out of range is refused, as the upstream would
// overflow reading it.
var intFormats = []*jsonschema.Format{
	{Name: "int32", Validate: intRange(32)},
	{Name: "int64", Validate: intRange(64)},
}

func intRange(bits uint) func(v any) error {
	lo := new(big.Int).Neg(new(big.Int).Lsh(big.NewInt(1), bits-1))
	hi := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), bits-1), big.NewInt(1))
	return func(v any) error {
		n, ok := v.(json.Number)
		if !ok {
			return nil // not a number: type's business
		}
		if _, err := strconv.ParseInt(string(n), 10, int(bits)); err == nil {
			return nil
		}
		r, ok := new(big.Rat).SetString(string(n))
		if !ok || !r.IsInt() {
			return nil // not an integer: type's business
		}
		if i := r.Num(); i.Cmp(lo) < 0 || i.Cmp(hi) > 0 {
			return fmt.Errorf("is out of the int%d range [%s, %s]", bits, lo, hi)
		}
		return nil
	}
}

// violations lists what a failed validation found (schemaerr.Leaves),
// each at prefix followed by the instance's JSON pointer: the first
// strictjson.MaxErrors, and an entry counting the rest, as every problem
// lists them. Only those listed are worded: a body failing millions of
// times costs no more here than one failing a hundred.
func violations(err error, prefix string) []Violation {
	leaves, unlisted, ok := schemaerr.FirstLeaves(err, func(loc []string) string { return pointer(prefix, loc) }, strictjson.MaxErrors)
	if !ok {
		return []Violation{{Field: prefix, Message: "cannot be validated"}}
	}
	out := make([]Violation, len(leaves), len(leaves)+1)
	for i, v := range leaves {
		out[i] = Violation{Field: v.Field, Message: v.Message}
	}
	if unlisted > 0 {
		u := strictjson.Unlisted(unlisted)
		out = append(out, Violation{Field: prefix, Message: u.Message, Unlisted: u.Unlisted})
	}
	return out
}

// pointer is prefix followed by the RFC 6901 pointer of loc.
func pointer(prefix string, loc []string) string {
	if len(loc) == 0 {
		return prefix
	}
	var sb strings.Builder
	sb.WriteString(prefix)
	for _, tok := range loc {
		sb.WriteByte('/')
		sb.WriteString(doctree.EscapeToken(tok))
	}
	return sb.String()
}

// bodySchema validates JSON bodies of one media type against a schema.
type bodySchema struct {
	schema *jsonschema.Schema
	fast   *fastCheck // nil: only the validator can tell
}

func newBodySchema(s *jsonschema.Schema) *bodySchema {
	return &bodySchema{schema: s, fast: newFastCheck(s)}
}

// validateJSON reads body (as jsondoc reads it) and validates it: a body
// that is not one JSON document is one violation on "body", malformed
// true; a document that fails the schema is every violation.
func (b *bodySchema) validateJSON(body []byte) (vs []Violation, malformed bool) {
	doc, err := jsondoc.Decode(body)
	if err != nil {
		return []Violation{{Field: "body", Message: err.Describe(body)}}, true
	}
	return b.validate(doc), false
}

func (b *bodySchema) validate(doc any) []Violation {
	if b == nil || b.schema == nil || b.fast != nil && b.fast.check(doc) {
		return nil
	}
	if err := b.schema.Validate(doc); err != nil {
		return violations(err, "body")
	}
	return nil
}
