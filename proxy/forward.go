package proxy

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/problem"
	"github.com/gatehouse/gatehouse/proxy/core"
	"github.com/gatehouse/gatehouse/proxy/forward"
)

// outcome is how a forwarded exchange ended, for metrics and policies.
type outcome struct {
	// status is the status sent, 0 when the client went away first.
	status int
	// broke: the upstream broke off mid-body after status was sent; the
	// caller records it, then cuts the client's connection (cut).
	broke bool
}

// forward sends the request upstream and streams the answer back.
// pr, if not nil, is told when the upstream's answer (or failure) came,
// and chain's ResponseSteps, if any, see the answer (respond).
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, st *state, d *core.Decision, pool *forward.Pool, pr *policy.Request, chain *policy.Chain) outcome {
	o := newOutbound(w, r.Header.Get("Expect") != "")
	if pool.ReleasesRequests() {
		// Deferred first, so run last: after the response body's close
		// and everything else deferred below that may read out.
		defer o.release()
	}
	out, body, upgrade := h.outboundRequest(o, r, st, d)
	if pr != nil && len(pr.Mirrors) > 0 && upgrade == "" {
		if tee := h.mirror(st, pr, out, body); tee != nil {
			defer tee.end()
		}
	}
	out, cancel := grpcDeadline(out)
	if cancel != nil {
		defer cancel()
	}
	if body != nil && r.ProtoMajor == 2 {
		if s := idleStream(w, r, out, body); s != nil {
			defer s.end()
		}
	}
	resp, _, err := pool.RoundTripRelaying(out, o.relayFn)
	if pr != nil {
		pr.Head = time.Now()
	}
	if err != nil && body != nil && r.Context().Err() != nil {
		// net/http cancels the request's context from inside a body read
		// that failed (a stall past the read deadline), before that read
		// returns: the exchange may have failed on the cancel first. Its
		// failure decides between 408 and a client gone away.
		body.settle()
	}
	if body != nil && (body.err() != nil || err != nil && body.exceeded.Load()) {
		if resp != nil {
			resp.Body.Close()
		}
		if pr != nil {
			pr.ClientFault = true
		}
		return outcome{status: h.failBody(w, r, d, body)}
	}
	if err != nil {
		if cancel != nil && forward.RequestDeadlinePassed(out.Context()) {
			return outcome{status: h.failDeadline(w, r, pr, err)}
		}
		return outcome{status: h.failUpstreamOf(w, r, answering(d, pr), err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return outcome{status: h.switchProtocols(w, r, answering(d, pr), resp, upgrade)}
	}
	if chain != nil {
		if cors := chain.CORS(); cors != nil {
			// Before the response steps, so that an upstream error
			// restated as a problem keeps the policy's fields too.
			cors.Scrub(resp.Header)
		}
		if t := chain.Transform(); t != nil {
			t.Respond(resp.Header, pr)
		}
		if chain.Responds() {
			if o, done := h.respond(w, r, d, resp, pr, chain); done {
				return o
			}
			defer chain.RespondEnd(pr)
		}
	}
	writeHead(w, resp)
	flushGRPCHead(w, resp)
	if err := h.copyBody(w, resp); err != nil {
		if cancel != nil && h.endDeadlineStream(w, out, r, pr) {
			return outcome{status: resp.StatusCode}
		}
		if body != nil && body.stalled() && r.Context().Err() == nil {
			return h.endStalledStream(w, r, body, pr, resp.StatusCode)
		}
		if r.Context().Err() == nil {
			// The upstream broke off mid-body: the status is sent, so
			// the client's connection is cut rather than the body
			// ended as if it were complete.
			h.opts.Logger.Warn("upstream response body failed", "request_id", problem.RequestID(r), "error", err)
			if pr != nil {
				pr.UpstreamBroke = true
			}
			return outcome{status: resp.StatusCode, broke: true}
		}
		return outcome{}
	}
	hdr := w.Header()
	for k, vs := range resp.Trailer {
		if relayableTrailer(k) {
			hdr[http.TrailerPrefix+k] = vs
		}
	}
	return outcome{status: resp.StatusCode}
}

// outboundRequest is the upstream's request, built in o: the client's,
// with its path as core decided it, its header as outboundHeader builds
// it, its body within the route's limit (nil: none) and the trailer
// outboundTrailer lets on, and the upgrade asked for ("": none).
// Interim responses are for forward to relay (outbound.relay).
func (h *Handler) outboundRequest(o *outbound, r *http.Request, st *state, d *core.Decision) (*http.Request, *limitedBody, string) {
	o.req = *r // its context included
	out := &o.req
	out.RequestURI = ""
	out.Host = ""
	out.Close = false
	o.url.RawQuery = r.URL.RawQuery
	out.URL = &o.url
	setPath(out.URL, d.Path)
	upgrade := upgradeOffer(r.Header, d.Route)
	out.Header = o.outboundHeader(r, upgrade)

	out.Trailer = nil // never the client's: outboundTrailer's, below
	var body *limitedBody
	if r.ContentLength == 0 && r.Body != nil && len(r.TransferEncoding) == 0 {
		out.Body = http.NoBody
	} else if r.Body != nil {
		body = &limitedBody{r: r.Body, remaining: d.Route.MaxBodyBytes}
		// Only a body of unknown length goes on chunked, with a trailer.
		if len(r.Trailer) > 0 && r.ContentLength <= 0 {
			body.trailer, body.clientTrailer = st.outboundTrailer(r), r.Trailer
			out.Trailer = body.trailer
		}
		out.Body = body
	}
	return out, body, upgrade
}

// failBody answers an exchange that the client's body failed: over the
// route's limit, or broken off or stalled while it streamed. Whatever the
// upstream made of the truncated body is not an answer to this request.
func (h *Handler) failBody(w http.ResponseWriter, r *http.Request, d *core.Decision, body *limitedBody) int {
	if body.err() == nil { // only over the limit
		return h.fail(w, r, gatehouse.BodyTooLarge(d.Route.MaxBodyBytes))
	}
	gerr := gatehouse.BodyUnreadable(body.err())
	if gerr.Code != gatehouse.ETIMEOUT && r.Context().Err() != nil {
		// The client is gone, or half-closed its side. (A read deadline
		// ends the request's context too: a stall is still answered.)
		h.abort()
	}
	if r.ProtoMajor == 1 {
		// Where the rest of the body ends no one can tell: it must not
		// be read as the next request. net/http closes the connection
		// after such a body, but says so in the response only when its
		// own check of the body comes before the upstream exchange
		// closes it (a race; the smuggling suite saw both).
		w.Header().Set("Connection", "close")
	}
	// A stall, bad chunk framing, or a body cut short: answering nothing
	// would let net/http send an empty 200.
	return h.fail(w, r, gerr)
}

// failUpstreamOf answers a round trip to service that failed upstream, as
// the one classifier (forward.Classify) says.
func (h *Handler) failUpstreamOf(w http.ResponseWriter, r *http.Request, service string, err error) int {
	gerr, gone := forward.Classify(r.Context(), err)
	if gone {
		h.opts.Logger.Debug("client went away before the upstream answered", "request_id", problem.RequestID(r))
		h.abort()
	}
	if !gone && forward.TLSFailed(err) {
		h.opts.Logger.Warn("TLS with the upstream failed", "request_id", problem.RequestID(r),
			"service_id", service, "error", err)
	}
	if after, ok := forward.RetryAfter(err); ok {
		w.Header().Set("Retry-After", strconv.FormatInt(httpx.RetrySeconds(after), 10))
	}
	status := h.fail(w, r, gerr)
	h.opts.Metrics.upstreamFailed(service, status)
	return status
}

// answering is the service the exchange went to: the route's, or the
// one its traffic split chose (pr.ServiceID).
func answering(d *core.Decision, pr *policy.Request) string {
	if pr != nil {
		return pr.ServiceID
	}
	return d.Route.ServiceID
}

// writeHead sends the upstream's status and end-to-end header fields,
// with gatehouse's Via added.
func writeHead(w http.ResponseWriter, resp *http.Response) {
	hdr := w.Header()
	// A policy's Link (a deprecated route's successor) joins the
	// upstream's links (pagination, say) rather than being replaced.
	policyLinks := hdr["Link"]
	copyEndToEnd(hdr, resp.Header)
	if _, ok := resp.Header["Content-Type"]; !ok {
		// net/http (HTTP/1 and HTTP/2 alike) would sniff a type for a
		// body written without one, a type the upstream never sent,
		// despite its X-Content-Type-Options: nosniff. A nil value
		// suppresses that and writes nothing.
		hdr["Content-Type"] = nil
	}
	if len(policyLinks) > 0 && len(resp.Header["Link"]) > 0 {
		hdr["Link"] = append(slices.Clip(resp.Header["Link"]), policyLinks...)
	}
	httpx.AddVia(hdr, resp.ProtoMajor, resp.ProtoMinor)
	if len(resp.Trailer) > 0 {
		names := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			if relayableTrailer(k) {
				names = append(names, k)
			}
		}
		if len(names) > 0 {
			hdr["Trailer"] = []string{strings.Join(names, ", ")}
		}
	}
	w.WriteHeader(resp.StatusCode)
}

// copyBody streams the response body, flushing at once when the response
// is a stream (server-sent events, or no declared length), so that each
// event reaches the client as the upstream sends it.
func (h *Handler) copyBody(w http.ResponseWriter, resp *http.Response) error {
	bufp := buffers.Get().(*[]byte)
	defer buffers.Put(bufp)
	buf := *bufp
	var flusher *http.ResponseController
	if resp.ContentLength == -1 || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		flusher = http.NewResponseController(w)
	}
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil // the client went away; nothing to tell it
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// limitedBody stops a request body at the route's limit and remembers that
// it did, so the error the upstream transfer fails with becomes a 413. It
// also remembers a failure to read from the client (a stall or a reset),
// which is the client's failure, not the upstream's.
type limitedBody struct {
	r         io.ReadCloser
	remaining int64 // owned by the reading goroutine
	// The transport reads the body on its own goroutine, perhaps still
	// after RoundTrip returned: what the handler reads is atomic.
	exceeded  atomic.Bool
	clientErr atomic.Pointer[error]
	// closed: the transport closed the body (say, an upstream that
	// answered before reading it all). A read that fails from then on
	// failed by that close, not by the client, unless it is the read
	// deadline's (clientFailure).
	closed atomic.Bool
	// reading is held during each read from the client, for settle.
	reading sync.Mutex
	// trailer is the upstream request's trailer (outboundTrailer), filled
	// from clientTrailer when the client's body ends.
	trailer, clientTrailer http.Header
}

// settle waits for a read from the client in progress to return, so that
// err includes its failure. Call it only once the request's context is
// done: the read then returns at once.
func (b *limitedBody) settle() {
	b.reading.Lock()
	b.reading.Unlock() //lint:ignore SA2001 waiting for the read is the point
}

func (b *limitedBody) err() error {
	if p := b.clientErr.Load(); p != nil {
		return *p
	}
	return nil
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.remaining < 0 {
		b.exceeded.Store(true)
		return 0, errBodyTooLarge
	}
	if int64(len(p)) > b.remaining+1 {
		p = p[:b.remaining+1]
	}
	b.reading.Lock()
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF && b.clientFailure(err) {
		e := err // a copy, so that err itself stays off the heap
		b.clientErr.Store(&e)
	}
	b.reading.Unlock()
	b.remaining -= int64(n)
	if b.remaining < 0 {
		b.exceeded.Store(true)
		return 0, errBodyTooLarge
	}
	if err == io.EOF && b.trailer != nil {
		fillTrailer(b.trailer, b.clientTrailer)
	}
	return n, err
}

// clientFailure reports whether a failed read, err, is the client's
// doing. A read the transport's Close broke is not, but a stall still is:
// HTTP/1.1 cancels the request, and so the exchange, from inside the
// stalled read before it returns, and the exchange's end closes the body.
func (b *limitedBody) clientFailure(err error) bool {
	return !b.closed.Load() || errors.Is(err, os.ErrDeadlineExceeded)
}

func (b *limitedBody) Close() error {
	b.closed.Store(true)
	return b.r.Close()
}

// ClientFailed tells the upstream pool that a failed transfer was the
// client's doing (forward.ClientBody).
func (b *limitedBody) ClientFailed() bool { return b.exceeded.Load() || b.err() != nil }

var _ forward.ClientBody = (*limitedBody)(nil)

var errBodyTooLarge = errors.New("request body over the route's limit")

// setPath sets the escaped path on u exactly as the client sent it (after
// dot segments): RawPath always, since url would otherwise re-escape
// characters such as ( ) ! * ' that RFC 3986 does not make equivalent to
// their escapes.
func setPath(u *url.URL, escaped string) {
	p := escaped
	if strings.IndexByte(escaped, '%') >= 0 {
		if unescaped, err := url.PathUnescape(escaped); err == nil {
			p = unescaped
		}
	}
	u.Path, u.RawPath = p, escaped
}
