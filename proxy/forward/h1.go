package forward

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpx"
)

// h1Transport tuning, next to the shared constants in transport.go.
const (
	// maxResponseHeaderBytes bounds a response's head (and the 1xx heads
	// before it that no trace hook took), as net/http's default
	// MaxResponseHeaderBytes does.
	maxResponseHeaderBytes = 10 << 20
	// maxDrainOnClose is how much of an unread response body Close
	// consumes to keep the connection, if that much is already buffered.
	maxDrainOnClose = 4 << 10
	// maxWriteWaitBeforeReuse is how long the end of a response waits for
	// the request body's writer to finish before giving up the
	// connection, as net/http does.
	maxWriteWaitBeforeReuse = 50 * time.Millisecond
	h1BufferSize            = 4 << 10 // each connection's reader and writer
)

// h1Transport is an HTTP/1.1 client for one plain-HTTP upstream host that
// does the exchange on the calling goroutine: it writes the request head,
// then reads the response head, with no goroutine handoff. Only a request
// body is written by a goroutine of its own, because the upstream may
// answer before it has read the body.
//
// It keeps what net/http's Transport does that a proxy needs: kept-alive
// connections in a LIFO idle stack (most recently used first, up to
// maxIdleConnsPerHost, closed after idleConnTimeout idle), the read
// timeout as ResponseHeaderTimeout (the wait for the head once the request
// is written), Expect: 100-continue, 1xx relayed through
// httptrace.ClientTrace.Got1xxResponse, 101 upgrades returning a
// read-write body, request trailers, one transparent retry of a request
// that met a connection the upstream closed while idle (by net/http's
// rule), and cancellation by the request's context.
//
// It drops what a proxy does not use: proxies from the environment,
// compression, HTTP/2, a default User-Agent, Basic auth from URL userinfo,
// trace hooks other than Got1xxResponse, and sorted header output.
//
// net/http keeps a read pending on every idle connection to notice the
// upstream closing it or sending what nobody asked for. This transport
// keeps no goroutine per connection; instead every idle connection is
// checked with one non-blocking peek when it is taken for reuse
// (connAlive), whatever the method: bytes there (the excess of a body
// longer than its Content-Length, a body after a response to HEAD, an
// unsolicited 408) would be read as the next request's response, which
// may be another client's. A connection the upstream closes between the
// check and the write is retried on a fresh one when net/http's rule
// allows (replayableH1), and bytes past a response already buffered
// forbid its reuse (finish).
type h1Transport struct {
	host string // URL.Host served; a request for another is refused
	addr string // host:port dialled
	read time.Duration
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu      sync.Mutex
	idle    []*h1Conn   // oldest first: the top is the most recently used
	janitor *time.Timer // closes expired idle connections; nil until first needed
	armed   bool        // janitor is scheduled
}

func newH1Transport(k transportKey) *h1Transport {
	u := url.URL{Host: k.host}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	return &h1Transport{
		host: k.host,
		addr: net.JoinHostPort(u.Hostname(), port),
		read: k.read,
		dial: dialFunc(k.connect),
	}
}

// h1Conn is one connection with its buffers, which live as long as it.
type h1Conn struct {
	t      *h1Transport
	conn   net.Conn
	lr     limitReader // conn, limited while a response head is read
	br     *bufio.Reader
	bw     *bufio.Writer
	abort  func() // closes conn; made once, registered per exchange with context.AfterFunc
	reused bool   // taken from the idle stack
	since  time.Time
}

// limitReader reads from c, failing once n bytes have been read. While
// recording, it keeps a copy of what it reads: the response head, whose
// Connection field ReadResponse deletes when it says close.
type limitReader struct {
	c         net.Conn
	n         int64
	recording bool
	rec       []byte
}

// maxKeptRecording is the largest recording buffer a connection keeps
// between exchanges; a larger one (a huge head) is let go.
const maxKeptRecording = 64 << 10

// record starts recording, for a head about to be read.
func (r *limitReader) record() {
	r.recording = true
	if cap(r.rec) > maxKeptRecording {
		r.rec = nil
	}
	r.rec = r.rec[:0]
}

