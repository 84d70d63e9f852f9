package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
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

// unconfigured serves before the first revision: no routes, so every
// request is a 404 (or a 501 for a method nobody knows).
var unconfigured = func() *state {
	cfg, err := core.Compile(nil, core.Options{})
	if err != nil {
		panic(err)
	}
	return &state{core: cfg, identity: identityHeaders(nil)}
}()

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
				h.serveWithPolicies(w, r, d, nil, chain, st.routes[d.Route.ID], start)
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
		o := h.forward(w, r, d, pool, nil)
		h.opts.Metrics.observe(st.routes[d.Route.ID], o.status, start)
		if o.broke {
			h.cut(d.Route.ServiceID)
		}
		return
	}
	h.serveWithPolicies(w, r, d, pool, chain, st.routes[d.Route.ID], start)
}

// serveWithPolicies runs the route's policies, then forwards what they let
// on and tells them how it went, even when the exchange is aborted. A
// decision core refused on the declared size (d.Err) is answered after
// the checks of the head and before any of the body is read.
func (h *Handler) serveWithPolicies(w http.ResponseWriter, r *http.Request, d *core.Decision, pool *forward.Pool,
	chain *policy.Chain, m *routeMetrics, start time.Time) {
	pr := policy.NewRequest()
	pr.W, pr.R, pr.RouteID, pr.ServiceID = w, r, d.Route.ID, d.Route.ServiceID
	pr.Client, pr.MaxBodyBytes, pr.Now = h.clientAddr(r), d.Route.MaxBodyBytes, h.now(start)
	err := chain.RunHead(pr)
	if err == nil && d.Err != nil {
		pr.Finish(policy.Outcome{Refused: true})
		err = d.Err
	}
	if err == nil {
		err = chain.RunBody(pr)
	}
	if err != nil {
		pr.Release()
		h.opts.Metrics.observe(m, h.fail(w, r, err), start)
		return
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
	o := h.forward(w, r, d, pool, pr)
	h.opts.Metrics.observe(m, o.status, start)
	if o.broke {
		// Policies see no status for a response that never completed.
		h.cut(d.Route.ServiceID)
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
	return problem.Status(gatehouse.ErrorCode(err))
}

// outcome is how a forwarded exchange ended, for metrics and policies.
type outcome struct {
	// status is the status sent, 0 when the client went away first.
	status int
	// broke: the upstream broke off mid-body after status was sent; the
	// caller records it, then cuts the client's connection (cut).
	broke bool
}

// forward sends the request upstream and streams the answer back.
// pr, if not nil, is told when the upstream's answer (or failure) came.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, d *core.Decision, pool *forward.Pool, pr *policy.Request) outcome {
	out, body, upgrade := h.outboundRequest(w, r, d)
	resp, _, err := pool.RoundTrip(out)
	if pr != nil {
		pr.Head = time.Now()
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
		return outcome{status: h.failUpstream(w, r, d, err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return outcome{status: h.switchProtocols(w, r, d, resp, upgrade)}
	}
	writeHead(w, resp)
	if err := h.copyBody(w, resp); err != nil {
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
		hdr[http.TrailerPrefix+k] = vs
	}
	return outcome{status: resp.StatusCode}
}

// outboundRequest is the upstream's request: the client's, with its path
// as core decided it, its header as outboundHeader builds it, its body
// within the route's limit (nil: none), and the upgrade asked for ("":
// none). Interim responses are relayed to w as they come, all written by
// the transport's reader before it lets the body go: the upstream's 100
// is written here, which also stops net/http from sending its own when
// the body is read on another goroutine (two writers on one connection).
func (h *Handler) outboundRequest(w http.ResponseWriter, r *http.Request, d *core.Decision) (*http.Request, *limitedBody, string) {
	expects := r.Header.Get("Expect") != ""
	ctx := httptrace.WithClientTrace(r.Context(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, header textproto.MIMEHeader) error {
			switch {
			case code == http.StatusSwitchingProtocols:
				return nil
			case code == http.StatusContinue && !expects:
				return nil // not asked for: nothing to relay
			}
			hdr := w.Header()
			saved := make(map[string][]string, len(header))
			for k, vs := range header {
				saved[k] = hdr[k]
				hdr[k] = vs
			}
			w.WriteHeader(code)
			for k, vs := range saved {
				if vs == nil {
					delete(hdr, k)
				} else {
					hdr[k] = vs
				}
			}
			return nil
		},
	})
	out := r.WithContext(ctx)
	out.RequestURI = ""
	out.Host = ""
	out.Close = false
	out.URL = &url.URL{RawQuery: r.URL.RawQuery}
	setPath(out.URL, d.Path)
	upgrade := upgradeOffer(r.Header, d.Route)
	out.Header = outboundHeader(r, upgrade)

	var body *limitedBody
	if r.ContentLength == 0 && r.Body != nil && len(r.TransferEncoding) == 0 {
		out.Body = http.NoBody
	} else if r.Body != nil {
		body = &limitedBody{r: r.Body, remaining: d.Route.MaxBodyBytes}
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
	// A stall, bad chunk framing, or a body cut short: answering nothing
	// would let net/http send an empty 200.
	return h.fail(w, r, gerr)
}

// failUpstream answers a round trip that failed upstream, as the one
// classifier (forward.Classify) says.
func (h *Handler) failUpstream(w http.ResponseWriter, r *http.Request, d *core.Decision, err error) int {
	gerr, gone := forward.Classify(r.Context(), err)
	if gone {
		h.opts.Logger.Debug("client went away before the upstream answered", "request_id", problem.RequestID(r))
		h.abort()
	}
	if after, ok := forward.RetryAfter(err); ok {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(after.Seconds()+0.999))))
	}
	status := h.fail(w, r, gerr)
	h.opts.Metrics.upstreamFailed(d.Route.ServiceID, status)
	return status
}

