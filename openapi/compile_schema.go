package openapi

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/gatehouse/gatehouse/internal/jsondoc"
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

// maxViolationMessage bounds one violation's message in bytes: messages
// quote the offending value, which may be long.
const maxViolationMessage = 200

// Violation is one thing wrong with a request (or a response body): the
// field, as a parameter's location ("query.limit") or a body's JSON
// pointer ("body/items/0/price"), and what is wrong with it.
type Violation struct {
	Field   string
	Message string
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
	for _, f := range intFormats {
		c.RegisterFormat(f)
	}
	if err := c.AddResource(docURL, doc); err != nil {
		return nil, err
	}
	return &schemas{c: c, byPointer: map[string]*jsonschema.Schema{}}, nil
}

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

// printer words the validator's messages.
var printer = message.NewPrinter(language.English)

// violations lists what a failed validation found: each leaf of the
// validator's tree (what it was checking nests what it found), at
// prefix followed by the instance's JSON pointer, sorted by location
// (array indexes by number) for a stable answer; the branches of an
// anyOf that say the same thing are said once.
func violations(err error, prefix string) []Violation {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []Violation{{Field: prefix, Message: "cannot be validated"}}
	}
	type located struct {
		loc []string
		Violation
	}
	var all []located
	seen := map[Violation]bool{}
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			v := Violation{Field: pointer(prefix, e.InstanceLocation),
				Message: clip(e.ErrorKind.LocalizedString(printer), maxViolationMessage)}
			if !seen[v] {
				seen[v] = true
				all = append(all, located{e.InstanceLocation, v})
			}
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	slices.SortStableFunc(all, func(a, b located) int {
		if c := slices.CompareFunc(a.loc, b.loc, compareToken); c != 0 {
			return c
		}
		return strings.Compare(a.Message, b.Message)
	})
	out := make([]Violation, len(all))
	for i, v := range all {
		out[i] = v.Violation
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
		sb.WriteString(escapePointer(tok))
	}
	return sb.String()
}

func escapePointer(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// compareToken orders instance location tokens: numbers (array indexes)
// by value, before names.
func compareToken(a, b string) int {
	x, errA := strconv.Atoi(a)
	y, errB := strconv.Atoi(b)
	switch {
	case errA == nil && errB == nil:
		return cmp.Compare(x, y)
	case errA == nil:
		return -1
	case errB == nil:
		return 1
	}
	return strings.Compare(a, b)
}

// clip shortens s to at most n bytes, at a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
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