var errHeaderTooLarge = errors.New("response head over " + strconv.Itoa(maxResponseHeaderBytes>>20) + " MiB")

func (r *limitReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	n, err := r.c.Read(p)
	r.n -= int64(n)
	if r.recording {
		r.rec = append(r.rec, p[:n]...)
	}
	return n, err
}

// h1Error is a failed exchange: what was being done, and the cause, which
// classify reads.
type h1Error struct {
	op  string
	err error
}

func (e *h1Error) Error() string { return e.op + ": " + e.err.Error() }
func (e *h1Error) Unwrap() error { return e.err }

var (
	errIdle408          = errors.New("408 on an idle connection")
	errBodyNotSent      = errors.New("request body not sent: the upstream answered first")
	errReadOnClosedBody = errors.New("http: read on closed response body")
)

// RoundTrip sends out and returns the response; see h1Transport. Like
// every http.RoundTripper it closes out.Body, even on error (perhaps
// after it returns: a body still being written when the response comes is
// closed when the writing ends). It does not modify out.
func (t *h1Transport) RoundTrip(out *http.Request) (*http.Response, error) {
	ctx := out.Context()
	body := out.Body
	if body == http.NoBody {
		body = nil
	}
	if err := t.check(out, body); err != nil {
		closeBody(body)
		return nil, err
	}
	for fresh := false; ; fresh = true {
		if err := ctx.Err(); err != nil {
			closeBody(body)
			return nil, err
		}
		now := time.Now()
		pc, err := t.conn(ctx, now, fresh)
		if err != nil {
			closeBody(body)
			return nil, err
		}
		// The read timeout runs from when the request goes out, not from
		// before a dial that may have taken most of the connect timeout.
		resp, stale, err := pc.exchange(ctx, time.Now(), out, body)
		if err == nil {
			return resp, nil
		}
		if !stale || fresh || ctx.Err() != nil {
			return nil, err
		}
		// The upstream closed the connection while it was idle: the
		// request never reached it. Older idle connections have most
		// likely gone the same way.
		t.dropIdleSince(pc.since)
		if body != nil {
			if body, err = out.GetBody(); err != nil {
				return nil, err
			}
		}
	}
}

func closeBody(b io.ReadCloser) {
	if b != nil {
		b.Close()
	}
}

// check refuses what cannot be sent.
func (t *h1Transport) check(out *http.Request, body io.ReadCloser) error {
	switch {
	case out.URL == nil:
		return errors.New("http: nil Request.URL")
	case out.URL.Scheme != "http" || out.URL.Host != t.host:
		return errors.New("h1 transport for http://" + t.host + " got a request for " + out.URL.Scheme + "://" + out.URL.Host)
	case body == nil && out.ContentLength > 0:
		return errors.New("http: Request.ContentLength=" + strconv.FormatInt(out.ContentLength, 10) + " with nil Body")
	}
	return nil
}

// replayableH1 is net/http's Request.isReplayable: a request it retries
// after a connection failure once something was written. It differs from
// the pool's replayable: PUT and DELETE are not in it, but a request with
// an Idempotency-Key is.
func replayableH1(out *http.Request) bool {
	if out.Body != nil && out.Body != http.NoBody && out.GetBody == nil {
		return false
	}
	switch out.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return out.Header["Idempotency-Key"] != nil || out.Header["X-Idempotency-Key"] != nil
}

