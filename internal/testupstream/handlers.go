package testupstream

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Echo is the JSON body of /echo (the default mode), /fault/slow and
// /continue/accept.
type Echo struct {
	Method           string              `json:"method"`
	Path             string              `json:"path"`
	RawQuery         string              `json:"raw_query"`
	RequestURI       string              `json:"request_uri"`
	Proto            string              `json:"proto"`
	Host             string              `json:"host"`
	Headers          map[string][]string `json:"headers"`
	Trailers         map[string][]string `json:"trailers,omitempty"`
	ContentLength    int64               `json:"content_length"`
	TransferEncoding []string            `json:"transfer_encoding,omitempty"`
	RemoteAddr       string              `json:"remote_addr"`
	TLS              bool                `json:"tls"`
	BodySHA256       string              `json:"body_sha256"`
	BodyLen          int64               `json:"body_len"`
	Upstream         string              `json:"upstream,omitempty"`
}

// DecodeEcho reads and closes resp.Body and decodes it as an Echo.
func DecodeEcho(resp *http.Response) (*Echo, error) {
	defer resp.Body.Close()
	var e Echo
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		return nil, fmt.Errorf("decoding echo (status %d): %w", resp.StatusCode, err)
	}
	return &e, nil
}

// patternBlock repeats "a".."z"; its usable length (len-26) is a multiple
// of 26 so that consecutive slices continue the pattern.
var patternBlock = func() []byte {
	b := make([]byte, 26*2520+26)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}()

const patternStep = 26 * 2520

// Pattern returns the deterministic content of /bytes/n, and of the
// concatenated bodies of /chunked and /fault/slow-body: "abc...zabc...".
func Pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

// writePattern writes n pattern bytes starting at pattern offset off.
func writePattern(w io.Writer, off, n int64) error {
	for n > 0 {
		start := off % 26
		k := min(n, patternStep)
		if _, err := w.Write(patternBlock[start : start+k]); err != nil {
			return err
		}
		off += k
		n -= k
	}
	return nil
}

var (
	octetStream = []string{"application/octet-stream"}
	textPlain   = []string{"text/plain; charset=utf-8"}
	appJSON     = []string{"application/json"}
)

// isMode reports whether path is name or name followed by "/...".
func isMode(path, name string) bool {
	return strings.HasPrefix(path, name) && (len(path) == len(name) || path[len(name)] == '/')
}

// dispatch chooses the mode by path. body is r.Body, possibly recorded.
func (u *Upstream) dispatch(w http.ResponseWriter, r *http.Request, body io.Reader) {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/bytes/"):
		serveBytes(w, r, p[len("/bytes/"):])
	case strings.HasPrefix(p, "/status/"):
		serveStatus(w, r, segment(p[len("/status/"):]))
	case strings.HasPrefix(p, "/fault/"):
		u.serveFault(w, r, body, segment(p[len("/fault/"):]))
	case isMode(p, "/sse"):
		u.serveSSE(w, r)
	case isMode(p, "/chunked"):
		serveChunked(w, r)
	case isMode(p, "/headers"):
		serveHeaders(w, r)
	case isMode(p, "/ws"):
		u.serveWebSocket(w, r)
	case isMode(p, "/continue/accept"):
		serveEcho(w, r, body, http.StatusCreated, u.opts.Name)
	case isMode(p, "/continue/reject"):
		serveReject(w, r)
	default: // "/echo" and everything else
		serveEcho(w, r, body, http.StatusOK, u.opts.Name)
	}
}

// segment returns s up to its first '/'.
func segment(s string) string {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i]
	}
	return s
}

func fail(w http.ResponseWriter, code int, format string, args ...any) {
	h := w.Header()
	h["Content-Type"] = textPlain
	h.Del("Content-Length")
	w.WriteHeader(code)
	fmt.Fprintf(w, "testupstream: "+format+"\n", args...)
}

// query parses the query strictly (net/url's Query drops pairs it cannot
// parse, such as ones with an unescaped ';'); on error it answers 400.
func query(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		fail(w, http.StatusBadRequest, "bad query: %v (escape ';' as %%3B)", err)
		return nil, false
	}
	return q, true
}

