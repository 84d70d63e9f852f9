package h1

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpx"
)

// response is the http.ResponseWriter of a connection's requests. The
// body is buffered until the handler returns, when head and body go out
// in one write with a Content-Length; a body longer than the buffer, or
// a Flush, sends the head first and the body chunked (HTTP/1.1) or up
// to the connection's close (HTTP/1.0).
type response struct {
	c    *conn
	req  *http.Request
	hdr  http.Header
	bufs *buffers // nil until the first write; pooled

	status      int
	wroteHeader bool
	committed   bool // the head is in out (or sent)
	sent100     bool // a 100 Continue went out (under c.wmu)
	isHead      bool
	http10      bool

	chunked    bool
	closeAfter bool  // the connection ends after this response
	length     int64 // the declared Content-Length, or -1
	written    int64
	err        error // a write to the client failed
}

// buffers are a request's output buffers: out holds the body (after
// headRoom, where the head will go) until the head is committed, then
// the bytes not yet sent; head is where the head is built.
type buffers struct {
	out  []byte
	head []byte
}

const (
	outSize  = 16 << 10
	headRoom = 1 << 10
)

var bufferPool = sync.Pool{New: func() any {
	return &buffers{out: make([]byte, 0, outSize), head: make([]byte, 0, headRoom)}
}}

func (w *response) reset(r *http.Request, h *Head) {
	clear(w.hdr)
	*w = response{c: w.c, hdr: w.hdr, req: r, length: -1,
		isHead: r.Method == http.MethodHead, http10: h.Minor == 0}
}

func (w *response) release() {
	if w.bufs != nil {
		w.bufs.out, w.bufs.head = w.bufs.out[:0], w.bufs.head[:0]
		bufferPool.Put(w.bufs)
		w.bufs = nil
	}
}

func (w *response) buffers() *buffers {
	if w.bufs == nil {
		w.bufs = bufferPool.Get().(*buffers)
		w.bufs.out = w.bufs.out[:headRoom]
	}
	return w.bufs
}

func (w *response) Header() http.Header { return w.hdr }

func (w *response) WriteHeader(code int) {
	if w.c.hijacked || w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.writeInterim(code)
		return
	}
	w.wroteHeader, w.status = true, code
	if w.c.head.Expect100 {
		// The answer comes before the body was asked for: no 100 now.
		w.c.wmu.Lock()
		w.sent100 = true
		w.c.wmu.Unlock()
	}
	if cl := w.hdr.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			w.length = n
		} else {
			delete(w.hdr, "Content-Length")
		}
	}
}

// writeInterim sends a 1xx response at once, with the header the handler
// set for it. HTTP/1.0 clients get none (RFC 9110 §15.2).
func (w *response) writeInterim(code int) {
	c := w.c
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if code == http.StatusContinue {
		w.sent100 = true
	}
	if w.http10 || w.committed {
		return
	}
	b := statusLine(nil, false, code)
	b = writeFields(b, w.hdr, true, code)
	b = append(b, "\r\n"...)
	if _, err := c.nc.Write(b); err != nil {
		w.err = err
	}
}

// writeContinue sends the 100 Continue an Expect: 100-continue request
// waits for, at the handler's first read of the body, unless the
// handler already answered (or relayed an upstream's 100).
func (w *response) writeContinue() {
	c := w.c
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if w.sent100 || w.committed {
		return
	}
	w.sent100 = true
	if _, err := c.nc.Write([]byte("HTTP/1.1 100 Continue\r\n\r\n")); err != nil {
		w.err = err
	}
}

