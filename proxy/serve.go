package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/serve"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/problem"
	"github.com/gatehouse/gatehouse/proxy/core"
	"github.com/gatehouse/gatehouse/proxy/forward"
)

// decisions recycles Decisions, whose Params keep their backing array.
var decisions = sync.Pool{New: func() any { return new(core.Decision) }}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	st := h.state.Load()
	if st == nil {
		st = unconfigured
	}
	d := decisions.Get().(*core.Decision)
	defer decisions.Put(d)
	if st.preflights && r.Method == http.MethodOptions && h.preflight(w, r, st, d, start) {
		return
	}
	st.core.Decide(&core.Request{Method: r.Method, Host: r.Host, Path: r.URL.EscapedPath(), ContentLength: r.ContentLength}, d)
	if d.Err != nil {
		if d.Allow != "" {
			w.Header().Set("Allow", d.Allow)
		}
		if d.Route != nil {
			// A declared size over the route's limit: the contract checks
			// credentials, permissions and content type first.
			st.inboundHeader(r.Header, h.trusts(r.RemoteAddr))
			if chain := st.policies.Chain(d.Route.ID); chain != nil {
				h.serveWithPolicies(w, r, st, d, nil, chain, start)
				return
			}
		}
		h.opts.Metrics.observe(st.unmatched, h.fail(w, r, d.Err), start)
		return
	}
	st.inboundHeader(r.Header, h.trusts(r.RemoteAddr))
	pool := st.pools[d.Route.ServiceID]
	if pool == nil {
		// core.Compile refuses such revisions; this is a bug, not input.
		h.opts.Metrics.observe(st.unmatched, h.fail(w, r, gatehouse.Internal(errors.New("route without pool"))), start)
		return
	}
	chain := st.policies.Chain(d.Route.ID)
	if chain == nil {
		serve.Annotate(w, d.Route.ID, d.Route.ServiceID)
		h.traceRoute(r, d, nil)
		o := h.forward(w, r, st, d, pool, nil, nil)
		m := st.routes[d.Route.ID]
		h.opts.Metrics.observe(m, o.status, start)
		h.opts.Metrics.answered(m, d.Route.ServiceID, o.status)
		if o.broke {
			h.cut(d.Route.ServiceID)
		}
		return
	}
	h.serveWithPolicies(w, r, st, d, pool, chain, start)
}

// preflight answers a CORS preflight (OPTIONS with Origin and
// Access-Control-Request-Method) to a route with a cors policy: the route
// that would serve the method the preflight asks about, as Decide finds
// it. It answers 204 or 403 (policy.CORS.Preflight) before any other
// policy runs (browsers send preflights without credentials) and without
// the upstream, and reports true. A preflight asking for a method no
// route on the path serves (Decide's 405) is the path's cors policy's to
// refuse (refuseMethod). Any other OPTIONS request, a preflight to a
// route without cors included, is served as every request is (false):
// the route's 405 and Allow hold.
func (h *Handler) preflight(w http.ResponseWriter, r *http.Request, st *state, d *core.Decision, start time.Time) bool {
	method := r.Header["Access-Control-Request-Method"]
	if len(method) != 1 || method[0] == "" || len(r.Header["Origin"]) == 0 {
		return false
	}
	st.core.Decide(&core.Request{Method: method[0], Host: r.Host, Path: r.URL.EscapedPath()}, d)
	if d.Route == nil && d.Allow != "" {
		return h.refuseMethod(w, r, st, d, start)
	}
	if d.Err != nil || d.Route == nil {
		return false
	}
	cors := st.policies.Chain(d.Route.ID).CORS()
	if cors == nil {
		return false
	}
	status := http.StatusNoContent
	if err := cors.Preflight(w.Header(), r.Header); err != nil {
		status = h.fail(w, r, err)
	} else {
		w.WriteHeader(status)
	}
	h.opts.Metrics.observe(st.routes[d.Route.ID], status, start)
	return true
}