// conn returns an idle connection, or dials one if there is none or fresh
// is set. An idle connection is used only if connAlive vouches for it at
// this moment: closed by the upstream, it would fail the request; with
// bytes waiting, it would hand them to this request as its response.
// Such a connection is closed, as net/http closes one on an "unsolicited
// response received on idle HTTP channel".
func (t *h1Transport) conn(ctx context.Context, now time.Time, fresh bool) (*h1Conn, error) {
	for !fresh {
		pc := t.getIdle(now)
		if pc == nil {
			break
		}
		if !connAlive(pc.conn) {
			pc.close()
			continue
		}
		return pc, nil
	}
	c, err := t.dial(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	pc := &h1Conn{t: t, conn: c, lr: limitReader{c: c, n: math.MaxInt64}}
	pc.br = bufio.NewReaderSize(&pc.lr, h1BufferSize)
	pc.bw = bufio.NewWriterSize(c, h1BufferSize)
	pc.abort = func() { c.Close() }
	return pc, nil
}

func (pc *h1Conn) close() { pc.conn.Close() }

// getIdle pops the most recently used idle connection. One idle past
// idleConnTimeout means every one below it is too: all are closed.
func (t *h1Transport) getIdle(now time.Time) *h1Conn {
	t.mu.Lock()
	n := len(t.idle)
	if n == 0 {
		t.mu.Unlock()
		return nil
	}
	pc := t.idle[n-1]
	if now.Sub(pc.since) >= idleConnTimeout {
		expired := t.idle
		t.idle = nil
		t.mu.Unlock()
		for _, pc := range expired {
			pc.close()
		}
		return nil
	}
	t.idle[n-1] = nil
	t.idle = t.idle[:n-1]
	t.mu.Unlock()
	pc.reused = true
	return pc
}

// putIdle keeps pc for reuse, or closes it if the stack is full.
func (t *h1Transport) putIdle(pc *h1Conn) {
	pc.since = time.Now()
	t.mu.Lock()
	if len(t.idle) >= maxIdleConnsPerHost {
		t.mu.Unlock()
		pc.close()
		return
	}
	t.idle = append(t.idle, pc)
	if !t.armed {
		t.armed = true
		if t.janitor == nil {
			t.janitor = time.AfterFunc(idleConnTimeout, t.prune)
		} else {
			t.janitor.Reset(idleConnTimeout)
		}
	}
	t.mu.Unlock()
}

// prune runs on the janitor's timer: it closes the idle connections past
// idleConnTimeout and schedules itself for the next to expire, if any. It
// is a timer, not a goroutine: nothing runs while nothing is idle.
func (t *h1Transport) prune() {
	now := time.Now()
	t.mu.Lock()
	k := 0
	for k < len(t.idle) && now.Sub(t.idle[k].since) >= idleConnTimeout {
		k++
	}
	expired := append([]*h1Conn(nil), t.idle[:k]...)
	t.removeLocked(k)
	if len(t.idle) > 0 {
		t.janitor.Reset(idleConnTimeout - now.Sub(t.idle[0].since))
	} else {
		t.armed = false
	}
	t.mu.Unlock()
	for _, pc := range expired {
		pc.close()
	}
}

// dropIdleSince closes the idle connections idle since before since.
func (t *h1Transport) dropIdleSince(since time.Time) {
	t.mu.Lock()
	k := 0
	for k < len(t.idle) && !t.idle[k].since.After(since) {
		k++
	}
	stale := append([]*h1Conn(nil), t.idle[:k]...)
	t.removeLocked(k)
	t.mu.Unlock()
	for _, pc := range stale {
		pc.close()
	}
}

// removeLocked removes the k oldest idle connections from the stack.
func (t *h1Transport) removeLocked(k int) {
	if k == 0 {
		return
	}
	n := copy(t.idle, t.idle[k:])
	clear(t.idle[n:])
	t.idle = t.idle[:n]
}

// CloseIdleConnections closes every idle connection. Connections in use
// are not interrupted; they are kept for reuse when their exchange ends,
// and closed by the janitor once idle too long.
func (t *h1Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	if t.janitor != nil {
		t.janitor.Stop()
	}
	t.armed = false
	t.mu.Unlock()
	for _, pc := range idle {
		pc.close()
	}
}

// exchange sends out on pc and reads the response head. stale reports an
// error that net/http would retry: pc was reused, and it failed before any
// response byte in a way that means the upstream had closed it.
func (pc *h1Conn) exchange(ctx context.Context, now time.Time, out *http.Request, body io.ReadCloser) (resp *http.Response, stale bool, err error) {
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, pc.abort)
	}
	cl := out.ContentLength
	if body == nil {
		cl = 0
	} else if cl == 0 {
		cl = -1 // a body of unknown length: chunked
	}
	if err := writeHead(pc.bw, out, cl); err != nil {
		pc.end(stop)
		closeBody(body)
		return nil, false, &h1Error{"write request", err}
	}
	head := pc.bw.Buffered()
	if err := pc.bw.Flush(); err != nil {
		pc.end(stop)
		closeBody(body)
		// Nothing written is safe to resend whatever the method; some of
		// it, by net/http's rule.
		stale = pc.reused && (pc.bw.Buffered() == head && (body == nil || out.GetBody != nil) || replayableH1(out))
		return nil, stale, pc.fail(ctx, "write request", err)
	}

	var ex *bodyExchange
	pc.lr.n = maxResponseHeaderBytes
	// Nothing is buffered (finish reuses no connection that has bytes
	// past a response), so the recording starts with the head.
	pc.lr.record()
	if body == nil {
		pc.conn.SetReadDeadline(now.Add(pc.t.read))
	} else {
		ex = &bodyExchange{pc: pc, body: body, cl: cl, trailer: out.Trailer, done: make(chan struct{})}
		if httpx.HasToken(out.Header["Expect"], "100-continue") {
			ex.cont = make(chan bool, 1)
		}
		go ex.run()
	}
	// Peek first: an upstream that closed the connection before answering
	// is told apart from a truncated head (which ReadResponse reports as
	// io.ErrUnexpectedEOF).
	if _, err := pc.br.Peek(1); err != nil {
		pc.end(stop)
		stale = pc.reused && replayableH1(out) && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE))
		return nil, stale, pc.failExchange(ctx, ex, "read response", err)
	}
	resp, err = pc.readHead(ctx, out, ex)
	if err != nil {
		pc.end(stop)
		return nil, false, pc.failExchange(ctx, ex, "read response", err)
	}
	pc.lr.n = math.MaxInt64
	pc.lr.recording = false
	if ex != nil {
		ex.headDone()
	} else {
		pc.conn.SetReadDeadline(time.Time{})
	}
	if resp.StatusCode == http.StatusRequestTimeout && pc.reused && replayableH1(out) {
		// Some servers send a 408 on a connection they time out while
		// idle, then close it: it answers no request of ours. net/http
		// drops such a 408 as it arrives; without a reader on idle
		// connections, this is where it shows.
		pc.end(stop)
		return nil, true, pc.failExchange(ctx, ex, "read response", errIdle408)
	}

	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The connection is the caller's now, as net/http hands it over:
		// no longer ours to cancel or reuse.
		if stop != nil && !stop() {
			return nil, false, pc.fail(ctx, "read response", net.ErrClosed)
		}
		resp.Body = &upgradedConn{br: pc.br, conn: pc.conn}
		return resp, false, nil
	}
	keep := !resp.Close && !out.Close
	if resp.Body == http.NoBody { // HEAD, 1xx, 204, 304, or Content-Length: 0
		pc.finish(stop, ex, keep)
		return resp, false, nil
	}
	resp.Body = &h1Body{rc: resp.Body, pc: pc, stop: stop, ex: ex, ctx: ctx, keep: keep}
	return resp, false, nil
}

