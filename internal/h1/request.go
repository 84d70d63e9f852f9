package h1

import (
	"context"
	"io"
	"maps"
	"net/http"
	"net/textproto"
	"net/url"
	"reflect"
	"sync"
	"unsafe"

	"github.com/gatehouse/gatehouse"
)

// fill makes c.req the request whose head, parsed into c.head, is b.
// Every string of it (target, header values, names not canonical
// already) is a part of one copy of b: one allocation per request.
func (c *conn) fill(b []byte) error {
	h := &c.head // ParseHead refused a 1.1 request without Host (RFC 9112 §3.2)
	hs := string(b)
	base := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	str := func(p []byte) string {
		if len(p) == 0 {
			return ""
		}
		off := uintptr(unsafe.Pointer(unsafe.SliceData(p))) - base
		if off < uintptr(len(b)) && off+uintptr(len(p)) <= uintptr(len(b)) {
			return hs[off : off+uintptr(len(p))]
		}
		return string(p)
	}

	clear(c.hdr)
	c.vals = c.vals[:0]
	var host string
	for _, f := range h.Fields {
		key, ok := commonKeys[string(f.Name)]
		if !ok {
			key = textproto.CanonicalMIMEHeaderKey(str(f.Name))
		}
		v := str(f.Value)
		if key == "Host" {
			host = v // net/http keeps it in r.Host only
			continue
		}
		if key == "Trailer" && h.Chunked {
			continue // net/http moves it to r.Trailer: declaredTrailer
		}
		if vs, ok := c.hdr[key]; ok {
			c.hdr[key] = append(vs, v)
			continue
		}
		c.vals = append(c.vals, v)
		n := len(c.vals)
		c.hdr[key] = c.vals[n-1 : n : n]
	}

	r := &c.req
	*r = http.Request{
		Method:     h.Method,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: h.Minor,
		Header:     c.hdr,
		Body:       http.NoBody,
		Close:      h.Close,
		RemoteAddr: c.remote,
		RequestURI: str(h.Target),
		TLS:        c.tls,
	}
	if h.Minor == 0 {
		r.Proto = "HTTP/1.0"
	}
	if err := c.parseTarget(r, host); err != nil {
		return err
	}
	c.body = &noBody
	switch {
	case h.Chunked:
		r.ContentLength = -1
		r.TransferEncoding = c.te
		r.Trailer = declaredTrailer(h)
		c.chunked.Reset(c.br)
		c.body = c.newBody(-1)
		r.Body = c.body
	case h.ContentLength > 0:
		r.ContentLength = h.ContentLength
		c.body = c.newBody(h.ContentLength)
		r.Body = c.body
	}
	setContext(r, c.ctx)
	return nil
}

// declaredTrailer is a chunked request's Trailer before its body is
// read, as net/http's readRequest makes it (transfer.go, fixTrailer):
// the names the Trailer fields announce, canonical, without values; nil
// when they announce none or the body is not chunked. ParseHead refused
// the framing fields.
func declaredTrailer(h *Head) http.Header {
	if !h.Chunked {
		return nil // a field like any (net/http: golang.org/issue/27197)
	}
	return announcedTrailer(h.Fields)
}

// announcedTrailer is declaredTrailer for a chunked message's fields,
// requests' and responses' alike.
func announcedTrailer(fields []Field) http.Header {
	var t http.Header
	for _, f := range fields {
		if len(f.Name) != len("Trailer") || !equalFold(f.Name, "trailer") {
			continue
		}
		eachToken(f.Value, func(name []byte) {
			if t == nil {
				t = http.Header{}
			}
			t[textproto.CanonicalMIMEHeaderKey(string(name))] = nil
		})
	}
	return t
}

// trailerHeader is the trailer section fs as net/http's body reader
// reads it (textproto's ReadMIMEHeader): canonical names, the values of
// repeated ones in order.
func trailerHeader(fs []Field) http.Header {
	t := make(http.Header, len(fs))
	for _, f := range fs {
		k := textproto.CanonicalMIMEHeaderKey(string(f.Name))
		t[k] = append(t[k], string(f.Value))
	}
	return t
}

// mergeTrailer gives the request the trailer its chunked body ended
// with, as net/http does at the body's end (transfer.go, readTrailer and
// mergeSetHeader): the announced names get their values, in the map the
// handler may already hold, and unannounced fields join them; the
// handler (the proxy) decides what to make of them.
func (c *conn) mergeTrailer() { c.chunked.MergeTrailer(&c.req.Trailer) }

// MergeTrailer puts the trailer section c read (Trailer) into *dst, as
// net/http's body reader does at a chunked body's end: into the map a
// reader may already hold (the announced names), or a new one. The
// request and the upstream's response are given their trailers by it.
func (c *ChunkedReader) MergeTrailer(dst *http.Header) {
	fs := c.Trailer()
	if len(fs) == 0 {
		return
	}
	t := trailerHeader(fs)
	if *dst == nil {
		*dst = t
		return
	}
	maps.Copy(*dst, t)
}

// parseTarget sets r.URL and r.Host from the request-target, as
// net/http's readRequest does; an origin-form path of plain characters
// (the common case) without url.ParseRequestURI's allocations.
func (c *conn) parseTarget(r *http.Request, host string) error {
	raw := r.RequestURI
	if path, query, ok := plainOrigin(raw); ok {
		c.url = url.URL{Path: path, RawQuery: query, ForceQuery: ok && query == "" && len(path) < len(raw)}
		r.URL = &c.url
		r.Host = host
		return nil
	}
	connect := r.Method == http.MethodConnect && (raw == "" || raw[0] != '/')
	if connect {
		raw = "http://" + raw
	}
	u, err := url.ParseRequestURI(raw)
	if err != nil {
		return gatehouse.Errorf(gatehouse.EINVALID, "The request is malformed: the request-target is not a URI.")
	}
	if connect {
		u.Scheme = ""
	}
	r.URL = u
	r.Host = u.Host
	if r.Host == "" {
		r.Host = host
	}
	return nil
}

