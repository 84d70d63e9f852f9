package openapi

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/media"
)

// Kind is why a request breaks its document; the policy answers each with
// the status-code contract's code.
type Kind uint8

const (
	// NotFound: the path is not in the document (404).
	NotFound Kind = iota + 1
	// MethodNotAllowed: the path does not declare the method (405, Allow).
	MethodNotAllowed
	// UnsupportedMediaType: the body's type is not declared (415).
	UnsupportedMediaType
	// NotAcceptable: Accept excludes every success response's type (406).
	NotAcceptable
	// BadRequest: parameters, or a body missing or not JSON (400).
	BadRequest
	// Unprocessable: the body fails its schema (422).
	Unprocessable
)

// Refusal is why a request breaks its document, as the answer says it.
type Refusal struct {
	Kind   Kind
	Detail string
	// Violations are every bad parameter, or every schema violation of
	// the body; empty for 404, 405, 415 and 406.
	Violations []Violation
	// Allow is the value of Allow for MethodNotAllowed.
	Allow string
	// Accepts is the value of Accept-Post or Accept-Patch for
	// UnsupportedMediaType: the declared media types.
	Accepts []string
}

// Find returns the operation a request's method and path (escaped, as
// sent) are for; the Refusal says why there is none (404 or 405).
func (s *Spec) Find(method, path string) (*Op, *Refusal) {
	var buf [8]string
	op, _, ref := s.find(method, path, buf[:0])
	return op, ref
}

var (
	notInDocument = &Refusal{Kind: NotFound, Detail: "This path is not in the API's description."}
)

func (s *Spec) find(method, path string, vals []string) (*Op, []string, *Refusal) {
	if !strings.HasPrefix(path, "/") {
		return nil, nil, notInDocument
	}
	var segBuf [16]string
	segs, ok := matchBase(s.base, splitPath(path[1:], segBuf[:0]))
	if !ok {
		return nil, nil, notInDocument
	}
	if len(segs) == 0 {
		segs = append(segs, "") // the base path alone is "/"
	}
	item, vals := s.root.match(segs, vals)
	if item == nil {
		return nil, nil, notInDocument
	}
	op := item.ops[method]
	if op == nil {
		return nil, nil, &Refusal{Kind: MethodNotAllowed, Allow: item.allow,
			Detail: fmt.Sprintf("The API's description does not declare %s for this path; it declares %s.", method, item.allow)}
	}
	return op, vals, nil
}

// matchBase matches the leading segments of a path (still escaped) with
// the base path's, as the templates' segments are matched: a literal
// against the decoded segment, a parameter against any non-empty one.
// It returns the segments after the base path.
func matchBase(base []segment, segs []string) ([]string, bool) {
	if len(segs) < len(base) {
		return nil, false
	}
	for i, b := range base {
		switch {
		case b.names == nil:
			if unescapeLiteral(segs[i]) != b.lits[0] {
				return nil, false
			}
		case b.whole():
			if segs[i] == "" {
				return nil, false
			}
		default:
			if _, ok := b.match(segs[i], nil); !ok {
				return nil, false
			}
		}
	}
	return segs[len(base):], true
}

// splitPath splits a path after its leading "/" at every "/".
func splitPath(p string, segs []string) []string {
	for {
		i := strings.IndexByte(p, '/')
		if i < 0 {
			return append(segs, p)
		}
		segs = append(segs, p[:i])
		p = p[i+1:]
	}
}

