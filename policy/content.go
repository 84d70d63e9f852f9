package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/httpx"
)

func init() { register(gatehouse.PolicyContent, buildContent) }

// content enforces a route's content contracts in two parts. Check runs
// in the policy order and reads only headers: a body of a type the route
// does not accept is 415, an Accept that excludes every type it produces
// is 406. Late, which the Chain runs after every other type's Step,
// reads a JSON body and checks it against the schemas: malformed is 400,
// a violation 422. Several content policies at one level all apply, and
// the first that refuses a request answers it.
type content struct {
	contracts []*contract
	schema    *schemaCheck // nil if no contract has a schema
}

// contract is one content policy compiled, shared by every route that
// uses it and kept in State across deploys of the same policy version.
type contract struct {
	accepts []mediaRange
	// acceptsText is accepts joined for details; acceptsHeader is the
	// same as the value of Accept-Post and Accept-Patch (shared: header
	// maps only ever replace a value slice, never append to it).
	acceptsText   string
	acceptsHeader []string
	produces      []mediaRange
	notAcceptable *gatehouse.Error // its text never varies
	schema        *jsonschema.Schema
}

// compiledContract is what State keeps for one policy version.
type compiledContract struct {
	c   *contract
	err error
}

func buildContent(b *Build, pols []*gatehouse.Policy) (Step, error) {
	s := &content{}
	var schemas []*jsonschema.Schema
	for _, p := range pols {
		// The key adds a hash of the config to the policy's id and
		// version, so that a policy deleted and created again under the
		// same id and version cannot run the old one's contract.
		sum := sha256.Sum256(p.Config)
		key := b.StateKey(p, false) + "/" + hex.EncodeToString(sum[:8])
		cc := Get(b.Env.State, key, func() *compiledContract {
			c, err := compileContract(p)
			return &compiledContract{c, err}
		})
		if cc.err != nil {
			return nil, cc.err
		}
		s.contracts = append(s.contracts, cc.c)
		if cc.c.schema != nil {
			schemas = append(schemas, cc.c.schema)
		}
	}
	if len(schemas) > 0 {
		s.schema = &schemaCheck{schemas: schemas}
	}
	return s, nil
}

func compileContract(p *gatehouse.Policy) (*contract, error) {
	cfgs, err := configs[gatehouse.ContentConfig]([]*gatehouse.Policy{p})
	if err != nil {
		return nil, err
	}
	cfg := cfgs[0]
	c := &contract{}
	ranges := func(field string, list []string) ([]mediaRange, error) {
		out := make([]mediaRange, 0, len(list))
		for _, s := range list {
			m, ok := parseRange(s)
			if !ok {
				return nil, fmt.Errorf("policy %q: config.%s: %q is not a media type", p.ID, field, s)
			}
			out = append(out, m)
		}
		return out, nil
	}
	if c.accepts, err = ranges("accepts", cfg.Accepts); err != nil {
		return nil, err
	}
	if c.produces, err = ranges("produces", cfg.Produces); err != nil {
		return nil, err
	}
	c.acceptsText = joinRanges(c.accepts)
	c.acceptsHeader = []string{c.acceptsText}
	c.notAcceptable = gatehouse.Errorf(gatehouse.ENOTACCEPTABLE,
		"The Accept header excludes every media type this route produces: %s.", joinRanges(c.produces))
	// Decoding checked the schema by compiling it: that is the one kept.
	c.schema = cfg.CompiledSchema()
	return c, nil
}

func joinRanges(list []mediaRange) string {
	s := make([]string, len(list))
	for i, m := range list {
		s[i] = m.String()
	}
	return strings.Join(s, ", ")
}

// Late returns the schema check, which reads the body.
func (s *content) Late() Step {
	if s.schema == nil {
		return nil // a nil *schemaCheck would be a non-nil Step
	}
	return s.schema
}

func (s *content) Check(r *Request) error {
	for _, c := range s.contracts {
		if len(c.accepts) > 0 && httpx.HasBody(r.R) {
			if err := c.checkContentType(r); err != nil {
				return err
			}
		}
		if len(c.produces) > 0 && !acceptable(r.R.Header["Accept"], c.produces) {
			return c.notAcceptable
		}
	}
	return nil
}

