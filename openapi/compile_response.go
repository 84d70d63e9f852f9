package openapi

import (
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/gatehouse/gatehouse/internal/doctree"
	"github.com/gatehouse/gatehouse/internal/media"
)

// ResponseSpec is what an operation documents for a status: an exact
// code, a range ("4XX") or default.
type ResponseSpec struct {
	// Key is the document's key for it: "200", "4XX" or "default".
	Key string
	// MediaTypes are the documented media types (ranges allowed), as
	// written without parameters; none for a response without a body.
	MediaTypes []string
	// RequiredHeaders are the headers the document marks required, in
	// canonical form.
	RequiredHeaders []string

	contents []*ResponseContent
}

// ResponseContent is one documented media type of a response.
type ResponseContent struct {
	// MediaType is the documented type or range, lower case.
	MediaType string
	rng       media.Range
	schema    *bodySchema // nil: no JSON schema to judge the body by
}

// Response returns what op documents for status: the exact code, else
// its range (4XX), else default. ok is false when none applies (the
// undocumented-status rule).
func (op *Op) Response(status int) (*ResponseSpec, bool) {
	if r, ok := op.responses[status]; ok {
		return r, true
	}
	if status >= 100 && status < 600 {
		if r := op.ranges[status/100]; r != nil {
			return r, true
		}
	}
	return op.deflt, op.deflt != nil
}

// Content returns the documented content a response of media type
// contentType (a Content-Type field value, parameters ignored) matches,
// the most specific declaration first. ok is false when none does (the
// undocumented-media-type rule), or contentType is not a media type.
func (r *ResponseSpec) Content(contentType string) (*ResponseContent, bool) {
	typ, sub, ok := media.ContentType([]string{contentType})
	if !ok {
		return nil, false
	}
	for _, c := range r.contents {
		if c.rng.Matches(typ, sub) {
			return c, true
		}
	}
	return nil, false
}

// HasSchema reports whether the content documents a JSON schema that
// ValidateJSON judges bodies by.
func (c *ResponseContent) HasSchema() bool { return c.schema != nil }

// ValidateJSON judges a body against the content's schema: nil if it
// conforms (or there is no schema), else every violation, each at its
// JSON pointer after "body" ("body/items/0/id"); a body that is not one
// JSON document is one violation on "body".
func (c *ResponseContent) ValidateJSON(body []byte) []Violation {
	if c.schema == nil {
		return nil
	}
	vs, _ := c.schema.validateJSON(body)
	return vs
}

func (c *compiler) responses(op *Op, ptr string, rs *openapi3.Responses) {
	op.responses = map[int]*ResponseSpec{}
	if rs == nil {
		return
	}
	var produces []string
	for key, ref := range rs.Map() {
		if ref == nil || ref.Value == nil {
			continue
		}
		at := refPointer(ref.Ref, ptr+"/"+doctree.EscapeToken(key))
		r := c.response(key, at, ref.Value)
		switch up := strings.ToUpper(key); {
		case key == "default":
			op.deflt = r
		case len(up) == 3 && up[1:] == "XX" && up[0] >= '1' && up[0] <= '5':
			op.ranges[up[0]-'0'] = r
		default:
			code, err := strconv.Atoi(key)
			if err != nil || code < 100 || code > 599 {
				c.add(ptr+"/"+doctree.EscapeToken(key), "is not a status code, a range such as 4XX, or default")
				continue
			}
			op.responses[code] = r
		}
		if strings.HasPrefix(key, "2") {
			produces = append(produces, r.MediaTypes...)
		}
	}
	sort.Strings(produces)
	for i, mt := range produces {
		if i > 0 && produces[i-1] == mt {
			continue
		}
		if rng, ok := media.ParseRange(mt); ok {
			op.produces = append(op.produces, rng)
		}
	}
	names := make([]string, len(op.produces))
	for i, r := range op.produces {
		names[i] = r.String()
	}
	op.producesText = strings.Join(names, ", ")
}

func (c *compiler) response(key, ptr string, r *openapi3.Response) *ResponseSpec {
	out := &ResponseSpec{Key: key}
	for _, name := range slices.Sorted(maps.Keys(r.Headers)) {
		h := r.Headers[name]
		if h != nil && h.Value != nil && h.Value.Required {
			out.RequiredHeaders = append(out.RequiredHeaders, http.CanonicalHeaderKey(name))
		}
	}
	for _, ct := range c.contentTypes(ptr, r.Content) {
		rc := &ResponseContent{MediaType: ct.rng.String(), rng: ct.rng}
		if ct.m != nil && ct.m.Schema != nil && media.IsJSON(ct.rng.Type, ct.rng.Sub) {
			if sch := c.responseSchema(ct.ptr + "/schema"); sch != nil {
				rc.schema = newBodySchema(sch)
			}
		}
		out.contents = append(out.contents, rc)
		out.MediaTypes = append(out.MediaTypes, rc.MediaType)
	}
	sort.SliceStable(out.contents, func(i, j int) bool {
		return specificity(out.contents[i].rng) > specificity(out.contents[j].rng)
	})
	return out
}