func (w *response) Write(p []byte) (int, error) {
	if w.c.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.err != nil {
		return 0, w.err
	}
	w.written += int64(len(p))
	if w.length >= 0 && w.written > w.length {
		return 0, http.ErrContentLength
	}
	if w.isHead {
		return len(p), nil
	}
	b := w.buffers()
	if !w.committed {
		if len(b.out)+len(p) <= cap(b.out) {
			b.out = append(b.out, p...)
			return len(p), nil
		}
		w.commit(false, p)
	}
	if err := w.writeBody(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeBody frames p after the head and sends what the buffer cannot hold.
func (w *response) writeBody(p []byte) error {
	b := w.bufs
	if w.chunked {
		b.out = strconv.AppendInt(b.out, int64(len(p)), 16)
		b.out = append(b.out, "\r\n"...)
	}
	if len(b.out)+len(p)+2 <= cap(b.out) {
		b.out = append(b.out, p...)
	} else {
		if err := w.send(); err != nil {
			return err
		}
		if err := w.write(p); err != nil {
			return err
		}
	}
	if w.chunked {
		b.out = append(b.out, "\r\n"...)
	}
	if len(b.out) >= cap(b.out)/2 {
		return w.send()
	}
	return nil
}

// send writes what out holds.
func (w *response) send() error {
	b := w.bufs
	if len(b.out) == 0 {
		return w.err
	}
	err := w.write(b.out)
	b.out = b.out[:0]
	return err
}

func (w *response) write(p []byte) error {
	if w.err != nil {
		return w.err
	}
	c := w.c
	c.wmu.Lock()
	_, err := c.nc.Write(p)
	c.wmu.Unlock()
	if err != nil {
		w.err = err
		w.closeAfter = true
	}
	return err
}

func (w *response) FlushError() error {
	if w.c.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.buffers()
	if !w.committed {
		w.commit(false, nil)
	}
	return w.send()
}

func (w *response) Flush() { w.FlushError() }

// commit decides the response's framing and puts its head before the
// body buffered so far, in out; final says the handler has returned, so
// that buffered body is all of it. sniff is body to sniff a Content-Type
// from when nothing is buffered.
func (w *response) commit(final bool, sniff []byte) {
	b := w.bufs
	body := b.out[headRoom:]
	hdr := w.hdr
	code := w.status
	hasBody := bodyAllowed(code)

	// Trailers declared, or set by http.TrailerPrefix, need chunking.
	trailers := len(hdr["Trailer"]) > 0
	if !trailers {
		for k := range hdr {
			if strings.HasPrefix(k, http.TrailerPrefix) {
				trailers = true
				break
			}
		}
	}
	_, hasTE := hdr["Transfer-Encoding"]
	setLength := int64(-1)
	switch {
	case !hasBody || w.length >= 0:
	case w.isHead:
		// Nothing was written: no length to state.
	case final && !trailers:
		setLength = int64(len(body))
	case !w.http10:
		w.chunked = true
	default:
		w.closeAfter = true // the end of the body is the connection's
	}
	// req.Close includes an HTTP/1.0 request without keep-alive (ParseHead).
	handlerCloses := httpx.HasToken(hdr["Connection"], "close")
	if w.req.Close || w.c.s.closing.Load() || handlerCloses {
		w.closeAfter = true
	}
	if final && !w.c.body.discard() {
		// The rest of the body is too long to drop, or the client waits
		// for a 100: the connection cannot carry a next request.
		w.closeAfter = true
	}

	h := statusLine(b.head[:0], w.http10, code)
	h = writeFields(h, hdr, !hasBody, code)
	if _, ok := hdr["Date"]; !ok {
		h = append(h, "Date: "...)
		h = append(h, httpDate()...)
		h = append(h, "\r\n"...)
	}
	if _, ok := hdr["Content-Type"]; !ok && hasBody && !hasTE {
		if len(body) > 0 {
			sniff = body
		}
		if len(sniff) > 0 {
			h = append(h, "Content-Type: "...)
			h = append(h, http.DetectContentType(sniff)...)
			h = append(h, "\r\n"...)
		}
	}
	if setLength >= 0 {
		h = append(h, "Content-Length: "...)
		h = strconv.AppendInt(h, setLength, 10)
		h = append(h, "\r\n"...)
	}
	if w.chunked {
		h = append(h, "Transfer-Encoding: chunked\r\n"...)
	}
	switch {
	case w.closeAfter && !handlerCloses:
		h = append(h, "Connection: close\r\n"...)
	case !w.closeAfter && w.http10:
		h = append(h, "Connection: keep-alive\r\n"...)
	}
	h = append(h, "\r\n"...)
	if w.chunked && len(body) > 0 {
		h = strconv.AppendInt(h, int64(len(body)), 16)
		h = append(h, "\r\n"...)
	}
	if len(h) <= headRoom {
		start := headRoom - len(h)
		copy(b.out[start:], h)
		b.out = append(b.out[:0], b.out[start:]...)
		b.head = h
	} else {
		h = append(h, body...)
		b.out, b.head = h, b.out[:0]
	}
	if w.chunked && len(body) > 0 {
		b.out = append(b.out, "\r\n"...)
	}
	c := w.c
	c.wmu.Lock()
	w.committed = true
	c.wmu.Unlock()
}

// finish completes the response after the handler returned, and
// reports whether the connection can carry another request.
func (w *response) finish() bool {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.buffers()
	if !w.committed {
		w.commit(true, nil)
	}
	if w.chunked {
		b := w.bufs
		b.out = append(b.out, "0\r\n"...)
		b.out = w.appendTrailers(b.out)
		b.out = append(b.out, "\r\n"...)
	}
	w.send()
	if w.length >= 0 && w.written < w.length && bodyAllowed(w.status) && !w.isHead {
		w.closeAfter = true // the client waits for bytes that never come
	}
	if !w.c.body.discard() {
		w.closeAfter = true
	}
	w.release()
	return !w.closeAfter && w.err == nil
}

// appendTrailers writes the trailer fields: those set under
// http.TrailerPrefix, and those the Trailer header declared.
func (w *response) appendTrailers(b []byte) []byte {
	for k, vs := range w.hdr {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			b = appendField(b, name, vs)
		}
	}
	for _, v := range w.hdr["Trailer"] {
		for name := range strings.SplitSeq(v, ",") {
			name = http.CanonicalHeaderKey(strings.TrimSpace(name))
			if vs, ok := w.hdr[name]; ok && name != "" && !excludedTrailer(name) {
				b = appendField(b, name, vs)
			}
		}
	}
	return b
}

func excludedTrailer(k string) bool {
	switch k {
	case "Content-Length", "Transfer-Encoding", "Trailer", "Host", "Content-Type":
		return true
	}
	return false
}

// Hijack gives the connection to the handler, with the bytes read past
// the request in the ReadWriter's reader.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c := w.c
	if c.hijacked {
		return nil, nil, http.ErrHijacked
	}
	c.stopWatch()
	if w.wroteHeader {
		w.FlushError()
	}
	c.mu.Lock()
	c.hijacked = true
	c.mu.Unlock()
	c.nc.SetDeadline(time.Time{})
	c.s.track(c, false)
	rw := bufio.NewReadWriter(c.br, bufio.NewWriter(c.nc))
	c.br = nil
	return c.nc, rw, nil
}