// end closes pc after a failed exchange and stops watching the context.
func (pc *h1Conn) end(stop func() bool) {
	if stop != nil {
		stop()
	}
	pc.close()
}

// fail wraps err; if the request's context is done, its error stands for
// err: the connection was closed because of it.
func (pc *h1Conn) fail(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		err = cerr
	}
	return &h1Error{op, err}
}

// failExchange is fail once a body writer may run: a body that could not
// be read (the client's failure, or its limit) explains the failure
// better than the connection it broke.
func (pc *h1Conn) failExchange(ctx context.Context, ex *bodyExchange, op string, err error) error {
	if ex != nil {
		ex.abandon()
		if p := ex.srcErr.Load(); p != nil {
			return &h1Error{"read request body", *p}
		}
	}
	return pc.fail(ctx, op, err)
}

// maxInterim bounds the 1xx responses read before the final one, as
// net/http does.
const maxInterim = 5

// readHead reads responses until a final one (or 101). Every other 1xx
// goes to the trace's Got1xxResponse, on this goroutine; a 100 then lets
// the body go, so that whatever the hook writes for it comes before any
// read of the body.
func (pc *h1Conn) readHead(ctx context.Context, out *http.Request, ex *bodyExchange) (*http.Response, error) {
	start := 0 // where this head begins in the recording
	for interim := 0; ; interim++ {
		if interim > maxInterim {
			return nil, errors.New("too many 1xx informational responses")
		}
		resp, err := http.ReadResponse(pc.br, out)
		if err != nil {
			return nil, err
		}
		end := len(pc.lr.rec) - pc.br.Buffered()
		code := resp.StatusCode
		if !validStatus(code) {
			return nil, invalidStatusError(code)
		}
		if code >= 200 || code == http.StatusSwitchingProtocols {
			if ex != nil {
				ex.signal(false)
			}
			if resp.Close && resp.Header["Connection"] == nil {
				dropConnectionNamed(resp.Header, pc.lr.rec[start:end])
			}
			return resp, nil
		}
		start = end
		if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(code, textproto.MIMEHeader(resp.Header)); err != nil {
				return nil, err
			}
			// Delivered: the hook limits what it takes. net/http resets
			// the limit likewise.
			pc.lr.n = maxResponseHeaderBytes
		}
		if code == http.StatusContinue && ex != nil {
			ex.signal(true)
		}
	}
}

