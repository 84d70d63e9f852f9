package openapi

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/gatehouse/gatehouse/internal/doctree"
	"github.com/gatehouse/gatehouse/internal/media"
)

// Spec is a document compiled, once per deployment, into what the data
// plane checks requests against and judges responses by. It is safe for
// concurrent use and never changes.
type Spec struct {
	// base is what precedes the templates in a request's path, by
	// segment, matched as the templates' are (a server URL may have
	// variables: /tenants/{tenant}); nil for none.
	base []segment
	root pathNode
}

// Op is one operation compiled.
type Op struct {
	Method string
	// Path is the document's template ("/pets/{petId}").
	Path string
	// OperationID is the operationId, "" if the document gives none.
	OperationID string

	item     *pathItem
	params   []*param
	hasQuery bool         // some parameter is in the query
	body     *requestBody // nil: the operation declares none

	responses map[int]*ResponseSpec
	ranges    [6]*ResponseSpec // 1XX..5XX
	deflt     *ResponseSpec
	// produces are the media types of the success (2XX) responses: an
	// Accept that admits none of them is 406; nil if they declare none.
	produces     []media.Range
	producesText string
}

// Name is how findings name the operation: its operationId, else
// "METHOD /template".
func (op *Op) Name() string {
	if op.OperationID != "" {
		return op.OperationID
	}
	return op.Method + " " + op.Path
}

type requestBody struct {
	required bool
	// contents in the document's order of media types, most specific first
	// (exact types before type/* before */*).
	contents []*bodyContent
	// acceptsText lists the media types for details, acceptsHeader is the
	// same as the value of Accept-Post and Accept-Patch.
	acceptsText   string
	acceptsHeader []string
}

type bodyContent struct {
	rng  media.Range
	kind bodyKind
	json *bodySchema // kind JSON, nil schema: anything
	form *formBody   // kind form
}

type bodyKind int

const (
	bodyOpaque bodyKind = iota // no schema, or one gatehouse need not read
	bodyJSON
	bodyForm
)

// Compile compiles doc for requests whose paths start with basePath: ""
// means the path of the document's first server URL, its variables at
// their defaults ("/v1" for https://api.example.com/v1), "/" none. The
// problems are the features of doc it cannot validate, each at its JSON
// pointer; with any, the Spec is nil.
func Compile(doc *Document, basePath string) (*Spec, []Problem) {
	t := doc.doc
	var probs []Problem
	add := func(ptr, format string, args ...any) {
		probs = append(probs, Problem{Pointer: ptr, Message: fmt.Sprintf(format, args...)})
	}
	raw, err := json.Marshal(t)
	if err != nil {
		return nil, []Problem{{Message: "cannot be read as JSON: " + err.Error()}}
	}
	// OpenAPI's required does not hold for a readOnly property in a
	// request nor for a writeOnly one in a response: each direction
	// compiles its own reading of the document, with those properties
	// out of required, unless neither has any.
	var reqTree, respTree any
	if err := json.Unmarshal(raw, &reqTree); err != nil {
		return nil, []Problem{{Message: "cannot be read as JSON: " + err.Error()}}
	}
	if err := json.Unmarshal(raw, &respTree); err != nil {
		return nil, []Problem{{Message: "cannot be read as JSON: " + err.Error()}}
	}
	v31 := strings.HasPrefix(t.OpenAPI, "3.1")
	reqChanged := notRequired(reqTree, reqTree, "readOnly")
	respChanged := notRequired(respTree, respTree, "writeOnly")
	sch, err := newSchemas(reqTree, v31)
	if err != nil {
		return nil, []Problem{{Message: schemaError(err)}}
	}
	c := &compiler{schemas: sch, respSchemas: sch, add: add}
	if reqChanged || respChanged {
		if c.respSchemas, err = newSchemas(respTree, v31); err != nil {
			return nil, []Problem{{Message: schemaError(err)}}
		}
	}
	s := &Spec{base: baseSegments(doc.BasePath(basePath))}
	if t.Paths != nil {
		for _, template := range t.Paths.InMatchingOrder() {
			c.pathItem(s, template, t.Paths.Value(template))
		}
	}
	if len(probs) > 0 {
		sort.SliceStable(probs, func(i, j int) bool { return probs[i].Pointer < probs[j].Pointer })
		return nil, probs
	}
	return s, nil
}