// SetReadDeadline and SetWriteDeadline are http.ResponseController's.
func (w *response) SetReadDeadline(t time.Time) error  { return w.c.nc.SetReadDeadline(t) }
func (w *response) SetWriteDeadline(t time.Time) error { return w.c.nc.SetWriteDeadline(t) }

// EnableFullDuplex: the body can always be read after the response
// began.
func (w *response) EnableFullDuplex() error { return nil }

// bodyAllowed reports whether a response with this status has a body
// (RFC 9110 §6.4.1).
func bodyAllowed(code int) bool {
	return code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified
}

// statusLines holds the usual status lines, ready made.
var statusLines = func() map[int]string {
	m := map[int]string{}
	for code := 100; code < 600; code++ {
		if t := http.StatusText(code); t != "" {
			m[code] = strconv.Itoa(code) + " " + t + "\r\n"
		}
	}
	return m
}()

func statusLine(b []byte, http10 bool, code int) []byte {
	if http10 {
		b = append(b, "HTTP/1.0 "...)
	} else {
		b = append(b, "HTTP/1.1 "...)
	}
	if s, ok := statusLines[code]; ok {
		return append(b, s...)
	}
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, " status code "...)
	b = strconv.AppendInt(b, int64(code), 10)
	return append(b, "\r\n"...)
}

// writeFields appends the handler's header fields, as net/http writes
// them: names that are not tokens dropped, line breaks in values turned
// into spaces; never Transfer-Encoding (the engine frames the body) nor
// trailers; without Content-Length when noBody, nor Content-Type on a 304
// (net/http's suppressedHeaders: a 204 or a 1xx keeps its Content-Type).
func writeFields(b []byte, hdr http.Header, noBody bool, code int) []byte {
	for k, vs := range hdr {
		switch k {
		case "Transfer-Encoding":
			continue
		case "Content-Length":
			if noBody {
				continue
			}
		case "Content-Type":
			if code == http.StatusNotModified {
				continue
			}
		}
		if strings.HasPrefix(k, http.TrailerPrefix) || !httpx.IsToken(k) {
			continue
		}
		b = appendField(b, k, vs)
	}
	return b
}

func appendField(b []byte, k string, vs []string) []byte {
	for _, v := range vs {
		b = append(b, k...)
		b = append(b, ": "...)
		v = strings.TrimSpace(v)
		for i := 0; i < len(v); i++ {
			c := v[i]
			if c == '\r' || c == '\n' {
				c = ' '
			}
			b = append(b, c)
		}
		b = append(b, "\r\n"...)
	}
	return b
}

// date caches the Date header's value for the current second.
type date struct {
	sec int64
	b   []byte
}

var dateCache atomic.Pointer[date]

func httpDate() []byte {
	now := time.Now()
	if d := dateCache.Load(); d != nil && d.sec == now.Unix() {
		return d.b
	}
	d := &date{sec: now.Unix(), b: now.UTC().AppendFormat(nil, http.TimeFormat)}
	dateCache.Store(d)
	return d.b
}