type params struct {
	w   http.ResponseWriter
	q   url.Values
	err error
}

func (p *params) int(name string, def, lo, hi int64) int64 {
	s := p.q.Get(name)
	if s == "" || p.err != nil {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lo || n > hi {
		p.err = fmt.Errorf("%s=%q: want an integer in [%d, %d]", name, s, lo, hi)
		return def
	}
	return n
}

func (p *params) duration(name string, def time.Duration) time.Duration {
	s := p.q.Get(name)
	if s == "" || p.err != nil {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		ms, err2 := strconv.ParseInt(s, 10, 64)
		if err2 != nil {
			p.err = fmt.Errorf("%s=%q: want a duration such as 200ms", name, s)
			return def
		}
		d = time.Duration(ms) * time.Millisecond
	}
	if d < 0 {
		p.err = fmt.Errorf("%s=%q: negative", name, s)
		return def
	}
	return d
}

// ok answers 400 if a parameter was bad.
func (p *params) ok() bool {
	if p.err != nil {
		fail(p.w, http.StatusBadRequest, "%v", p.err)
		return false
	}
	return true
}

func newParams(w http.ResponseWriter, r *http.Request) (*params, bool) {
	q, ok := query(w, r)
	if !ok {
		return nil, false
	}
	return &params{w: w, q: q}, true
}

// sleep waits d; if the client goes away or the upstream closes first it
// aborts the handler, so that no complete response is ever sent.
func (u *Upstream) sleep(r *http.Request, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
		panic(http.ErrAbortHandler)
	case <-u.done:
		panic(http.ErrAbortHandler)
	}
}

func flush(w http.ResponseWriter) {
	if err := http.NewResponseController(w).Flush(); err != nil {
		panic(http.ErrAbortHandler)
	}
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// serveEcho streams the body through SHA-256 (never buffering it whole)
// and answers status with an Echo.
func serveEcho(w http.ResponseWriter, r *http.Request, body io.Reader, status int, name string) {
	h := sha256.New()
	buf := copyBufs.Get().(*[]byte)
	n, err := io.CopyBuffer(h, body, *buf)
	copyBufs.Put(buf)
	if err != nil {
		fail(w, http.StatusBadRequest, "reading body: %v", err)
		return
	}
	e := Echo{
		Method:           r.Method,
		Path:             r.URL.Path,
		RawQuery:         r.URL.RawQuery,
		RequestURI:       r.RequestURI,
		Proto:            r.Proto,
		Host:             r.Host,
		Headers:          r.Header,
		ContentLength:    r.ContentLength,
		TransferEncoding: r.TransferEncoding,
		RemoteAddr:       r.RemoteAddr,
		TLS:              r.TLS != nil,
		BodySHA256:       hex.EncodeToString(h.Sum(nil)),
		BodyLen:          n,
		Upstream:         name,
	}
	if len(r.Trailer) > 0 {
		e.Trailers = r.Trailer
	}
	b, err := json.Marshal(e)
	if err != nil {
		fail(w, http.StatusInternalServerError, "encoding echo: %v", err)
		return
	}
	b = append(b, '\n')
	hdr := w.Header()
	hdr["Content-Type"] = appJSON
	hdr["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	w.Write(b)
}

// serveBytes answers n pattern bytes. It is the benchmark path: no query
// parsing, no content sniffing, no formatting.
func serveBytes(w http.ResponseWriter, r *http.Request, s string) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > 1<<40 {
		fail(w, http.StatusBadRequest, "/bytes/{n}: want 0 <= n <= 2^40, got %q", s)
		return
	}
	if s[0] == '+' || (s[0] == '0' && len(s) > 1) {
		s = strconv.FormatInt(n, 10)
	}
	h := w.Header()
	h["Content-Type"] = octetStream
	h["Content-Length"] = []string{s}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		writePattern(w, 0, n)
	}
}