// switchProtocols completes an upgrade the upstream accepted, if it is the
// one asked for (upgrade): RFC 9110 §7.8 lets a server switch only to a
// protocol the request offered. Anything else is not valid HTTP, and
// tunnelling it would take the connection past every policy: 502.
func (h *Handler) switchProtocols(w http.ResponseWriter, r *http.Request, d *core.Decision, resp *http.Response, upgrade string) int {
	if switched := resp.Header.Get("Upgrade"); upgrade == "" || switched == "" || !httpx.HasToken([]string{upgrade}, switched) {
		resp.Body.Close()
		return h.failUpstream(w, r, d, fmt.Errorf("upstream switched protocols to %q; the request offered %q", switched, upgrade))
	}
	h.tunnel(w, r, resp)
	return http.StatusSwitchingProtocols
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
			names = append(names, k)
		}
		hdr["Trailer"] = []string{strings.Join(names, ", ")}
	}
	w.WriteHeader(resp.StatusCode)
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
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.clientErr.Store(&err)
	}
	b.remaining -= int64(n)
	if b.remaining < 0 {
		b.exceeded.Store(true)
		return 0, errBodyTooLarge
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.r.Close() }

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

// isHopByHop reports whether a canonical header key is one of the fields
// that describe one connection, not the message (RFC 9110 §7.6.1); a proxy
// never forwards them.
func isHopByHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
		// Only ever part of an h2c upgrade (RFC 7540 §3.2.1), which is
		// never forwarded.
		"Http2-Settings":
		return true
	}
	return false
}

// copyEndToEnd copies src into dst without the hop-by-hop fields, those
// Connection names included. Skipping them while copying is cheaper than
// deleting them after.
func copyEndToEnd(dst, src http.Header) {
	for k, vs := range src {
		if !isHopByHop(k) {
			dst[k] = vs
		}
	}
	for _, v := range src["Connection"] {
		for _, name := range strings.Split(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				dst.Del(name)
			}
		}
	}
}

// Values shared by every request: header maps only ever replace a value
// slice, never append to it, so these are never written to.
var (
	protoHTTP  = []string{"http"}
	protoHTTPS = []string{"https"}
	upgradeHdr = []string{"Upgrade"}
	trailersTE = []string{"trailers"}
)

