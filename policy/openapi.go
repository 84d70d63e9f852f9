package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/openapi"
	"github.com/gatehouse/gatehouse/problem"
)

func init() { register(gatehouse.PolicyOpenAPI, buildOpenAPI) }

// openAPI checks requests against the operations of a route's specs, in
// two parts as content does: Check decides what the head can (404, 405,
// 415, 406, and 400 for parameters or a required body missing), and the
// late part reads a body whose operation has a schema for its type (400
// malformed, 422 schema). On requests: report, what would be refused is
// recorded as a request-invalid finding and the request goes on.
// Several openapi policies at one level all apply, in turn.
type openAPI struct {
	checks []*specCheck
	late   *openAPIBody // nil if no check reads bodies
}

// specCheck is one openapi policy on one route.
type specCheck struct {
	spec     *openapi.Spec
	report   bool // requests: report, not enforce
	routeID  string
	findings audit.Sink
	now      func() time.Time
}

// compiledSpec is what State keeps for one spec version and base path.
type compiledSpec struct {
	spec *openapi.Spec
	err  error
}

func buildOpenAPI(b *Build, pols []*gatehouse.Policy) (Step, error) {
	cfgs, err := configs[gatehouse.OpenAPIConfig](pols)
	if err != nil {
		return nil, err
	}
	s := &openAPI{}
	var responses *auditor
	for i, cfg := range cfgs {
		seesResponses := cfg.Responses != gatehouse.ModeOff || cfg.NormalizeErrors
		if cfg.Requests == gatehouse.ModeOff && (!seesResponses || responses != nil) {
			continue
		}
		doc, ok := b.Specs[cfg.SpecID]
		if !ok {
			return nil, fmt.Errorf("policy %q uses spec %q, which is not in the revision", pols[i].ID, cfg.SpecID)
		}
		key, ok := b.specKeys[doc.ID]
		if !ok {
			key = specKey(doc)
		}
		key += "/" + cfg.BasePath
		cs := Get(b.Env.State, key, func() *compiledSpec { return compileSpec(doc, cfg.BasePath) })
		if cs.err != nil {
			return nil, fmt.Errorf("policy %q: %w", pols[i].ID, cs.err)
		}
		if cfg.Requests != gatehouse.ModeOff {
			s.checks = append(s.checks, &specCheck{spec: cs.spec, report: cfg.Requests == gatehouse.ModeReport,
				routeID: b.Route.ID, findings: b.Env.Findings, now: b.Env.Now})
		}
		// Several at one level: the first one that sees responses
		// speaks for them, as with http-audit.
		if seesResponses && responses == nil {
			responses = newAuditor(b, cfg.Responses, cfg.SampleRate, cfg.NormalizeErrors)
			responses.spec = specRules{cs.spec}
			responses.bodyLimit = cfg.MaxBodyBytes
		}
	}
	if len(s.checks) > 0 {
		s.late = &openAPIBody{checks: s.checks}
	}
	if responses != nil {
		return &openAPIAudited{openAPI: s, auditor: responses}, nil
	}
	return s, nil
}

// openAPIAudited is an openapi policy that also judges responses: by
// the rules of HTTP, as http-audit does, and by its spec's.
type openAPIAudited struct {
	*openAPI
	*auditor
}

// judgesBySpec reports whether an openapi policy judges the chain's
// responses (responses: report or enforce), and so supersedes
// http-audit; one that only normalises errors judges none.
func (c *Chain) judgesBySpec() bool {
	for _, s := range c.respond {
		if a, ok := s.(*openAPIAudited); ok && a.judge {
			return true
		}
	}
	return false
}

// Check is the request side's.
func (s *openAPIAudited) Check(r *Request) error { return s.openAPI.Check(r) }

// specKey is the State key of a spec's compiled form: its id and version,
// and its document's hash, so that a spec deleted and written again under
// the same id and version cannot run the old document, while an unchanged
// one is not compiled again on redeploy.
func specKey(doc *gatehouse.Spec) string {
	sum := sha256.Sum256([]byte(doc.Document))
	return fmt.Sprintf("openapi/%s@%d/%s", doc.ID, doc.Version, hex.EncodeToString(sum[:8]))
}

func compileSpec(doc *gatehouse.Spec, basePath string) *compiledSpec {
	d, probs := openapi.Parse([]byte(doc.Document))
	if len(probs) == 0 {
		var spec *openapi.Spec
		if spec, probs = openapi.Compile(d, basePath); len(probs) == 0 {
			return &compiledSpec{spec: spec}
		}
	}
	// Parse refuses such documents when they are written: one here is
	// from an older gatehouse, and its routes must not be served
	// unchecked.
	p := probs[0]
	return &compiledSpec{err: fmt.Errorf("spec %q cannot be validated: %s: %s (and %d more problems)",
		doc.ID, p.Pointer, p.Message, len(probs)-1)}
}

