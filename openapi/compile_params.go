package openapi

import (
	"net/http"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/gatehouse/gatehouse/internal/doctree"
	"github.com/gatehouse/gatehouse/internal/media"
)

// param is one parameter compiled: how to find its value in a request,
// split it by its style, turn its pieces into the JSON types its schema
// expects (a query string has only strings), and validate the result.
type param struct {
	name string
	in   string
	// field names it in errors: "query.limit", "path.petId".
	field    string
	required bool
	// allowEmpty: an empty query value counts as absent.
	allowEmpty bool
	style      string
	explode    bool
	shape      shape
	// types are the primitive's types (shape primitive), the items' (array)
	// or those of properties not listed in props (object).
	types typeSet
	props map[string]typeSet
	// jsonContent: the parameter has content application/json rather than
	// a schema; its value is a JSON text.
	jsonContent bool
	schema      *jsonschema.Schema
	fast        *fastCheck // nil: only the validator can tell
	deepPrefix  string     // deepObject: "name["
	// pathIndex is a path parameter's place among the template's.
	pathIndex int
	ptr       string // where the document declares it
}

type shape uint8

const (
	primitive shape = iota
	array
	object
)

// typeSet is a set of JSON Schema types, for turning strings into values.
type typeSet uint8

const (
	tString typeSet = 1 << iota
	tInteger
	tNumber
	tBoolean
	tNull
	tArray
	tObject
)

var typeBits = map[string]typeSet{
	openapi3.TypeString: tString, openapi3.TypeInteger: tInteger, openapi3.TypeNumber: tNumber,
	openapi3.TypeBoolean: tBoolean, openapi3.TypeNull: tNull, openapi3.TypeArray: tArray, openapi3.TypeObject: tObject,
}

// typesOf reads what types a schema admits, from its type and, for a
// schema without one, those of its allOf, anyOf and oneOf branches; 0
// means any (nothing to convert to).
func typesOf(s *openapi3.Schema) typeSet {
	return typesOfSeen(s, map[*openapi3.Schema]bool{})
}

// typesOfSeen carries the schemas already on the walk: a recursive schema
// (legal in OpenAPI) adds nothing the second time round, and must not
// recurse forever.
func typesOfSeen(s *openapi3.Schema, seen map[*openapi3.Schema]bool) typeSet {
	if s == nil || seen[s] {
		return 0
	}
	seen[s] = true
	var t typeSet
	if s.Type != nil {
		for _, name := range s.Type.Slice() {
			t |= typeBits[name]
		}
	}
	if s.Nullable {
		t |= tNull
	}
	if t&^tNull != 0 {
		return t
	}
	for _, list := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
		for _, r := range list {
			if r != nil {
				t |= typesOfSeen(r.Value, seen)
			}
		}
	}
	return t
}

// styles are those OpenAPI allows per location; the first is the default.
var styles = map[string][]string{
	openapi3.ParameterInPath:   {"simple", "label", "matrix"},
	openapi3.ParameterInQuery:  {"form", "spaceDelimited", "pipeDelimited", "deepObject"},
	openapi3.ParameterInHeader: {"simple"},
	openapi3.ParameterInCookie: {"form"},
}

// ignoredHeaders are header parameters OpenAPI says to ignore: HTTP
// itself governs them.
var ignoredHeaders = map[string]bool{"Accept": true, "Content-Type": true, "Authorization": true}

func (c *compiler) param(ptr string, p *openapi3.Parameter) *param {
	allowed, ok := styles[p.In]
	if !ok {
		c.add(ptr+"/in", "is not a location gatehouse can validate: %q", p.In)
		return nil
	}
	if p.In == openapi3.ParameterInHeader && ignoredHeaders[http.CanonicalHeaderKey(p.Name)] {
		return nil
	}
	out := &param{name: p.Name, in: p.In, field: p.In + "." + p.Name, required: p.Required || p.In == openapi3.ParameterInPath,
		allowEmpty: p.AllowEmptyValue, style: p.Style}
	if p.In == openapi3.ParameterInHeader {
		out.name = http.CanonicalHeaderKey(p.Name)
	}
	if out.style == "" {
		out.style = allowed[0]
	}
	if !slices.Contains(allowed, out.style) {
		c.add(ptr+"/style", "is %q, which OpenAPI does not allow for %s parameters", out.style, p.In)
		return nil
	}
	// form's explode defaults to true, every other style's to false.
	out.explode = out.style == "form"
	if p.Explode != nil {
		out.explode = *p.Explode
	}
	var s *openapi3.Schema
	switch {
	case p.Schema != nil:
		s = p.Schema.Value
		out.schema = c.schema(ptr + "/schema")
		if out.schema != nil {
			out.fast = newFastCheck(out.schema)
		}
	case len(p.Content) == 1:
		for mt, m := range p.Content {
			rng, ok := media.ParseRange(strings.SplitN(mt, ";", 2)[0])
			if !ok || !media.IsJSON(rng.Type, rng.Sub) {
				c.add(ptr+"/content/"+doctree.EscapeToken(mt), "is a parameter of type %s, which gatehouse cannot validate", mt)
				return nil
			}
			out.jsonContent = true
			if m != nil && m.Schema != nil {
				out.schema = c.schema(ptr + "/content/" + doctree.EscapeToken(mt) + "/schema")
			}
		}
		return out
	default:
		c.add(ptr, "has neither a schema nor one content type")
		return nil
	}
	t := typesOf(s)
	// A nullable array or object is still read as an array or object: a
	// query string has no null to send.
	switch {
	case t&^tNull == tArray:
		out.shape = array
		if s.Items != nil {
			out.types = typesOf(s.Items.Value)
		}
	case t&^tNull == tObject || t&^tNull == 0 && len(s.Properties) > 0:
		out.shape = object
		out.props = map[string]typeSet{}
		for name, ref := range s.Properties {
			if ref != nil {
				out.props[name] = typesOf(ref.Value)
			}
		}
		if ap := s.AdditionalProperties.Schema; ap != nil {
			out.types = typesOf(ap.Value)
		}
	default:
		out.shape = primitive
		out.types = t
	}
	switch {
	case out.style == "deepObject" && out.shape == object:
		out.deepPrefix = out.name + "["
	case out.style == "deepObject":
		c.add(ptr+"/style", "is deepObject, which OpenAPI defines for objects only")
		return nil
	case (out.style == "spaceDelimited" || out.style == "pipeDelimited") && out.shape == primitive:
		c.add(ptr+"/style", "is %s, which OpenAPI defines for arrays and objects only", out.style)
		return nil
	}
	return out
}

// formBody reads application/x-www-form-urlencoded bodies as OpenAPI's
// default encoding says: each property a form field, arrays repeated.
type formBody struct {
	schema *jsonschema.Schema
	props  map[string]typeSet
	arrays map[string]typeSet // properties that are arrays: their items' types
}

func (c *compiler) formBody(ptr string, s *openapi3.Schema) *formBody {
	f := &formBody{schema: c.schema(ptr), props: map[string]typeSet{}, arrays: map[string]typeSet{}}
	if s == nil {
		return f
	}
	for name, ref := range s.Properties {
		if ref == nil {
			continue
		}
		t := typesOf(ref.Value)
		if t&^tNull == tArray && ref.Value.Items != nil {
			f.arrays[name] = typesOf(ref.Value.Items.Value)
			continue
		}
		f.props[name] = t
	}
	return f
}
