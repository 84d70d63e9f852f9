package proxy

import (
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/httpx"
)

// requestIDHeader is the request id's field; internal/serve sets it.
const requestIDHeader = "X-Request-Id"

// owned reports whether the canonical field name k is one gatehouse sets
// for the upstream: the request id, the forwarding fields, the identity
// fields.
func (st *state) owned(k string) bool {
	return k == requestIDHeader || slices.Contains(spoofable, k) || slices.Contains(st.identity, k)
}

// inboundHeader cleans the client's header in place before anything
// reads it for the upstream (policies set fields in it, outboundHeader
// copies it):
//
//   - the fields its Connection names go (they are hop-by-hop), except the
//     ones gatehouse owns: a client cannot name away the request id or the
//     identity a policy sets, since policies run after this;
//   - the identity fields go, and the forwarding fields unless the peer is
//     a trusted proxy: only gatehouse, or the proxy in front, says who the
//     client is;
//   - so do the underscore spellings of every owned field (X_Forwarded_For,
//     X-Consumer_Id): CGI and WSGI servers read them as the dashed name.
//
// The fixed hop-by-hop fields (Upgrade, TE...) stay for now: forward reads
// them, and outboundHeader does not copy them.
func (st *state) inboundHeader(hdr http.Header, trusted bool) {
	for name := range httpx.FieldList(hdr["Connection"]) {
		k := textproto.CanonicalMIMEHeaderKey(name)
		if !isHopByHop(k) && !st.owned(k) {
			delete(hdr, k)
		}
	}
	if !trusted {
		for _, k := range spoofable {
			delete(hdr, k)
		}
	}
	for _, k := range st.identity {
		delete(hdr, k)
	}
	for k := range hdr {
		if strings.IndexByte(k, '_') >= 0 && st.owned(textproto.CanonicalMIMEHeaderKey(strings.ReplaceAll(k, "_", "-"))) {
			delete(hdr, k)
		}
	}
}

// outboundTrailer is the upstream request's trailer: the client's trailer
// fields that may pass, with the values known so far (fillTrailer sets
// them once the client's body has ended), so that the transport announces
// exactly what it may send. nil when none may pass.
//
// A trailer is a second header section, which some upstreams merge into
// the first (Tomcat's allowedTrailerHeaders, several frameworks), after
// gatehouse checked and set that one. So none of the fields inboundHeader
// keeps from the client passes here, a trusted proxy's forwarding fields
// included (trailers are no place for them), nor any field RFC 9110
// §6.5.1 keeps out of trailers; each is judged by its dashed spelling.
// The names are the client trailer's as forwarding starts, which are
// those the client announced: net/http adds unannounced ones only as the
// body ends (HTTP/1; HTTP/2 drops them), too late to announce, so they go
// too, unless a policy read the body first (they are judged as the rest).
func (st *state) outboundTrailer(r *http.Request) http.Header {
	var out http.Header
	for k := range r.Trailer {
		if st.trailerAllowed(k, r.Header["Connection"]) {
			if out == nil {
				out = make(http.Header, len(r.Trailer))
			}
			out[k] = r.Trailer[k]
		}
	}
	return out
}

// fillTrailer gives the fields of out (outboundTrailer) the values the
// client sent, which net/http has set in its trailer by the time the body
// reports its end.
func fillTrailer(out, client http.Header) {
	for k := range out {
		out[k] = client[k]
	}
}

// trailerAllowed reports whether the client's trailer field k (a
// canonical key) may reach the upstream; connection is the client's
// Connection, whose fields are hop-by-hop.
func (st *state) trailerAllowed(k string, connection []string) bool {
	if httpx.HasToken(connection, k) {
		return false
	}
	if strings.IndexByte(k, '_') >= 0 {
		k = textproto.CanonicalMIMEHeaderKey(strings.ReplaceAll(k, "_", "-"))
	}
	return !isHopByHop(k) && !forbiddenInTrailer(k) && !st.owned(k) && !slices.Contains(st.keys, k) && !httpx.HasToken(connection, k)
}

