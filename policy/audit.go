package policy

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"runtime"
	"sync"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/openapi"
	"github.com/gatehouse/gatehouse/problem"
)

func init() { register(gatehouse.PolicyHTTPAudit, buildHTTPAudit) }

// ResponseStep is a Step that also sees the upstream's response: the
// response audit, error normalisation, and later the openapi policy's
// spec rules. The data plane calls, for a route whose Chain has any
// (Chain.Responds):
//
//  1. RespondHead with the head, before any of it reaches the client. A
//     step may Replace the response, or Hold the body (read up to that
//     many bytes before the head is written), or Keep a prefix of it as
//     it streams. It returns its state for this response: 0 to hear no
//     more of it, else what it wants back in the next calls.
//  2. RespondHeld, if a step held the body, with what was read
//     (Response.Prefix, all of the body unless Response.Over). A step may
//     still Replace the response.
//  3. RespondEnd, once the body ended (Response.Complete says cleanly),
//     with Response.Bytes and up to Keep bytes in Response.Prefix: for
//     findings only, the response is sent. It runs before the handler
//     returns, so the response's end and the next request on its
//     connection wait for it: costly work goes off the request path
//     (judgeLater).
//
// A response no step holds streams as it would without them.
type ResponseStep interface {
	Step
	RespondHead(r *Request, resp *Response) (state uint8)
	RespondHeld(r *Request, resp *Response, state uint8)
	RespondEnd(r *Request, resp *Response, state uint8)
}

// Response is the upstream's response on its way through a route's
// ResponseSteps; the data plane fills it, the steps read it and say what
// to do with it.
type Response struct {
	// Head is the response as the rules that need no spec judge it; its
	// Header is the upstream's (read only).
	audit.Response
	// Replace, once a step sets it, is answered instead of the response
	// (through the problem writer); the upstream's body is discarded.
	Replace error

	hold, keep int64
	states     [MaxResponseSteps]uint8

	// Prefix is the body held (RespondHeld) or kept (RespondEnd).
	Prefix []byte
	// Over: the body is longer than was held; Prefix is its start.
	Over bool
	// Bytes is how much body the client was sent, or was read when held.
	Bytes int64
	// Complete: the body ended cleanly (RespondEnd), or within what was
	// held (RespondHeld).
	Complete bool
	// Operation is the request's operation in the route's API
	// description, for findings; "" without one.
	Operation string

	// op and content are what the spec rules found for this response
	// (its operation, then its documented content), found once.
	op      *openapi.Op
	content *openapi.ResponseContent
}

// MaxResponseSteps bounds the ResponseSteps of one route.
const MaxResponseSteps = 4

// Hold asks the data plane to read up to n bytes of body before it writes
// the head.
func (p *Response) Hold(n int64) { p.hold = max(p.hold, n) }

// Keep asks the data plane to keep up to n bytes of body as it streams.
func (p *Response) Keep(n int64) { p.keep = max(p.keep, n) }

// Held returns how many bytes of body to read before the head is
// written (0: stream at once).
func (p *Response) Held() int64 { return p.hold }

// Kept returns how many bytes of the streamed body to keep.
func (p *Response) Kept() int64 { return p.keep }

// Responds reports whether any of the route's Steps sees responses.
func (c *Chain) Responds() bool { return len(c.respond) > 0 }

// RespondHead runs each ResponseStep's RespondHead, until one replaces
// the response.
func (c *Chain) RespondHead(r *Request) {
	for i, s := range c.respond {
		r.Resp.states[i] = s.RespondHead(r, &r.Resp)
		if r.Resp.Replace != nil {
			return
		}
	}
}

// RespondHeld runs RespondHeld of the steps that want it, until one
// replaces the response.
func (c *Chain) RespondHeld(r *Request) {
	for i, s := range c.respond {
		if st := r.Resp.states[i]; st != 0 {
			s.RespondHeld(r, &r.Resp, st)
			if r.Resp.Replace != nil {
				return
			}
		}
	}
}

// RespondEnd runs RespondEnd of the steps that want it.
func (c *Chain) RespondEnd(r *Request) {
	for i, s := range c.respond {
		if st := r.Resp.states[i]; st != 0 {
			s.RespondEnd(r, &r.Resp, st)
		}
	}
}

// addResponseStep adds s to c's ResponseSteps if it is one.
func (c *Chain) addResponseStep(s Step) error {
	rs, ok := s.(ResponseStep)
	if !ok {
		return nil
	}
	if len(c.respond) == MaxResponseSteps {
		return errTooManyResponseSteps
	}
	c.respond = append(c.respond, rs)
	return nil
}