// Late returns the body check.
func (s *openAPI) Late() Step {
	if s.late == nil {
		return nil // a nil *openAPIBody would be a non-nil Step
	}
	return s.late
}

func (s *openAPI) Check(r *Request) error {
	for _, c := range s.checks {
		if _, ref := c.spec.CheckHead(r.R); ref != nil {
			if err := c.refuse(r, nil, ref); err != nil {
				return err
			}
		}
	}
	return nil
}

// openAPIBody is the late part: it reads the body, within the route's
// limit, when an operation has a schema for its type, and puts it back
// for the upstream unchanged.
type openAPIBody struct {
	checks []*specCheck
}

func (s *openAPIBody) Check(r *Request) error {
	var body []byte
	read := false
	for _, c := range s.checks {
		// The head passed (or, reporting, was recorded): a request whose
		// head broke its document has no operation to read a body for.
		op, _ := c.spec.Find(r.R.Method, r.R.URL.EscapedPath())
		if op == nil || !op.ReadsBody(r.R) {
			continue
		}
		if !read {
			b, err := readBody(r.R, r.MaxBodyBytes)
			if err != nil {
				return err
			}
			replaceBody(r.R, b)
			body, read = b, true
		}
		if ref := op.CheckBody(r.R.Header["Content-Type"], body); ref != nil {
			if err := c.refuse(r, op, ref); err != nil {
				return err
			}
		}
	}
	return nil
}

// refuse answers a request that broke the document with the contract's
// error, or, reporting, records it and lets it on (nil).
func (c *specCheck) refuse(r *Request, op *openapi.Op, ref *openapi.Refusal) error {
	err := refusalError(ref)
	if c.report {
		if c.findings != nil {
			f := &audit.Finding{Rule: audit.RequestInvalid, RouteID: c.routeID, RequestID: problem.RequestID(r.R),
				Method: r.R.Method, Path: r.R.URL.Path, Detail: findingDetail(err), At: c.now()}
			if op == nil {
				op, _ = c.spec.Find(r.R.Method, r.R.URL.EscapedPath())
			}
			if op != nil {
				f.Operation = op.Name()
			}
			c.findings.Record(f)
		}
		return nil
	}
	h := r.W.Header()
	switch {
	case ref.Kind == openapi.MethodNotAllowed:
		h["Allow"] = []string{ref.Allow}
	case ref.Kind == openapi.UnsupportedMediaType && r.R.Method == http.MethodPost:
		h["Accept-Post"] = ref.Accepts
	case ref.Kind == openapi.UnsupportedMediaType && r.R.Method == http.MethodPatch:
		h["Accept-Patch"] = ref.Accepts
	}
	return err
}

// codes are the contract's answers to each kind of refusal.
var codes = map[openapi.Kind]gatehouse.Code{
	openapi.NotFound:             gatehouse.ENOTFOUND,
	openapi.MethodNotAllowed:     gatehouse.EMETHOD,
	openapi.UnsupportedMediaType: gatehouse.EMEDIATYPE,
	openapi.NotAcceptable:        gatehouse.ENOTACCEPTABLE,
	openapi.BadRequest:           gatehouse.EINVALID,
	openapi.Unprocessable:        gatehouse.EUNPROCESSABLE,
}

func refusalError(ref *openapi.Refusal) *gatehouse.Error {
	e := &gatehouse.Error{Code: codes[ref.Kind], Message: ref.Detail}
	if len(ref.Violations) > 0 {
		e.Fields = make([]gatehouse.FieldError, len(ref.Violations))
		for i, v := range ref.Violations {
			e.Fields[i] = gatehouse.FieldError{Field: v.Field, Message: v.Message, Unlisted: v.Unlisted}
		}
	}
	return e
}

// findingDetail is the detail of the answer an enforcing policy would
// have given, its errors after it.
func findingDetail(e *gatehouse.Error) string {
	if len(e.Fields) == 0 {
		return e.Message
	}
	var sb strings.Builder
	sb.WriteString(e.Message)
	for i, f := range e.Fields {
		if i == gatehouse.MaxFieldErrors {
			fmt.Fprintf(&sb, " (and %d more)", len(e.Fields)-i)
			break
		}
		sb.WriteString(" ")
		sb.WriteString(f.Field)
		sb.WriteString(": ")
		sb.WriteString(f.Message)
		sb.WriteString(";")
	}
	return strings.TrimSuffix(sb.String(), ";")
}