type compiler struct {
	schemas     *schemas // requests'
	respSchemas *schemas // responses', the same unless the directions differ
	add         func(ptr, format string, args ...any)
}

// methods are the methods OpenAPI 3.0 and 3.1 name, in Allow's order.
var methods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions, http.MethodTrace,
}

func (c *compiler) pathItem(s *Spec, template string, pi *openapi3.PathItem) {
	ptr := "/paths/" + doctree.EscapeToken(template)
	if pi == nil {
		return
	}
	item, err := s.root.add(template)
	if err != nil {
		c.add(ptr, "%v", err)
		return
	}
	item.ops = map[string]*Op{}
	ops := pi.Operations()
	var allow []string
	for _, m := range methods {
		op := ops[m]
		if op == nil {
			continue
		}
		opPtr := ptr + "/" + strings.ToLower(m)
		compiled := &Op{Method: m, Path: template, OperationID: op.OperationID, item: item}
		c.params(compiled, ptr+"/parameters", pi.Parameters, opPtr+"/parameters", op.Parameters)
		c.requestBody(compiled, opPtr+"/requestBody", op.RequestBody)
		c.responses(compiled, opPtr+"/responses", op.Responses)
		item.ops[m] = compiled
		allow = append(allow, m)
	}
	// HEAD is GET without a body (RFC 9110 §9.3.2): a path with GET and
	// no head operation takes HEAD as GET. OPTIONS is an operation like
	// any other: a document that wants preflights through declares it.
	if get := item.ops[http.MethodGet]; get != nil && item.ops[http.MethodHead] == nil {
		item.ops[http.MethodHead] = get
		allow = slices.Insert(allow, 1, http.MethodHead)
	}
	for m, op := range ops {
		if op != nil && !slices.Contains(methods, m) {
			c.add(ptr+"/"+strings.ToLower(m), "is not a method gatehouse can validate")
		}
	}
	item.allow = strings.Join(allow, ", ")
}

// refPointer is where a $ref points inside the document, or at if it is
// not a reference.
func refPointer(ref, at string) string {
	if strings.HasPrefix(ref, "#") {
		return ref[1:]
	}
	return at
}

// params merges the path item's and the operation's parameters, the
// operation's winning (same name and location), and compiles each.
func (c *compiler) params(op *Op, itemPtr string, itemParams openapi3.Parameters, opPtr string, opParams openapi3.Parameters) {
	type located struct {
		ptr string
		p   *openapi3.Parameter
	}
	var all []located
	index := map[string]int{}
	for i, list := range []openapi3.Parameters{itemParams, opParams} {
		base := []string{itemPtr, opPtr}[i]
		for j, ref := range list {
			if ref == nil || ref.Value == nil {
				continue
			}
			l := located{refPointer(ref.Ref, fmt.Sprintf("%s/%d", base, j)), ref.Value}
			key := l.p.In + "\x00" + l.p.Name
			if l.p.In == openapi3.ParameterInHeader {
				key = l.p.In + "\x00" + http.CanonicalHeaderKey(l.p.Name)
			}
			if k, ok := index[key]; ok {
				all[k] = l
				continue
			}
			index[key] = len(all)
			all = append(all, l)
		}
	}
	byName := map[string]*param{}
	for _, l := range all {
		p := c.param(l.ptr, l.p)
		if p != nil {
			p.ptr = l.ptr
		}
		if p == nil {
			continue
		}
		op.params = append(op.params, p)
		op.hasQuery = op.hasQuery || p.in == openapi3.ParameterInQuery
		if p.in == openapi3.ParameterInPath {
			byName[p.name] = p
		}
	}
	for i, name := range op.item.names {
		if p := byName[name]; p != nil {
			p.pathIndex = i
		}
	}
	for name, p := range byName {
		if !slices.Contains(op.item.names, name) {
			c.add(p.ptr, "is a path parameter the path %s does not have", op.Path)
		}
	}
}