// auditor judges a route's responses by the rules that need no spec,
// records what it finds, replaces on enforce what breaks an error rule of
// the head, and normalises upstream errors. The http-audit policy is one;
// the openapi policy's response side is one with its spec's rules
// (SpecRules) added.
type auditor struct {
	route     string
	enforce   bool
	judge     bool // responses: report or enforce
	normalize bool
	rate      float64
	sink      audit.Sink
	// spec, if set, judges the response against the route's API
	// description too (the openapi policy), its body within bodyLimit
	// bytes.
	spec      SpecRules
	bodyLimit int64
}

// SpecRules judges a response against a route's API description: the
// openapi policy's part, which an auditor runs beside the rules of HTTP,
// sharing their sampling, recording, enforcement and normalisation.
type SpecRules interface {
	// Operation names the request's operation in findings ("" if none);
	// it is called first, and may keep on resp what the other calls for
	// the same response need.
	Operation(r *Request, resp *Response) string
	// JudgeHead calls broke for each rule of the description the head
	// breaks (undocumented-status, undocumented-media-type,
	// missing-response-header), and reports whether the body is to be
	// judged against a schema (JudgeBody).
	JudgeHead(r *Request, resp *Response, broke func(rule, detail string)) (judgeBody bool)
	// JudgeBody calls broke if body, the whole body, breaks the schema of
	// its status and media type (body-schema). It is called only for a
	// body within the auditor's bodyLimit.
	JudgeBody(r *Request, resp *Response, body []byte, broke func(rule, detail string))
}

// States an auditor keeps for a response (bits).
const (
	stateJudge     uint8 = 1 << iota // sampled: judge the body's rules at the end
	stateNormalize                   // restate the held error body as a problem
	stateSchema                      // judge the body against its schema
)

func buildHTTPAudit(b *Build, pols []*gatehouse.Policy) (Step, error) {
	cfgs, err := configs[gatehouse.HTTPAuditConfig](pols)
	if err != nil {
		return nil, err
	}
	// Several at one level: the first one listed speaks.
	c := cfgs[0]
	return newAuditor(b, c.Responses, c.SampleRate, c.NormalizeErrors), nil
}

func newAuditor(b *Build, mode string, rate float64, normalize bool) *auditor {
	return &auditor{route: b.Route.ID, enforce: mode == gatehouse.ModeEnforce, judge: mode != gatehouse.ModeOff,
		normalize: normalize, rate: rate, sink: b.Env.Findings}
}

// Check lets every request on: the auditor judges responses only.
func (a *auditor) Check(*Request) error { return nil }

func (a *auditor) sampled() bool { return a.rate >= 1 || a.rate > 0 && rand.Float64() < a.rate }

func (a *auditor) RespondHead(r *Request, resp *Response) uint8 {
	var state uint8
	// Sampling thins the report, never enforcement: on enforce every head
	// is judged, and a replaced response always recorded.
	if sampled := a.judge && a.sampled(); sampled || a.judge && a.enforce {
		if a.spec != nil {
			// Only a judged response needs its operation (for the spec's
			// rules and the findings' names).
			resp.Operation = a.spec.Operation(r, resp)
		}
		broke := a.broke(r, resp, sampled)
		audit.Judge(&resp.Response, audit.Head, broke)
		if a.spec != nil && resp.Replace == nil && a.spec.JudgeHead(r, resp, broke) && resp.Replace == nil {
			// body-schema: on enforce the body is held, within the limit,
			// so that it can still be replaced; on report it streams and
			// is judged at its end from what was kept.
			if a.enforce {
				resp.Hold(a.bodyLimit)
				state |= stateSchema
			} else if sampled {
				resp.Keep(a.bodyLimit)
				state |= stateSchema
			}
		}
		if resp.Replace != nil {
			return 0
		}
		if sampled && resp.Body == audit.BodyUnknown {
			state |= stateJudge
		}
	}
	if a.normalize && resp.Status >= 400 && !audit.IsProblem(resp.Header) {
		if r.R.Method == http.MethodHead || resp.Body == audit.BodyAbsent {
			resp.Replace = &problem.Upstream{Status: resp.Status}
			return 0
		}
		resp.Hold(audit.MaxErrorBody)
		state |= stateNormalize
	}
	return state
}

