package proxy

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync"

	"github.com/gatehouse/gatehouse/proxy/forward"
)

// outbound is what the upstream's request is made of (outboundRequest),
// in one allocation: the request, its URL, its header, the values of the
// one-value fields gatehouse sets, and the hook that relays interim
// responses (forward.Pool.RoundTripRelaying). When the pool is done with
// the request as its round trip returns (forward.Pool.ReleasesRequests),
// forward gives it back to outbounds once the response is closed, and a
// later request reuses it whole; otherwise it is left to the garbage
// collector, as net/http's transports may still read it.
type outbound struct {
	req    http.Request
	url    url.URL
	header http.Header
	// vals back the values of X-Forwarded-For, X-Forwarded-Host and
	// Forwarded (one each; the header takes them capped at one, so that
	// an append elsewhere copies).
	vals [3]string

	// relayFn is relay as a func, made once per outbound rather than
	// per request: the pool's hook for interim responses.
	relayFn forward.Interim
	w       http.ResponseWriter
	expects bool
}

// maxPooledHeader is the most fields a header map may have held to go
// back to outbounds: a cleared map keeps its size, and a rare request
// with hundreds of fields should not make every later one clear that
// many slots.
const maxPooledHeader = 64

var outbounds = sync.Pool{New: func() any {
	o := &outbound{}
	o.relayFn = o.relay
	return o
}}

// newOutbound returns an outbound for a request to w, from outbounds.
func newOutbound(w http.ResponseWriter, expects bool) *outbound {
	o := outbounds.Get().(*outbound)
	o.w, o.expects = w, expects
	return o
}

// release gives o back to outbounds: call it only once nothing can
// still read the request, its URL or its header (see outbound).
func (o *outbound) release() {
	o.req = http.Request{}
	o.url = url.URL{}
	if len(o.header) > maxPooledHeader {
		o.header = nil
	} else {
		clear(o.header)
	}
	clear(o.vals[:])
	o.w = nil
	outbounds.Put(o)
}

// value sets o's header field k to v, as a slice of o.vals[i].
func (o *outbound) value(i int, k, v string) {
	o.vals[i] = v
	o.header[k] = o.vals[i : i+1 : i+1]
}

// forwardedFor is this hop's Forwarded element for a client at clientIP
// asking for host ("": none) over proto, in one concatenation: an IPv6
// node is quoted and bracketed.
func forwardedFor(clientIP, host, proto string) string {
	switch v6 := strings.IndexByte(clientIP, ':') >= 0; {
	case v6 && host != "":
		return `for="[` + clientIP + `]";host=` + quoteIfNeeded(host) + ";proto=" + proto
	case v6:
		return `for="[` + clientIP + `]";proto=` + proto
	case host != "":
		return "for=" + clientIP + ";host=" + quoteIfNeeded(host) + ";proto=" + proto
	}
	return "for=" + clientIP + ";proto=" + proto
}

// relay writes an interim response the upstream sent to the client: all
// but 101 (an upgrade is answered by switchProtocols) and a 100 the
// client did not ask for. The transport's reader calls it before it lets
// the body go: the upstream's 100 is written here, which also stops
// net/http from sending its own when the body is read on another
// goroutine (two writers on one connection).
func (o *outbound) relay(code int, header textproto.MIMEHeader) error {
	switch {
	case code == http.StatusSwitchingProtocols:
		return nil
	case code == http.StatusContinue && !o.expects:
		return nil // not asked for: nothing to relay
	}
	// An interim response's hop-by-hop fields, and those its Connection
	// names, are its connection's (RFC 9110 §7.6.1).
	end := make(http.Header, len(header))
	copyEndToEnd(end, http.Header(header))
	hdr := o.w.Header()
	saved := make(map[string][]string, len(end))
	for k, vs := range end {
		saved[k] = hdr[k]
		hdr[k] = vs
	}
	o.w.WriteHeader(code)
	for k, vs := range saved {
		if vs == nil {
			delete(hdr, k)
		} else {
			hdr[k] = vs
		}
	}
	return nil
}