// applySet adds the "Name:Value" response headers of the set parameters.
func applySet(h http.Header, sets []string) error {
	for _, s := range sets {
		name, value, ok := strings.Cut(s, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return fmt.Errorf("set=%q: want Name:Value", s)
		}
		h.Add(name, strings.TrimSpace(value))
	}
	return nil
}

func serveStatus(w http.ResponseWriter, r *http.Request, s string) {
	code, err := strconv.Atoi(s)
	if err != nil || code < 100 || code > 599 {
		fail(w, http.StatusBadRequest, "/status/{code}: want 100 <= code <= 599, got %q", s)
		return
	}
	if code == http.StatusSwitchingProtocols {
		fail(w, http.StatusBadRequest, "/status/101 is not supported; use /ws")
		return
	}
	q, ok := query(w, r)
	if !ok {
		return
	}
	h := w.Header()
	if err := applySet(h, q["set"]); err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	if v := q.Get("retry_after"); v != "" {
		h.Set("Retry-After", v)
	}
	if v := q.Get("location"); v != "" {
		h.Set("Location", v)
	}
	if code < 200 {
		// An informational response cannot end an exchange: send it,
		// then a final 200.
		w.WriteHeader(code)
		code = http.StatusOK
	}
	if code == http.StatusNoContent || code == http.StatusNotModified {
		w.WriteHeader(code)
		return
	}
	body := strconv.Itoa(code) + " " + http.StatusText(code) + "\n"
	if h.Get("Content-Type") == "" {
		h["Content-Type"] = textPlain
	}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(code)
	io.WriteString(w, body)
}

func serveHeaders(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r)
	if !ok {
		return
	}
	h := w.Header()
	if err := applySet(h, q["set"]); err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	if h.Get("Content-Type") == "" {
		h["Content-Type"] = textPlain
	}
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "ok\n")
}

func serveChunked(w http.ResponseWriter, r *http.Request) {
	p, ok := newParams(w, r)
	if !ok {
		return
	}
	chunks := p.int("chunks", 3, 0, 1<<20)
	size := p.int("size", 16, 1, 16<<20)
	if !p.ok() {
		return
	}
	w.Header()["Content-Type"] = octetStream
	w.WriteHeader(http.StatusOK)
	flush(w)
	for i := range chunks {
		if writePattern(w, i*size, size) != nil {
			panic(http.ErrAbortHandler)
		}
		flush(w)
	}
}