// plainOrigin splits an origin-form target whose path needs no escaping
// and no unescaping, where url.ParseRequestURI would give the same Path
// and RawQuery with RawPath empty.
func plainOrigin(t string) (path, query string, ok bool) {
	if t == "" || t[0] != '/' {
		return "", "", false
	}
	i := 0
	for ; i < len(t) && t[i] != '?'; i++ {
		if !plainPath[t[i]] {
			return "", "", false
		}
	}
	if i == len(t) {
		return t, "", true
	}
	query = t[i+1:]
	for j := 0; j < len(query); j++ {
		if query[j] == '?' || query[j] == '#' || query[j] < 0x21 || query[j] == 0x7f {
			return "", "", false // let url decide (ForceQuery, fragments)
		}
	}
	return t[:i], query, true
}

// plainPath: the bytes a path keeps as they are through url's unescape
// and escape (unreserved, and the delimiters it leaves alone in paths).
var plainPath = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-_.~$&+,/:;=@" {
		t[c] = true
	}
	return t
}()

// commonKeys are canonical header names, by themselves and in lower case
// (as HTTP/2-minded clients send them), so that the usual fields cost no
// canonicalisation.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Authorization",
		"Cache-Control", "Cdn-Loop", "Connection", "Content-Encoding", "Content-Length", "Content-Type",
		"Cookie", "Date", "Dnt", "Expect", "Forwarded", "From", "Grpc-Timeout", "Host", "If-Match",
		"If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since", "Keep-Alive",
		"Max-Forwards", "Origin", "Pragma", "Priority", "Proxy-Authorization", "Range", "Referer", "Te",
		"Trailer", "Traceparent", "Tracestate", "Transfer-Encoding", "Upgrade", "User-Agent", "Via",
		"X-Api-Key", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip",
		"X-Request-Id", "Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Protocol",
		"Sec-Websocket-Extensions", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-Dest", "Upgrade-Insecure-Requests",
		"Baggage", "B3", "X-B3-Traceid", "X-B3-Spanid", "X-B3-Sampled",
	} {
		m[k] = k
		m[lower(k)] = k
	}
	return m
}()

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// ctxOffset is where http.Request keeps its context: setContext sets it
// in place, where WithContext would copy the whole request for each
// one. Checked once: if net/http ever renames or retypes the field,
// setContext falls back to WithContext's copy.
var ctxOffset = func() uintptr {
	f, ok := reflect.TypeFor[http.Request]().FieldByName("ctx")
	if !ok || f.Type != reflect.TypeFor[context.Context]() {
		return 0
	}
	return f.Offset
}()

func setContext(r *http.Request, ctx context.Context) {
	if ctxOffset == 0 {
		*r = *r.WithContext(ctx)
		return
	}
	*(*context.Context)(unsafe.Add(unsafe.Pointer(r), ctxOffset)) = ctx
}

// maxDiscard is how much of a body the handler left unread is read and
// dropped to keep the connection; over it, the connection closes (as
// net/http's maxPostHandlerReadBytes).
const maxDiscard = 256 << 10

// body is a request's body: Content-Length bytes of br, or chunked.
type body struct {
	c        *conn
	mu       sync.Mutex // held through a Read: end waits for one in flight
	n        int64      // bytes left, or -1 for chunked
	eof      bool
	closed   bool // the handler closed it, or returned
	expected bool // 100 Continue is due at the first read
}

func (c *conn) newBody(n int64) *body {
	return &body{c: c, n: n, expected: c.head.Expect100} // never on HTTP/1.0 (ParseHead)
}

// noBody stands for the body of a request without one: read to its end.
var noBody = body{eof: true}

// done reports whether the body was read to its end.
func (b *body) done() bool {
	if b == &noBody {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.eof
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.expected {
		b.expected = false
		b.c.resp.writeContinue()
	}
	n, err := b.read(p)
	if err == io.EOF {
		b.c.armWatch()
	}
	return n, err
}

func (b *body) read(p []byte) (int, error) {
	if b.eof {
		return 0, io.EOF
	}
	var n int
	var err error
	if b.n < 0 {
		n, err = b.c.chunked.Read(p)
	} else {
		n, err = ReadLength(b.c.br, p, &b.n)
	}
	if err == io.EOF {
		b.eof = true
		if b.n < 0 {
			b.c.mergeTrailer()
		}
	}
	return n, err
}

// Close ends the handler's reading; the rest is discarded (or the
// connection closed) after the response.
func (b *body) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

// discard reads the unread rest of the body, up to maxDiscard, and
// reports whether it all came: the next request can be read.
func (b *body) discard() bool {
	if b == &noBody {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.eof {
		return true
	}
	if b.expected || b.n > maxDiscard {
		// The client waits for a 100 that never came, or the rest is
		// more than is worth reading to keep the connection: close at
		// once, as net/http does, rather than hold the answer (a refusal
		// made before the body) until the client sent it all.
		return false
	}
	var scratch [4096]byte
	for total := 0; total <= maxDiscard; {
		n, err := b.read(scratch[:])
		total += n
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
	}
	return false
}

// end closes the body after its response: a read from a goroutine the
// handler left behind fails rather than steal the next request's bytes.
func (b *body) end() {
	if b == &noBody {
		return
	}
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
}