// spoofable are the fields that tell the upstream who the client is; only
// a trusted proxy in front of us may set them (inboundHeader).
var spoofable = []string{"X-Forwarded-For", "Forwarded", "X-Real-Ip", "X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Host", "X-Forwarded-Proto"}

// outboundHeader builds the upstream request's header from the client's,
// which inboundHeader cleaned (and policies may have added to): without
// hop-by-hop fields, with upgrade (upgradeOffer) as the one upgrade asked
// for, and with the forwarding fields added. Those from a trusted proxy
// are kept (X-Forwarded-Proto and -Host describe the client's request to
// the edge, which that proxy is) or extended (X-Forwarded-For, Forwarded
// grow a hop each). The request id is in the client's header already
// (internal/serve puts it there).
func outboundHeader(r *http.Request, upgrade string) http.Header {
	out := make(http.Header, len(r.Header)+5)
	for k, vs := range r.Header {
		if !isHopByHop(k) {
			out[k] = vs
		}
	}
	if upgrade != "" {
		out["Connection"] = upgradeHdr
		out["Upgrade"] = []string{upgrade}
	}
	// TE: trailers is the one TE value a proxy passes on (RFC 9110 §10.1.4).
	if te, ok := r.Header["Te"]; ok && httpx.HasToken(te, "trailers") {
		out["Te"] = trailersTE
	}

	proto, protoValue := "http", protoHTTP
	if r.TLS != nil {
		proto, protoValue = "https", protoHTTPS
	}
	clientIP, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		clientIP = r.RemoteAddr
	}
	if prior, ok := out["X-Forwarded-For"]; ok {
		out["X-Forwarded-For"] = []string{strings.Join(prior, ", ") + ", " + clientIP}
	} else {
		out["X-Forwarded-For"] = []string{clientIP}
	}
	if _, ok := out["X-Forwarded-Proto"]; !ok {
		out["X-Forwarded-Proto"] = protoValue
	}
	if _, ok := out["X-Forwarded-Host"]; !ok {
		out["X-Forwarded-Host"] = []string{r.Host}
	}
	node := clientIP
	if strings.IndexByte(clientIP, ':') >= 0 {
		node = `"[` + clientIP + `]"`
	}
	fwd := "for=" + node + ";host=" + quoteIfNeeded(r.Host) + ";proto=" + proto
	if prior := out["Forwarded"]; len(prior) > 0 {
		fwd = strings.Join(prior, ", ") + ", " + fwd
	}
	out["Forwarded"] = []string{fwd}
	httpx.AddVia(out, r.ProtoMajor, r.ProtoMinor)
	return out
}

// quoteIfNeeded quotes a Forwarded value that is not a token (a host with
// a port has a colon).
func quoteIfNeeded(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return strconv.Quote(s)
		}
	}
	return s
}

// upgradeType returns the protocol a message switches (or asks to
// switch) to, if its Connection field says upgrade.
func upgradeType(h http.Header) string {
	if !httpx.HasToken(h["Connection"], "upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

// upgradeOffer returns the protocols of the request's Upgrade that the
// route tunnels, as one field value; "" when it asks for no upgrade or
// for none of those. A request asking only for others is forwarded as an
// ordinary request, as nginx and HAProxy do when not configured for it:
// a server may always ignore Upgrade (RFC 9110 §7.8), so a client must
// cope, and clients offer upgrades on the off chance (curl --http2 on an
// http URL offers h2c).
func upgradeOffer(h http.Header, rt *core.Route) string {
	if !httpx.HasToken(h["Connection"], "upgrade") {
		return ""
	}
	vs := h["Upgrade"]
	if len(vs) == 1 && strings.IndexByte(vs[0], ',') < 0 {
		// The common case, one protocol, without allocating.
		if p := textproto.TrimString(vs[0]); rt.Upgradable(p) {
			return p
		}
		return ""
	}
	var kept []string
	for _, v := range vs {
		for v != "" {
			var p string
			p, v, _ = strings.Cut(v, ",")
			if p = textproto.TrimString(p); p != "" && rt.Upgradable(p) {
				kept = append(kept, p)
			}
		}
	}
	return strings.Join(kept, ", ")
}