// dropConnectionNamed deletes from h the fields that head's Connection
// names. ReadResponse deletes a Connection field that says close, and with
// it the names it lists beside (Connection: close, X-Secret): without
// this, the proxy would not know X-Secret for hop-by-hop and would relay
// it. It parses the head as ReadResponse did; it runs only for a response
// that said close.
func dropConnectionNamed(h http.Header, head []byte) {
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(head)))
	if _, err := tp.ReadLine(); err != nil { // the status line
		return
	}
	fields, err := tp.ReadMIMEHeader()
	if err != nil && len(fields) == 0 {
		return
	}
	for _, v := range fields["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
}

// finish ends an exchange whose response was read as far as it goes: pc
// goes back to the idle stack if reuse is set and nothing else forbids
// it (the context fired, or the body was not written in full).
func (pc *h1Conn) finish(stop func() bool, ex *bodyExchange, reuse bool) {
	if stop != nil && !stop() {
		reuse = false // canceled: the connection is being closed
	}
	if ex != nil && !ex.wrote() {
		reuse = false
	}
	if pc.br.Buffered() > 0 {
		reuse = false // bytes past the response: the next one would start with them
	}
	if reuse {
		pc.t.putIdle(pc)
	} else {
		pc.close()
	}
}

// h1Body is a response body: it reads through the connection's buffer
// and, at its end, gives the connection back. Read and Close must not be
// called concurrently; cancel the request's context to abort a Read.
type h1Body struct {
	rc   io.ReadCloser // ReadResponse's body, over pc.br
	pc   *h1Conn       // nil once the exchange has ended
	stop func() bool
	ex   *bodyExchange
	ctx  context.Context
	keep bool
	err  error // what Read returns once the exchange has ended
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.pc == nil {
		return 0, b.err
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.end(b.keep, io.EOF)
	} else if err != nil {
		if cerr := b.ctx.Err(); cerr != nil {
			err = cerr
		}
		b.end(false, err)
	}
	return n, err
}

// Close before the end keeps the connection only if the rest of the body
// (up to maxDrainOnClose) is already buffered; otherwise it closes it.
func (b *h1Body) Close() error {
	if b.pc == nil {
		if b.err == io.EOF {
			b.err = errReadOnClosedBody
		}
		return nil
	}
	b.end(b.keep && b.drainBuffered(), errReadOnClosedBody)
	return nil
}

func (b *h1Body) end(reuse bool, err error) {
	pc := b.pc
	b.pc, b.err = nil, err
	pc.finish(b.stop, b.ex, reuse)
}

// drainBuffered reads the rest of the body from what is already
// buffered, never waiting on the network: a read deadline in the past
// fails any read that would.
func (b *h1Body) drainBuffered() bool {
	pc := b.pc
	if pc.br.Buffered() == 0 {
		return false
	}
	pc.conn.SetReadDeadline(aLongTimeAgo)
	n, err := io.CopyN(io.Discard, b.rc, maxDrainOnClose+1)
	if err != io.EOF || n > maxDrainOnClose {
		return false
	}
	pc.conn.SetReadDeadline(time.Time{})
	return true
}

