package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/proxy/forward"
	"go.opentelemetry.io/otel/trace"
)

// mirrorRuntime is what the data plane keeps of one mirror target (a
// mirror policy on a route) for the revision: its counters, and how long
// a shadow exchange may take, head and body, which is its service's
// connect and read timeouts together.
type mirrorRuntime struct {
	metrics *mirrorMetrics
	limit   time.Duration
}

// resolveSplits resolves, at Apply, the counters of the services each
// route's exchanges may go to (its own and its traffic split's) and
// those of its mirror targets.
func (h *Handler) resolveSplits(next *state, rev *gatehouse.Revision) {
	services := make(map[string]*gatehouse.Service, len(rev.Services))
	for _, s := range rev.Services {
		services[s.ID] = s
	}
	for _, r := range rev.Routes {
		chain := next.policies.Chain(r.ID)
		h.opts.Metrics.forServices(next.routes[r.ID], r.ID, r.ServiceID, chain.Services())
		for _, t := range chain.Mirrors() {
			limit := forward.DefaultConnectTimeout + forward.DefaultReadTimeout
			if s := services[t.ServiceID]; s != nil && s.ConnectTimeoutMS+s.ReadTimeoutMS > 0 {
				limit = time.Duration(s.ConnectTimeoutMS+s.ReadTimeoutMS) * time.Millisecond
			}
			if next.mirrors == nil {
				next.mirrors = map[*policy.MirrorTarget]*mirrorRuntime{}
			}
			next.mirrors[t] = &mirrorRuntime{metrics: h.opts.Metrics.forMirror(r.ID, t.ServiceID), limit: limit}
		}
	}
}

// mirror starts copying out, the upstream's request, to the shadow
// services pr.Mirrors lists. Each target's slot is taken first: a target
// with none free is skipped at once (skipped_busy), and nothing is kept
// for it, so that the bodies kept are bounded by the slots. A request
// without a body is copied at once. One with a body is copied once the
// primary exchange has read all of it, to the targets whose
// max_body_bytes it is within: mirror wraps out.Body to keep what
// passes. The returned tee, if not nil, must be ended once the primary
// exchange is over: a body never read to its end is not copied.
//
// Copies go on goroutines of their own, under the data plane's context
// and the shadow's own time limit: nothing the shadow does reaches the
// client's answer or delays it.
func (h *Handler) mirror(st *state, pr *policy.Request, out *http.Request, body *limitedBody) *mirrorTee {
	// The pool rewrites the URL it sends: each copy takes its own, from
	// the request as it is before the primary goes.
	t := &mirrorTee{h: h, st: st, method: out.Method, u: *out.URL, header: out.Header.Clone(),
		span: trace.SpanFromContext(out.Context())}
	for _, target := range pr.Mirrors {
		rt := st.mirrors[target]
		switch {
		case body != nil && out.ContentLength > target.MaxBodyBytes:
			rt.metrics.skipBody()
		case st.pools[target.ServiceID] == nil:
			rt.metrics.fail() // core and policy compile refuse this
		case !target.Acquire():
			rt.metrics.skipBusy()
		default:
			t.max = max(t.max, target.MaxBodyBytes)
			t.targets = append(t.targets, target)
		}
	}
	if body == nil {
		t.send(nil)
		return nil
	}
	if len(t.targets) == 0 {
		return nil
	}
	if out.ContentLength > 0 {
		t.kept = make([]byte, 0, out.ContentLength) // within t.max: checked above
	}
	t.body = body
	out.Body = t
	return t
}

// mirrorTee is the upstream request's body, kept as it is read, up to the
// largest max_body_bytes of the targets that may still get a copy, each
// of which holds one of its slots until its copy is done or skipped.
type mirrorTee struct {
	h      *Handler
	st     *state
	method string
	u      url.URL
	header http.Header
	// span is the request's server span, the parent of each copy's
	// client spans; a no-op one when the request is not traced.
	span trace.Span

	body *limitedBody
	// The transport reads the body on its own goroutine, perhaps still
	// after the exchange ended (end): mu guards what follows.
	mu sync.Mutex
	// targets are those that may still get a copy, each holding a slot;
	// kept is what the primary read so far, up to max, the largest of
	// their limits; nil once no target can get it.
	targets []*policy.MirrorTarget
	kept    []byte
	max     int64
	// done: the copies went, or were given up.
	done bool
}