// refuseMethod answers a preflight asking for a method no route on its
// path serves, d being Decide's 405 for it, when some route on the path
// (host and path, any method: those d.Allow lists) has a cors policy:
// 403, since any allowing answer would send the browser on to the 405.
// The path's cors policy is those routes' if they all have the same
// one: it judges the origin first, as it would for a method it serves;
// routes whose policies differ leave no one to speak for the origin, and
// the method is refused alone. With no cors on the path it reports false:
// the preflight is an ordinary OPTIONS request.
func (h *Handler) refuseMethod(w http.ResponseWriter, r *http.Request, st *state, d *core.Decision, start time.Time) bool {
	allow := d.Allow
	var cors *policy.CORS
	var routeID string
	agree := true
	for m := range strings.SplitSeq(allow, ", ") {
		st.core.Decide(&core.Request{Method: m, Host: r.Host, Path: r.URL.EscapedPath()}, d)
		if d.Route == nil {
			continue
		}
		c := st.policies.Chain(d.Route.ID).CORS()
		switch {
		case c == nil:
		case cors == nil:
			cors, routeID = c, d.Route.ID
		case !cors.Equal(c):
			agree = false
		}
	}
	if cors == nil {
		return false
	}
	if !agree {
		cors = nil
	}
	h.opts.Metrics.observe(st.routes[routeID], h.fail(w, r, policy.RefuseMethod(w.Header(), r.Header, cors, allow)), start)
	return true
}

// serveWithPolicies runs the route's policies, then forwards what they let
// on and tells them how it went, even when the exchange is aborted. A
// decision core refused on the declared size (d.Err) is answered after
// the checks of the head and before any of the body is read.
func (h *Handler) serveWithPolicies(w http.ResponseWriter, r *http.Request, st *state, d *core.Decision, pool *forward.Pool,
	chain *policy.Chain, start time.Time) {
	m := st.routes[d.Route.ID]
	pr := policy.NewRequest()
	pr.W, pr.R, pr.RouteID, pr.ServiceID = w, r, d.Route.ID, d.Route.ServiceID
	pr.Client, pr.MaxBodyBytes, pr.Now = h.clientAddr(r), d.Route.MaxBodyBytes, h.now(start)
	pr.Params = d.Params
	err := chain.RunHead(pr)
	if err == nil && d.Err != nil {
		pr.Finish(policy.Outcome{Refused: true})
		err = d.Err
	}
	if err == nil {
		err = chain.RunBody(pr)
	}
	if err == nil && pr.ServiceID != d.Route.ServiceID {
		// A traffic split chose another service (policy.Split).
		if pool = st.pools[pr.ServiceID]; pool == nil {
			// policy.Compile refuses a split to a service the revision
			// lacks; this is a bug, not input.
			pr.Finish(policy.Outcome{Refused: true})
			err = gatehouse.Internal(fmt.Errorf("route %q: traffic split to service %q without pool", d.Route.ID, pr.ServiceID))
		}
	}
	h.traceRoute(r, d, pr)
	if err != nil {
		serve.Annotate(w, d.Route.ID, "")
		pr.Release()
		h.opts.Metrics.observe(m, h.fail(w, r, err), start)
		return
	}
	serve.Annotate(w, d.Route.ID, pr.ServiceID)
	if pr.Path != "" {
		d.Path = pr.Path // a transform's path template
	}
	var status int
	sent := time.Now()
	defer func() {
		var latency time.Duration
		if !pr.Head.IsZero() {
			latency = pr.Head.Sub(sent)
		}
		pr.Finish(policy.Outcome{Status: status, Latency: latency, ClientFault: pr.ClientFault, UpstreamBroke: pr.UpstreamBroke})
		pr.Release()
	}()
	o := h.forward(w, r, st, d, pool, pr, chain)
	h.opts.Metrics.observe(m, o.status, start)
	h.opts.Metrics.answered(m, pr.ServiceID, o.status)
	if o.broke {
		// Policies see no status for a response that never completed.
		h.cut(pr.ServiceID)
	}
	status = o.status
}

// now is the policies' clock: Options.Now, or the request's start.
func (h *Handler) now(start time.Time) time.Time {
	if h.opts.Now != nil {
		return h.opts.Now()
	}
	return start
}

// fail answers err as a problem and returns the status sent.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) int {
	problem.WriteNegotiated(w, r, err)
	return problem.StatusOf(err)
}

// abort ends the request without a response: net/http would otherwise
// send an empty 200 for a handler that wrote nothing, and a client that
// half-closed its side would read it as a success. It counts a client
// abort.
func (h *Handler) abort() {
	h.opts.Metrics.observe(nil, 0, time.Time{})
	panic(http.ErrAbortHandler)
}

// cut ends a response the upstream broke off mid-body, once its caller
// recorded it: the client's connection closes, so the client cannot take
// the truncated body for a complete one.
func (h *Handler) cut(service string) {
	h.opts.Metrics.upstreamBroke(service)
	panic(http.ErrAbortHandler)
}