// forbiddenInTrailer reports whether a canonical header key is one of the
// request fields RFC 9110 §6.5.1 keeps out of trailers, beside the
// hop-by-hop ones: framing, routing, request modifiers (controls,
// conditionals, negotiation), authentication, and those that say how to
// process the content; and Cookie, which names a session as Authorization
// names a user.
func forbiddenInTrailer(k string) bool {
	switch k {
	case "Content-Length", "Host",
		"Cache-Control", "Expect", "Max-Forwards", "Pragma", "Range",
		"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range",
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language",
		"Authorization", "Www-Authenticate", "Authentication-Info", "Proxy-Authentication-Info", "Cookie",
		"Content-Type", "Content-Encoding", "Content-Language", "Content-Location", "Content-Range":
		return true
	}
	return false
}

// relayableTrailer reports whether the upstream's trailer field k (a
// canonical key) may reach the client: not one RFC 9110 §6.5.1 keeps out
// of trailers (framing, routing, hop-by-hop, authentication, the
// response's control data and the content's processing), which a
// recipient might otherwise read as if it came in the head.
func relayableTrailer(k string) bool {
	switch k {
	case "Set-Cookie", "Age", "Date", "Expires", "Location", "Retry-After", "Vary":
		return false
	}
	return !isHopByHop(k) && !forbiddenInTrailer(k)
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
	for name := range httpx.FieldList(src["Connection"]) {
		dst.Del(name)
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

// outboundHeader builds the upstream request's header into o.header from
// the client's, which inboundHeader cleaned (and policies may have added
// to): without hop-by-hop fields, with upgrade (upgradeOffer) as the one
// upgrade asked for, and with the forwarding fields added. Those from a
// trusted proxy are kept (X-Forwarded-Proto and -Host describe the
// client's request to the edge, which that proxy is) or extended
// (X-Forwarded-For, Forwarded grow a hop each). The request id is in the
// client's header already (internal/serve puts it there).
func (o *outbound) outboundHeader(r *http.Request, upgrade string) http.Header {
	if o.header == nil {
		o.header = make(http.Header, len(r.Header)+5)
	}
	out := o.header
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
	if _, ok := out["X-Forwarded-Proto"]; !ok {
		out["X-Forwarded-Proto"] = protoValue
	}
	// An HTTP/1.0 request may have no Host: then there is none to tell.
	if _, ok := out["X-Forwarded-Host"]; !ok && r.Host != "" {
		o.value(1, "X-Forwarded-Host", r.Host)
	}
	// A trusted proxy's hops are extended by this one.
	xff, fwd := clientIP, forwardedFor(clientIP, r.Host, proto)
	if prior, ok := out["X-Forwarded-For"]; ok {
		xff = strings.Join(prior, ", ") + ", " + xff
	}
	if prior := out["Forwarded"]; len(prior) > 0 {
		fwd = strings.Join(prior, ", ") + ", " + fwd
	}
	o.value(0, "X-Forwarded-For", xff)
	o.value(2, "Forwarded", fwd)
	httpx.AddVia(out, r.ProtoMajor, r.ProtoMinor)
	return out
}

// quoteIfNeeded quotes a Forwarded value that is not a token (a host with
// a port has a colon).
func quoteIfNeeded(s string) string {
	if s == "" || gatehouse.IsToken(s) {
		return s
	}
	return strconv.Quote(s)
}

// clientAddr is the client's address as policies judge it: the peer, or,
// when the peer is a trusted proxy, the nearest address in
// X-Forwarded-For that is not one.
func (h *Handler) clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	addr := ap.Addr().Unmap()
	if !h.trusted(addr) {
		return addr
	}
	xff := r.Header["X-Forwarded-For"]
	for i := len(xff) - 1; i >= 0; i-- {
		hops := strings.Split(xff[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			hop, err := parseHop(strings.TrimSpace(hops[j]))
			if err != nil {
				// A hop we cannot read: the client is unknown, not the
				// trusted proxy that passed it on (whose address an
				// allow list may well admit).
				return netip.Addr{}
			}
			addr = hop.Unmap()
			if !h.trusted(addr) {
				return addr
			}
		}
	}
	return addr
}

// parseHop reads one X-Forwarded-For entry: an address, or an address
// and port as some proxies write it ("192.0.2.1:4711", "[2001:db8::1]:4711").
func parseHop(s string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a, nil
	}
	ap, err := netip.ParseAddrPort(s)
	return ap.Addr(), err
}

func (h *Handler) trusted(a netip.Addr) bool {
	for _, p := range h.opts.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// trusts reports whether the peer at remoteAddr is a trusted proxy.
func (h *Handler) trusts(remoteAddr string) bool {
	if len(h.opts.TrustedProxies) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	return h.trusted(ap.Addr().Unmap())
}