func (t *mirrorTee) Read(p []byte) (int, error) {
	n, err := t.body.Read(p)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return n, err
	}
	if n > 0 {
		if size := int64(len(t.kept) + n); size > t.max {
			t.drop(size)
		}
		if len(t.targets) > 0 {
			t.kept = append(t.kept, p[:n]...)
		}
	}
	switch {
	case err == io.EOF:
		t.done = true
		t.send(t.kept)
		t.kept = nil
	case err != nil:
		t.skip()
	}
	return n, err
}

// drop gives up the copies of the targets whose limit a body of size
// passed, giving their slots back at once, and keeps no more than the
// others can take: nothing once none is left (the tee is then done).
func (t *mirrorTee) drop(size int64) {
	kept, limit := t.targets[:0], int64(0)
	for _, target := range t.targets {
		if size > target.MaxBodyBytes {
			t.st.mirrors[target].metrics.skipBody()
			target.Release()
			continue
		}
		kept = append(kept, target)
		limit = max(limit, target.MaxBodyBytes)
	}
	clear(t.targets[len(kept):])
	t.targets, t.max = kept, limit
	if len(kept) == 0 {
		t.kept, t.done = nil, true
	}
}

func (t *mirrorTee) Close() error { return t.body.Close() }

// ClientFailed passes on the primary body's verdict (forward.ClientBody).
func (t *mirrorTee) ClientFailed() bool { return t.body.ClientFailed() }

var _ forward.ClientBody = (*mirrorTee)(nil)

// end gives up the copies whose body was not read to its end: the
// primary failed, or its upstream answered without reading it all.
func (t *mirrorTee) end() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.done {
		t.skip()
	}
}

// skip gives up every remaining copy and its slot; t.mu is held.
func (t *mirrorTee) skip() {
	t.done = true
	for _, target := range t.targets {
		t.st.mirrors[target].metrics.skipBody()
		target.Release()
	}
	t.targets, t.kept = nil, nil
}

// send starts one copy per target, each on the slot it holds, which the
// copy gives back when it is done.
func (t *mirrorTee) send(body []byte) {
	for _, target := range t.targets {
		u := t.u
		req := &http.Request{Method: t.method, URL: &u, Header: t.header.Clone(), Body: http.NoBody,
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
		if len(body) > 0 {
			req.ContentLength = int64(len(body))
			req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
			req.Body, _ = req.GetBody()
		}
		go t.h.shadow(req, t.span, t.st.pools[target.ServiceID], target, t.st.mirrors[target])
	}
	t.targets = nil
}

// shadow sends one copy and reads its answer to the end, throwing it
// away; the answer's class, or its failure, is counted. A copy of a
// traced request (parent, its server span, valid) is traced as any
// upstream exchange is, a client span per attempt with its traceparent
// sent, marked as a mirror's (forward.Mirror); an untraced one costs
// nothing more.
func (h *Handler) shadow(req *http.Request, parent trace.Span, pool *forward.Pool, target *policy.MirrorTarget, rt *mirrorRuntime) {
	defer target.Release()
	ctx, cancel := context.WithTimeout(h.background, rt.limit)
	defer cancel()
	if parent.SpanContext().IsValid() {
		ctx = forward.Mirror(trace.ContextWithSpan(ctx, parent))
	}
	resp, _, err := pool.RoundTrip(req.WithContext(ctx))
	if err != nil {
		rt.metrics.fail()
		return
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		rt.metrics.fail()
		return
	}
	rt.metrics.result(resp.StatusCode)
}

func (mm *mirrorMetrics) result(status int) {
	if mm != nil && status >= 100 && status < 600 {
		mm.classes[status/100].Inc()
	}
}

func (mm *mirrorMetrics) fail() {
	if mm != nil {
		mm.failed.Inc()
	}
}

func (mm *mirrorMetrics) skipBody() {
	if mm != nil {
		mm.skippedBody.Inc()
	}
}

func (mm *mirrorMetrics) skipBusy() {
	if mm != nil {
		mm.skippedBusy.Inc()
	}
}