var aLongTimeAgo = time.Unix(1, 0)

// upgradedConn is a 101 response's body: the connection, reading first
// what was buffered after the head.
type upgradedConn struct {
	br   *bufio.Reader
	conn net.Conn
}

func (u *upgradedConn) Read(p []byte) (int, error)  { return u.br.Read(p) }
func (u *upgradedConn) Write(p []byte) (int, error) { return u.conn.Write(p) }
func (u *upgradedConn) Close() error                { return u.conn.Close() }

// bodyExchange writes a request body on its own goroutine while the
// caller reads the response.
type bodyExchange struct {
	pc      *h1Conn
	body    io.ReadCloser
	cl      int64 // > 0: that many bytes; -1: chunked
	trailer http.Header
	cont    chan bool // with Expect: 100-continue: true sends, false skips
	done    chan struct{}
	err     error // the write's outcome, set before done closes
	srcErr  atomic.Pointer[error]

	// The read timeout runs from the end of the body (net/http's
	// ResponseHeaderTimeout does), unless the head came first.
	mu       sync.Mutex
	headSeen bool
}

// run writes the body (after a 100, or the wait for one), then arms the
// read deadline. A body that cannot be read aborts the exchange: the
// upstream would wait for the rest forever.
func (ex *bodyExchange) run() {
	defer close(ex.done)
	defer ex.body.Close()
	if ex.cont != nil {
		t := time.NewTimer(expectContinueTimeout)
		select {
		case ok := <-ex.cont:
			t.Stop()
			if !ok {
				ex.err = errBodyNotSent
				return
			}
		case <-t.C:
		}
	}
	err, src := ex.write()
	ex.err = err
	if src {
		ex.srcErr.Store(&err)
		ex.pc.close()
		return
	}
	ex.mu.Lock()
	if !ex.headSeen {
		ex.pc.conn.SetReadDeadline(time.Now().Add(ex.pc.t.read))
	}
	ex.mu.Unlock()
}

// write copies the body, flushing after every read, as net/http does for
// chunked request bodies; src reports that reading the body failed.
func (ex *bodyExchange) write() (err error, src bool) {
	bufp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bufp)
	buf := *bufp
	bw := ex.pc.bw
	remaining := ex.cl
	for {
		p := buf
		if ex.cl > 0 && int64(len(p)) > remaining {
			p = p[:remaining]
		}
		n, rerr := ex.body.Read(p)
		if n > 0 {
			if ex.cl < 0 {
				bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(n), 16))
				bw.WriteString("\r\n")
				bw.Write(p[:n])
				bw.WriteString("\r\n")
			} else {
				bw.Write(p[:n])
				remaining -= int64(n)
			}
			if err := bw.Flush(); err != nil {
				return err, false
			}
		}
		if ex.cl > 0 && remaining == 0 {
			return nil, false
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr, true
		}
	}
	if ex.cl > 0 {
		return errors.New("http: ContentLength=" + strconv.FormatInt(ex.cl, 10) + " with Body length " + strconv.FormatInt(ex.cl-remaining, 10)), true
	}
	bw.WriteString("0\r\n")
	for k, vs := range ex.trailer {
		if !validHeaderName(k) {
			continue
		}
		for _, v := range vs {
			if v = textproto.TrimString(v); validHeaderValue(v) {
				writeField(bw, k, v)
			}
		}
	}
	bw.WriteString("\r\n")
	return bw.Flush(), false
}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// signal tells a writer waiting for 100 Continue whether to send.
func (ex *bodyExchange) signal(send bool) {
	if ex.cont == nil {
		return
	}
	select {
	case ex.cont <- send:
	default: // already told
	}
}

// headDone clears the read deadline once the head is read, and keeps
// the writer from arming it again.
func (ex *bodyExchange) headDone() {
	ex.mu.Lock()
	ex.headSeen = true
	ex.pc.conn.SetReadDeadline(time.Time{})
	ex.mu.Unlock()
}