// CheckHead checks what a request's head decides, cheapest first: its
// path and method (404, 405), the media type of its body (415), its
// Accept (406), then every parameter and whether a required body is
// missing (400, all of them in one answer). It returns the operation
// when the request passes, for CheckBody.
func (s *Spec) CheckHead(r *http.Request) (*Op, *Refusal) {
	var buf [8]string
	op, vals, ref := s.find(r.Method, r.URL.EscapedPath(), buf[:0])
	if ref != nil {
		return nil, ref
	}
	hasBody := httpx.HasBody(r)
	if op.body != nil && hasBody {
		if _, ref := op.body.content(r.Header["Content-Type"]); ref != nil {
			return nil, ref
		}
	}
	if len(op.produces) > 0 && !media.Acceptable(r.Header["Accept"], op.produces) {
		return nil, &Refusal{Kind: NotAcceptable,
			Detail: "The Accept header excludes every media type this operation produces: " + op.producesText + "."}
	}
	var bad []Violation
	var qbuf [16]queryPair
	var query []queryPair
	if op.hasQuery {
		query = splitQuery(r.URL.RawQuery, qbuf[:0])
	}
	for _, p := range op.params {
		raw := ""
		if p.in == "path" && p.pathIndex < len(vals) {
			raw = vals[p.pathIndex]
		}
		v, ok, msg := p.value(r, raw, query)
		switch {
		case msg != "":
			bad = append(bad, Violation{Field: p.field, Message: msg})
		case !ok:
			if p.required {
				bad = append(bad, Violation{Field: p.field, Message: "is required"})
			}
		case v == allowedEmpty{}:
		case p.schema != nil && (p.fast == nil || !p.fast.check(v)):
			if err := p.schema.Validate(v); err != nil {
				bad = append(bad, violations(err, p.field)...)
			}
		}
	}
	if op.body != nil && op.body.required && !hasBody {
		bad = append(bad, Violation{Field: "body", Message: "is required"})
	}
	if len(bad) > 0 {
		return nil, &Refusal{Kind: BadRequest, Violations: bad, Detail: fmt.Sprintf("The request breaks the API's description: %s.", count(total(bad), "invalid parameter"))}
	}
	return op, nil
}

// ReadsBody reports whether CheckBody needs the body of a request that
// passed CheckHead: it has one, of a type whose schema gatehouse checks.
func (op *Op) ReadsBody(r *http.Request) bool {
	if op.body == nil || !httpx.HasBody(r) {
		return false
	}
	c, _ := op.body.content(r.Header["Content-Type"])
	return c != nil && (c.json != nil || c.form != nil)
}

// CheckBody checks a body CheckHead let on and ReadsBody asked for: not
// one JSON document (or not a form) is 400, one that fails its schema is
// 422, with every violation at its JSON pointer after "body".
func (op *Op) CheckBody(contentType []string, body []byte) *Refusal {
	c, _ := op.body.content(contentType)
	switch {
	case c == nil:
		return nil
	case c.json != nil:
		vs, malformed := c.json.validateJSON(body)
		if malformed {
			return &Refusal{Kind: BadRequest, Violations: vs, Detail: "The request body " + vs[0].Message + "."}
		}
		if len(vs) > 0 {
			return schemaRefusal(vs)
		}
	case c.form != nil:
		doc, ok := c.form.decode(body)
		if !ok {
			return &Refusal{Kind: BadRequest, Violations: []Violation{{Field: "body", Message: "is not a form (application/x-www-form-urlencoded)"}},
				Detail: "The request body is not a form (application/x-www-form-urlencoded)."}
		}
		if err := c.form.schema.Validate(doc); err != nil {
			return schemaRefusal(violations(err, "body"))
		}
	}
	return nil
}

func schemaRefusal(vs []Violation) *Refusal {
	return &Refusal{Kind: Unprocessable, Violations: vs,
		Detail: fmt.Sprintf("The request body does not match the API's description: %s.", count(total(vs), "violation"))}
}

func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// content finds the declaration a body's Content-Type matches; none is
// the 415.
func (rb *requestBody) content(values []string) (*bodyContent, *Refusal) {
	typ, sub, ok := media.ContentType(values)
	if ok {
		for _, c := range rb.contents {
			if c.rng.Matches(typ, sub) {
				return c, nil
			}
		}
	}
	ref := &Refusal{Kind: UnsupportedMediaType, Accepts: rb.acceptsHeader}
	switch {
	case ok:
		ref.Detail = fmt.Sprintf("This operation does not take bodies of type %s; it takes %s.", strings.ToLower(typ+"/"+sub), rb.acceptsText)
	case len(values) == 0:
		ref.Detail = "The request body has no Content-Type; this operation takes " + rb.acceptsText + "."
	default:
		ref.Detail = "The request's Content-Type is not one media type; this operation takes " + rb.acceptsText + "."
	}
	return nil, ref
}

// decode reads a form body into an object as its schema sees it.
func (f *formBody) decode(body []byte) (map[string]any, bool) {
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, false
	}
	doc := make(map[string]any, len(vals))
	for k, vs := range vals {
		if t, ok := f.arrays[k]; ok {
			items := make([]any, len(vs))
			for i, v := range vs {
				items[i] = coerce(v, t)
			}
			doc[k] = items
			continue
		}
		doc[k] = coerce(vs[0], f.props[k])
	}
	return doc, true
}