// broke returns the callback that records a broken rule, when sampled,
// and on enforce replaces the response for an error-severity rule judged
// from its head.
func (a *auditor) broke(r *Request, resp *Response, sampled bool) func(rule, detail string) {
	return func(rule, detail string) {
		replace := a.enforce && resp.Replace == nil && audit.SeverityOf(rule) == audit.Error && audit.HeadRule(rule)
		if replace {
			resp.Replace = &problem.Nonconforming{Rule: rule, UpstreamStatus: resp.Status, Detail: detail}
		}
		if sampled || replace {
			a.record(r, resp, rule, detail)
		}
	}
}

func (a *auditor) RespondHeld(r *Request, resp *Response, state uint8) {
	if state&stateSchema != 0 && a.enforce && a.judgesBody(resp) {
		// Held whole: a body that breaks its schema is replaced, as a
		// head would be. A longer one passes unjudged by body-schema.
		a.spec.JudgeBody(r, resp, resp.Prefix, func(rule, detail string) {
			if resp.Replace == nil && audit.SeverityOf(rule) == audit.Error {
				resp.Replace = &problem.Nonconforming{Rule: rule, UpstreamStatus: resp.Status, Detail: detail}
			}
			a.record(r, resp, rule, detail)
		})
		if resp.Replace != nil {
			return
		}
	}
	if state&stateNormalize == 0 {
		return
	}
	if state&stateJudge != 0 {
		// Its rules are judged now, on what the upstream sent, not on the
		// problem that replaces it: held, the body is known present (over
		// the hold) or ended.
		a.judgeEnd(r, resp)
	}
	var msg string
	if !resp.Over {
		msg = audit.UpstreamMessage(resp.Header.Get("Content-Type"), resp.Prefix)
	}
	resp.Replace = &problem.Upstream{Status: resp.Status, Message: msg}
}

func (a *auditor) RespondEnd(r *Request, resp *Response, state uint8) {
	if state&stateJudge != 0 && state&stateNormalize == 0 {
		a.judgeEnd(r, resp)
	}
	if state&stateSchema != 0 && !a.enforce && a.judgesBody(resp) {
		// The response is sent: its body is judged off the request path,
		// so that neither the response's end nor the next request on the
		// connection waits for a judge that only reports.
		dr := detach(r)
		judgeLater(func() {
			a.spec.JudgeBody(dr, &dr.Resp, dr.Resp.Prefix, func(rule, detail string) { a.record(dr, &dr.Resp, rule, detail) })
		})
	}
}

// judgesBody reports whether a body is judged against its schema: one
// read whole, within the limit, and not empty (no body is not a JSON
// body breaking its schema; HTTP's rules judge an empty body).
func (a *auditor) judgesBody(resp *Response) bool {
	return resp.Complete && resp.Bytes > 0 && resp.Bytes <= a.bodyLimit
}

// judges bounds the body judges running off the request path; one that
// finds them all busy is dropped, as an unsampled response is.
var (
	judges  = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))
	judging sync.WaitGroup
)

func judgeLater(judge func()) {
	select {
	case judges <- struct{}{}:
	default:
		return
	}
	judging.Add(1)
	go func() {
		defer func() { <-judges; judging.Done() }()
		judge()
	}()
}

// WaitJudges waits for the body judges started off the request path to
// end (tests read their findings after it).
func WaitJudges() { judging.Wait() }

// detach copies of r what a judge and its findings read, so that the
// judge may run after the handler returned and r went back to its pool.
func detach(r *Request) *Request {
	u := *r.R.URL
	d := &Request{RouteID: r.RouteID, ServiceID: r.ServiceID, Now: r.Now, Resp: r.Resp}
	d.R = &http.Request{Method: r.R.Method, URL: &u, Header: http.Header{}}
	if id := problem.RequestID(r.R); id != "" {
		d.R.Header["X-Request-Id"] = []string{id}
	}
	return d
}

// judgeEnd judges the rules that needed the body's end, once it came.
func (a *auditor) judgeEnd(r *Request, resp *Response) {
	if !resp.Complete && resp.Bytes == 0 {
		return // broken off before any body: nothing is known of it
	}
	resp.Body = audit.BodyAbsent
	if resp.Bytes > 0 {
		resp.Body = audit.BodyPresent
	}
	audit.Judge(&resp.Response, audit.Ended, func(rule, detail string) { a.record(r, resp, rule, detail) })
}

func (a *auditor) record(r *Request, resp *Response, rule, detail string) {
	if a.sink == nil {
		return
	}
	f := audit.Finding{Rule: rule, RouteID: a.route, Operation: resp.Operation, Status: resp.Status,
		RequestID: problem.RequestID(r.R), Method: r.R.Method, Path: r.R.URL.Path, Detail: detail, At: r.Now}
	a.sink.Record(&f)
}

var errTooManyResponseSteps = errors.New("too many policies that see responses")