// abandon ends a failed exchange: a writer waiting for a 100 gives up.
func (ex *bodyExchange) abandon() { ex.signal(false) }

// wrote reports whether the body was written in full, waiting a little
// for a writer that is almost done.
func (ex *bodyExchange) wrote() bool {
	select {
	case <-ex.done:
		return ex.err == nil
	default:
	}
	t := time.NewTimer(maxWriteWaitBeforeReuse)
	defer t.Stop()
	select {
	case <-ex.done:
		return ex.err == nil
	case <-t.C:
		return false
	}
}

// writeHead writes the request line and header fields. cl > 0 frames the
// body by Content-Length, -1 as chunked; 0 is no body. Host, framing and
// Connection are written from out's fields, never from out.Header.
func writeHead(bw *bufio.Writer, out *http.Request, cl int64) error {
	method := out.Method
	if method == "" {
		method = http.MethodGet
	}
	if !validToken(method) {
		return errors.New("invalid method " + strconv.Quote(method))
	}
	bw.WriteString(method)
	bw.WriteByte(' ')
	u := out.URL
	if u.Opaque != "" {
		uri := u.RequestURI()
		if !validTarget(uri) {
			return errors.New("invalid request target")
		}
		bw.WriteString(uri)
	} else {
		p := u.EscapedPath()
		if p == "" {
			p = "/"
		}
		bw.WriteString(p)
		if u.RawQuery != "" || u.ForceQuery {
			if !validTarget(u.RawQuery) {
				return errors.New("invalid query")
			}
			bw.WriteByte('?')
			bw.WriteString(u.RawQuery)
		}
	}
	host := out.Host
	if host == "" {
		host = u.Host
	}
	if !validTarget(host) {
		return errors.New("invalid Host " + strconv.Quote(host))
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")

	for k, vs := range out.Header {
		if framingField(k) {
			continue
		}
		if !validHeaderName(k) {
			return errors.New("invalid header field name " + strconv.Quote(k))
		}
		for _, v := range vs {
			v = textproto.TrimString(v)
			if !validHeaderValue(v) {
				return errors.New("invalid header field value for " + k)
			}
			writeField(bw, k, v)
		}
	}

	switch {
	case cl > 0:
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), cl, 10))
		bw.WriteString("\r\n")
	case cl < 0:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
		if len(out.Trailer) > 0 {
			bw.WriteString("Trailer: ")
			first := true
			for k := range out.Trailer {
				if !validHeaderName(k) {
					continue
				}
				if !first {
					bw.WriteString(", ")
				}
				bw.WriteString(k)
				first = false
			}
			bw.WriteString("\r\n")
		}
	case method != http.MethodGet && method != http.MethodHead:
		// Many servers want a length for a method that may carry a body
		// (nginx answers a POST without one 411): net/http sends 0.
		bw.WriteString("Content-Length: 0\r\n")
	}
	switch {
	case out.Close:
		bw.WriteString("Connection: close\r\n")
	case httpx.HasToken(out.Header["Connection"], "upgrade"):
		bw.WriteString("Connection: Upgrade\r\n")
	}
	_, err := bw.WriteString("\r\n")
	return err
}

func writeField(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

// framingField reports the fields writeHead writes itself.
func framingField(k string) bool {
	switch len(k) {
	case 4:
		return strings.EqualFold(k, "Host")
	case 7:
		return strings.EqualFold(k, "Trailer")
	case 10:
		return strings.EqualFold(k, "Connection")
	case 14:
		return strings.EqualFold(k, "Content-Length")
	case 17:
		return strings.EqualFold(k, "Transfer-Encoding")
	}
	return false
}

// isTokenByte is RFC 9110's tchar.
var isTokenByte = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenByte[s[i]] {
			return false
		}
	}
	return true
}

func validHeaderName(s string) bool { return validToken(s) }

// validHeaderValue rejects control characters but tab, as net/http does:
// a CR or LF would end the field early and smuggle another.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// validTarget rejects spaces and control characters in the request line
// and Host.
func validTarget(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}