func (u *Upstream) serveSSE(w http.ResponseWriter, r *http.Request) {
	p, ok := newParams(w, r)
	if !ok {
		return
	}
	events := p.int("events", 5, 0, 1<<20)
	interval := p.duration("interval", 20*time.Millisecond)
	if !p.ok() {
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flush(w)
	for i := int64(1); i <= events; i++ {
		if i > 1 {
			u.sleep(r, interval)
		}
		if _, err := fmt.Fprintf(w, "id: %d\nevent: tick\ndata: event %d\n\n", i, i); err != nil {
			panic(http.ErrAbortHandler)
		}
		flush(w)
	}
}

func serveReject(w http.ResponseWriter, r *http.Request) {
	p, ok := newParams(w, r)
	if !ok {
		return
	}
	code := p.int("status", http.StatusExpectationFailed, 400, 599)
	if !p.ok() {
		return
	}
	// The body is deliberately not read, so net/http sends no 100 Continue.
	fail(w, int(code), "rejected without reading the body")
}

func (u *Upstream) serveFault(w http.ResponseWriter, r *http.Request, body io.Reader, name string) {
	switch name {
	case "reset":
		drain(body)
		c, _ := hijack(w, r)
		resetConn(c)
	case "reset-mid-response":
		p, ok := newParams(w, r)
		if !ok {
			return
		}
		length := p.int("length", 1000, 1, 1<<30)
		sent := p.int("sent", 100, 0, 1<<30)
		if !p.ok() {
			return
		}
		sent = min(sent, length-1)
		drain(body)
		if r.ProtoMajor >= 2 {
			partialResponse(w, length, sent)
		}
		c, brw := hijack(w, r)
		writeRawHead(brw.Writer, w.Header(), length)
		writePattern(brw.Writer, 0, sent)
		brw.Flush()
		resetConn(c)
	case "garbage":
		drain(body)
		c, _ := hijack(w, r)
		io.WriteString(c, garbage)
		c.Close()
	case "close-after-headers":
		p, ok := newParams(w, r)
		if !ok {
			return
		}
		length := p.int("length", 1000, 1, 1<<30)
		if !p.ok() {
			return
		}
		drain(body)
		if r.ProtoMajor >= 2 {
			partialResponse(w, length, 0)
		}
		c, brw := hijack(w, r)
		writeRawHead(brw.Writer, w.Header(), length)
		brw.Flush()
		c.Close()
	case "stall":
		drain(body)
		select {
		case <-r.Context().Done():
		case <-u.done:
		}
		panic(http.ErrAbortHandler)
	case "slow":
		p, ok := newParams(w, r)
		if !ok {
			return
		}
		delay := p.duration("delay", 100*time.Millisecond)
		if !p.ok() {
			return
		}
		u.sleep(r, delay)
		serveEcho(w, r, body, http.StatusOK, u.opts.Name)
	case "slow-body":
		p, ok := newParams(w, r)
		if !ok {
			return
		}
		chunks := p.int("chunks", 5, 0, 1<<20)
		size := p.int("size", 16, 1, 16<<20)
		interval := p.duration("interval", 50*time.Millisecond)
		if !p.ok() {
			return
		}
		w.Header()["Content-Type"] = octetStream
		w.WriteHeader(http.StatusOK)
		flush(w)
		for i := range chunks {
			u.sleep(r, interval)
			if writePattern(w, i*size, size) != nil {
				panic(http.ErrAbortHandler)
			}
			flush(w)
		}
	default:
		fail(w, http.StatusNotFound, "unknown fault %q", name)
	}
}

// garbage is what /fault/garbage answers: a status line without a space,
// which net/http reports as "malformed HTTP response".
const garbage = "this-is-not-http\r\n\r\n"

// drain reads the request body to its end (the client may be waiting to
// finish sending before it reads a response).
func drain(body io.Reader) {
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	if _, err := io.CopyBuffer(io.Discard, body, *buf); err != nil {
		panic(http.ErrAbortHandler)
	}
}

// hijack takes over an HTTP/1.x connection. Over HTTP/2, which cannot be
// hijacked, it resets the stream instead.
func hijack(w http.ResponseWriter, r *http.Request) (net.Conn, *bufio.ReadWriter) {
	if r.ProtoMajor >= 2 {
		panic(http.ErrAbortHandler)
	}
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	return c, brw
}

// partialResponse is the HTTP/2 form of the mid-response faults: headers
// announcing length bytes, sent of them, then a stream reset.
func partialResponse(w http.ResponseWriter, length, sent int64) {
	h := w.Header()
	h["Content-Type"] = octetStream
	h["Content-Length"] = []string{strconv.FormatInt(length, 10)}
	w.WriteHeader(http.StatusOK)
	writePattern(w, 0, sent)
	http.NewResponseController(w).Flush()
	panic(http.ErrAbortHandler)
}

// writeRawHead writes a 200 status line and headers announcing length
// body bytes, plus whatever is already in h (X-Upstream-Name).
func writeRawHead(bw *bufio.Writer, h http.Header, length int64) {
	h["Content-Type"] = octetStream
	h["Content-Length"] = []string{strconv.FormatInt(length, 10)}
	bw.WriteString("HTTP/1.1 200 OK\r\n")
	h.Write(bw)
	bw.WriteString("\r\n")
}

// resetConn closes c with SO_LINGER 0, so the peer gets a TCP RST. With
// TLS it closes the TCP connection under the TLS one (no close_notify).
func resetConn(c net.Conn) {
	t := tracked(c)
	if tcp, ok := t.Conn.(*net.TCPConn); ok {
		tcp.SetLinger(0)
	}
	t.Close()
}