// requestBody compiles what bodies the operation takes: JSON ones are
// validated against their schema, form ones property by property; a
// schema on any other type is a problem (gatehouse cannot read it), and a
// type without one is only checked to be declared.
func (c *compiler) requestBody(op *Op, ptr string, ref *openapi3.RequestBodyRef) {
	if ref == nil || ref.Value == nil {
		return
	}
	ptr = refPointer(ref.Ref, ptr)
	rb := &requestBody{required: ref.Value.Required}
	var names []string
	for _, ct := range c.contentTypes(ptr, ref.Value.Content) {
		mtPtr, rng, m := ct.ptr, ct.rng, ct.m
		bc := &bodyContent{rng: rng}
		switch {
		case m == nil || m.Schema == nil:
		case media.IsJSON(rng.Type, rng.Sub):
			bc.kind = bodyJSON
			if sch := c.schema(mtPtr + "/schema"); sch != nil {
				bc.json = newBodySchema(sch)
			}
		case rng == media.Range{Type: "application", Sub: "x-www-form-urlencoded"}:
			bc.kind = bodyForm
			bc.form = c.formBody(mtPtr+"/schema", m.Schema.Value)
		case opaqueSchema(m.Schema.Value):
		default:
			c.add(mtPtr+"/schema", "is a schema for %s bodies, which gatehouse cannot validate", rng)
			continue
		}
		rb.contents = append(rb.contents, bc)
		names = append(names, rng.String())
	}
	// The most specific declaration of a type wins.
	sort.SliceStable(rb.contents, func(i, j int) bool {
		return specificity(rb.contents[i].rng) > specificity(rb.contents[j].rng)
	})
	rb.acceptsText = strings.Join(names, ", ")
	rb.acceptsHeader = []string{rb.acceptsText}
	op.body = rb
}

// contentType is one media type of a content map.
type contentType struct {
	ptr string // of its media type object
	rng media.Range
	m   *openapi3.MediaType
}

// contentTypes lists the media types of the content map at ptr, in a
// fixed order, each key's parameters dropped; a key that is not a media
// type is a problem, and left out.
func (c *compiler) contentTypes(ptr string, content openapi3.Content) []contentType {
	var out []contentType
	for _, mt := range slices.Sorted(maps.Keys(content)) {
		mtPtr := ptr + "/content/" + doctree.EscapeToken(mt)
		rng, ok := media.ParseRange(strings.SplitN(mt, ";", 2)[0])
		if !ok {
			c.add(mtPtr, "is not a media type")
			continue
		}
		out = append(out, contentType{ptr: mtPtr, rng: rng, m: content[mt]})
	}
	return out
}

func specificity(r media.Range) int {
	switch {
	case r.Type == "*":
		return 0
	case r.Sub == "*":
		return 1
	}
	return 2
}

// opaqueSchema reports whether a schema says nothing gatehouse must
// check: a string, or binary (the usual schema of an upload).
func opaqueSchema(s *openapi3.Schema) bool {
	if s == nil {
		return true
	}
	return (s.Type == nil || s.Type.Is(openapi3.TypeString)) && s.Pattern == "" && len(s.Enum) == 0 &&
		s.MinLength == 0 && s.MaxLength == nil && len(s.AllOf)+len(s.AnyOf)+len(s.OneOf) == 0 && s.Not == nil
}

// schema compiles the schema at ptr for requests, adding a problem if it
// cannot.
func (c *compiler) schema(ptr string) *jsonschema.Schema { return c.schemaIn(c.schemas, ptr) }

// responseSchema compiles the schema at ptr for responses.
func (c *compiler) responseSchema(ptr string) *jsonschema.Schema {
	return c.schemaIn(c.respSchemas, ptr)
}

func (c *compiler) schemaIn(s *schemas, ptr string) *jsonschema.Schema {
	sch, err := s.compile(ptr)
	if err != nil {
		c.add(ptr, "%v", err)
		return nil
	}
	return sch
}
