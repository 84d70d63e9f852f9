package policy

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/openapi"
)

// specRules are the openapi policy's response rules (SpecRules): the
// response must be one its operation documents, in status, media type,
// required headers and, for JSON, schema.
type specRules struct{ spec *openapi.Spec }

// Operation finds the request's operation, once per response, and keeps
// it on resp for JudgeHead and JudgeBody; nil for a request the document
// does not describe (the request side answered or recorded that).
func (s specRules) Operation(r *Request, resp *Response) string {
	resp.op, _ = s.spec.Find(r.R.Method, r.R.URL.EscapedPath())
	if resp.op == nil {
		return ""
	}
	return resp.op.Name()
}

func (s specRules) JudgeHead(r *Request, resp *Response, broke func(rule, detail string)) bool {
	op := resp.op
	if op == nil {
		return false
	}
	rs, ok := op.Response(resp.Status)
	if !ok {
		if resp.Status != http.StatusNotModified || !conditional(r.R) {
			broke(audit.UndocumentedStatus, fmt.Sprintf("the operation %s documents no response for status %d", op.Name(), resp.Status))
		}
		return false
	}
	for _, name := range rs.RequiredHeaders {
		if len(resp.Header[name]) == 0 {
			broke(audit.MissingResponseHeader, fmt.Sprintf("the operation %s requires the header %s on a %s response", op.Name(), name, rs.Key))
		}
	}
	ct := resp.Header["Content-Type"]
	if resp.Body == audit.BodyAbsent || len(ct) == 0 {
		return false // no body, or none typed: HTTP's content-type-missing
	}
	if len(rs.MediaTypes) == 0 && resp.Body == audit.BodyUnknown {
		return false // a body not yet seen may still be empty
	}
	c, ok := rs.Content(ct[0])
	if !ok {
		documented := "none"
		if len(rs.MediaTypes) > 0 {
			documented = strings.Join(rs.MediaTypes, ", ")
		}
		broke(audit.UndocumentedMediaType, fmt.Sprintf("the operation %s documents for a %s response the media types %s, not %s",
			op.Name(), rs.Key, documented, ct[0]))
		return false
	}
	// A coded body is judged only as it was sent: decoding it is not the
	// audit's to spend on.
	if !c.HasSchema() || !sentAsIs(resp.Header) {
		return false
	}
	resp.content = c
	return true
}

func (s specRules) JudgeBody(r *Request, resp *Response, body []byte, broke func(rule, detail string)) {
	op, c := resp.op, resp.content
	if op == nil || c == nil {
		return
	}
	if vs := c.ValidateJSON(body); len(vs) > 0 {
		broke(audit.BodySchema, violationsDetail(fmt.Sprintf("the %d response of %s breaks its documented schema:", resp.Status, op.Name()), vs))
	}
}

// violationsDetail is a finding's detail: what broke, then the first
// violations by pointer.
func violationsDetail(head string, vs []openapi.Violation) string {
	const shown = 5
	var sb strings.Builder
	sb.WriteString(head)
	for i, v := range vs {
		if i == shown {
			fmt.Fprintf(&sb, " (and %d more)", len(vs)-shown)
			break
		}
		fmt.Fprintf(&sb, " %s: %s;", v.Field, v.Message)
	}
	return strings.TrimSuffix(sb.String(), ";")
}

// conditional reports whether r is a GET or HEAD that a 304 may answer
// (RFC 9110 §15.4.5): the answer to the client's own precondition, which
// is not the document's to list.
func conditional(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		(len(r.Header["If-None-Match"]) > 0 || len(r.Header["If-Modified-Since"]) > 0)
}

// sentAsIs reports whether a response's body is sent as it is (no
// Content-Encoding, or identity).
func sentAsIs(h http.Header) bool {
	for _, v := range h["Content-Encoding"] {
		if strings.TrimSpace(v) != "" && !strings.EqualFold(strings.TrimSpace(v), "identity") {
			return false
		}
	}
	return true
}