// checkContentType refuses a body whose media type the contract does not
// accept with 415, saying what it does accept: in Accept-Post for a POST
// and Accept-Patch for a PATCH (RFC 5789 §2.2), and in the detail for
// every method, since no field advertises the types a PUT takes.
func (c *contract) checkContentType(r *Request) error {
	typ, sub, ok := contentType(r.R.Header["Content-Type"])
	if ok {
		for _, m := range c.accepts {
			if m.Matches(typ, sub) {
				return nil
			}
		}
	}
	switch r.R.Method {
	case http.MethodPost:
		r.W.Header()["Accept-Post"] = c.acceptsHeader
	case http.MethodPatch:
		r.W.Header()["Accept-Patch"] = c.acceptsHeader
	}
	switch {
	case ok:
		return gatehouse.Errorf(gatehouse.EMEDIATYPE, "This route does not accept bodies of type %s; it accepts %s.",
			strings.ToLower(typ+"/"+sub), c.acceptsText)
	case len(r.R.Header["Content-Type"]) == 0:
		return gatehouse.Errorf(gatehouse.EMEDIATYPE, "The request body has no Content-Type; this route accepts %s.", c.acceptsText)
	}
	return gatehouse.Errorf(gatehouse.EMEDIATYPE, "The request's Content-Type is not one media type; this route accepts %s.", c.acceptsText)
}

// schemaCheck validates JSON request bodies against the schemas of a
// route's content policies. It reads the body whole, within the route's
// limit, and puts it back for the upstream, unchanged.
type schemaCheck struct {
	schemas []*jsonschema.Schema
}

// Check leaves bodies that are not JSON (application/json or +json) to
// the accepts list: a route that must take JSON only says so there.
func (s *schemaCheck) Check(r *Request) error {
	req := r.R
	if !httpx.HasBody(req) {
		return nil
	}
	if typ, sub, ok := contentType(req.Header["Content-Type"]); !ok || !isJSON(typ, sub) {
		return nil
	}
	body, err := readBody(req, r.MaxBodyBytes)
	if err != nil {
		return err
	}
	replaceBody(req, body)
	doc, err := decodeJSON(body)
	if err != nil {
		return err
	}
	for _, sch := range s.schemas {
		if err := sch.Validate(doc); err != nil {
			return schemaViolations(err, doc)
		}
	}
	return nil
}

// readBody reads req's body whole. Over limit is 413. A client that
// stalls is 408 and one whose body breaks off or has bad chunk framing
// 400, as the data plane answers such bodies while it streams them.
// Memory grows with what arrives, not with the length declared.
func readBody(req *http.Request, limit int64) ([]byte, error) {
	size := int64(512)
	if req.ContentLength > 0 {
		size = min(req.ContentLength, 32<<10, limit+1)
	}
	buf := make([]byte, 0, max(size, 1))
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		room := buf[len(buf):cap(buf)]
		if left := limit + 1 - int64(len(buf)); int64(len(room)) > left {
			room = room[:left] // one byte over the limit is enough to know
		}
		n, err := req.Body.Read(room)
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, gatehouse.BodyTooLarge(limit)
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, gatehouse.BodyUnreadable(err)
		}
	}
}

// replaceBody gives req the body read from it, replayable, so that the
// upstream receives the bytes the client sent. A body that came with
// trailers keeps its length unknown, so that it goes on chunked and the
// trailers with it. Expect is dropped: reading the body sent the client
// its 100 Continue, and the upstream need not be asked again.
func replaceBody(req *http.Request, body []byte) {
	delete(req.Header, "Expect")
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	if len(req.Trailer) > 0 {
		req.Body, _ = req.GetBody()
		return
	}
	req.ContentLength = int64(len(body))
	req.TransferEncoding = nil
	if len(body) == 0 {
		req.Body = http.NoBody
		req.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
		return
	}
	req.Body, _ = req.GetBody()
}
