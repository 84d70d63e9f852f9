package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
)

// conn is one client connection and the state its requests reuse.
type conn struct {
	s  *Server
	nc net.Conn // under TLS, the *tls.Conn
	// ctx is the connection's context, every request's: it ends when
	// the client goes away (see watch) or the connection closes. One per
	// connection rather than per request saves the allocations; nothing
	// after a response uses it but the connection's next request.
	ctx    context.Context
	cancel context.CancelFunc
	remote string
	tls    *tls.ConnectionState

	// br buffers the connection's bytes: a small reader while idle, a
	// big one (MaxHeaderBytes) once a head does not fit the small one.
	br  *bufio.Reader
	big bool
	src source

	head Head
	req  http.Request
	url  url.URL
	hdr  http.Header // the request's, cleared and reused
	vals []string    // backing for hdr's values
	te   []string
	// body is the current request's body; noBody when it has none. A
	// new one per request with a body: a goroutine the last handler left
	// reading its body (the proxy's transport) must find it closed, not
	// read this request's.
	body    *body
	chunked ChunkedReader
	resp    response

	// busy is 0 while no handler runs, 1 while one runs before its
	// request is read, and then the request's start in Unix nanoseconds:
	// the Server's watcher starts watch on connections busy for longer
	// than watchDelay. Atomic, so that a request pays no lock for it.
	busy atomic.Int64
	// watchFlag is set while watch may run (see startWatch, stopWatch).
	watchFlag atomic.Bool
	start     int64 // the current request's start, Unix nanoseconds

	// mu guards idle and the watch's state.
	mu       sync.Mutex
	idle     bool // waiting for a request: Shutdown may close it
	watching bool // watch's goroutine runs
	stopping bool // stopWatch interrupts it
	gone     bool // the client went away while the handler ran
	watched  chan struct{}

	hijacked bool // the handler took the connection
	// linger: the connection closes while the client may still be
	// sending; end half-closes it and drains a while, so that the
	// unread bytes do not make the kernel reset it, losing the answer.
	linger bool
	handed bool // handed over to net/http (HTTP/2)
	// wmu serialises writes to nc: interim responses and the automatic
	// 100 Continue may come from another goroutine than the handler's
	// (the proxy's transport reading the body, relaying a 103).
	wmu sync.Mutex
}

// source is what br reads: bytes carried over from a smaller reader
// first, then the connection.
type source struct {
	nc  net.Conn
	pre []byte
}

func (s *source) Read(p []byte) (int, error) {
	if len(s.pre) > 0 {
		n := copy(p, s.pre)
		s.pre = s.pre[n:]
		return n, nil
	}
	return s.nc.Read(p)
}

const smallBuffer = 4 << 10

var smallReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, smallBuffer) }}

// watchDelay is how long a handler runs, its request read, before a
// goroutine starts watching the connection for the client going away:
// most requests are answered sooner and never pay for one. The Server's
// watcher looks every watchDelay, so a watch starts one to two delays in.
const watchDelay = 10 * time.Millisecond

func newConn(s *Server, nc net.Conn, base context.Context) *conn {
	c := &conn{s: s, nc: nc, remote: nc.RemoteAddr().String()}
	c.src.nc = nc
	c.hdr = make(http.Header, 16)
	c.vals = make([]string, 0, 24)
	c.te = []string{"chunked"}
	c.resp.c = c
	c.resp.hdr = make(http.Header, 8)
	c.body = &noBody
	c.watched = make(chan struct{}, 1)
	ctx := base
	if s.ConnContext != nil {
		ctx = s.ConnContext(ctx, nc)
	}
	c.ctx, c.cancel = newConnContext(ctx)
	return c
}

func (c *conn) requestID() string {
	if c.s.RequestID != nil {
		return c.s.RequestID()
	}
	return ""
}

// serve runs the connection's requests, one after another.
func (c *conn) serve() {
	defer c.end()
	if c.s.TLSConfig != nil && !c.handshake() {
		return
	}
	c.br = smallReaders.Get().(*bufio.Reader)
	c.br.Reset(&c.src)
	for first := true; ; first = false {
		if !c.readRequest(first) || !c.serveRequest() {
			return
		}
	}
}

// end closes the connection, unless a handler or net/http took it, and
// gives its buffers back.
func (c *conn) end() {
	c.cancel()
	if !c.hijacked && !c.handed {
		if c.linger {
			c.lingerClose()
		}
		c.nc.Close()
		if c.br != nil {
			c.putReader()
		}
	}
	c.resp.release()
	c.s.track(c, false)
}

func (c *conn) putReader() {
	c.br.Reset(nil)
	if c.big {
		c.s.bigReaders.Put(c.br)
	} else {
		smallReaders.Put(c.br)
	}
	c.br, c.big = nil, false
}

// lingerClose half-closes the connection and reads what the client
// still sends, for up to half a second (as net/http's closeWriteAndWait).
// A client still sending more than maxDiscard is not read further but
// still given the rest of that time: closing with its bytes unread
// resets the connection, and a reset makes the client's kernel drop the
// answer it has not read yet (a 502 or 413 sent before the body was
// read, seen as a broken pipe instead).
func (c *conn) lingerClose() {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); !ok || cw.CloseWrite() != nil {
		return
	}
	end := time.Now().Add(lingerTime)
	c.nc.SetReadDeadline(end)
	if n, _ := io.CopyN(io.Discard, c.nc, maxDiscard); n == maxDiscard {
		time.Sleep(time.Until(end))
	}
}

const lingerTime = 500 * time.Millisecond

// problem answers with err's problem document; the connection ends.
func (c *conn) problem(err error) {
	WriteProblem(c.nc, err, c.requestID())
	c.linger = true
}

// handshake completes TLS within ReadHeaderTimeout and hands an h2
// connection over.
func (c *conn) handshake() bool {
	tc := tls.Server(c.nc, c.s.TLSConfig)
	c.nc.SetDeadline(deadline(c.s.ReadHeaderTimeout))
	if err := tc.HandshakeContext(c.ctx); err != nil {
		if nc := CleartextConn(err); nc != nil {
			WriteProblem(nc, ErrCleartext, c.requestID())
		}
		return false
	}
	c.nc.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	if st.NegotiatedProtocol == "h2" && c.s.HandOver != nil {
		c.handOver(tc)
		return false
	}
	c.nc, c.src.nc, c.tls = tc, tc, &st
	return true
}

func (c *conn) handOver(nc net.Conn) {
	c.handed = true
	c.s.track(c, false)
	c.s.HandOver(nc)
}

// setIdle marks the connection as waiting for a request (Shutdown closes
// those), or not; it reports false when it should close instead.
func (c *conn) setIdle(idle bool) bool {
	c.mu.Lock()
	c.idle = idle
	c.mu.Unlock()
	return !idle || !c.s.closing.Load()
}

// readRequest reads the next request head and fills c.req; false means
// the connection is done (after the problem, if any, was written).
func (c *conn) readRequest(first bool) bool {
	s := c.s
	if c.br.Buffered() == 0 {
		if c.big { // back to the small buffer while idle
			c.putReader()
			c.br = smallReaders.Get().(*bufio.Reader)
			c.br.Reset(&c.src)
		}
		wait := s.IdleTimeout
		if first {
			wait = s.ReadHeaderTimeout
		}
		if !c.setIdle(true) {
			return false
		}
		c.nc.SetReadDeadline(deadline(wait))
		_, err := c.br.Peek(1)
		c.setIdle(false)
		if err != nil {
			// Nothing of a request came: idle timeout, or the client
			// closed; either way no answer.
			return false
		}
	}
	start := time.Now()
	c.start = start.UnixNano()
	deadlineSet := first // the first request's wait was its head's
	preface := first && s.H2C && s.HandOver != nil
	for {
		b, _ := c.br.Peek(c.br.Buffered())
		if preface {
			m := min(len(b), len(h2Preface))
			switch {
			case string(b[:m]) != h2Preface[:m]:
				preface = false
			case m == len(h2Preface):
				pre := make([]byte, len(b))
				copy(pre, b)
				c.handOver(&replayConn{Conn: c.nc, pre: pre})
				c.putReader()
				return false
			}
		}
		var n int
		err := ErrIncomplete
		if !preface {
			n, err = ParseHead(b, &c.head, s.MaxHeaderBytes)
		}
		if err == nil {
			if perr := c.fill(b[:n]); perr != nil {
				c.problem(perr)
				return false
			}
			c.br.Discard(n)
			break
		}
		if err != ErrIncomplete {
			c.problem(err)
			return false
		}
		if len(b) == c.br.Size() && !c.big && s.MaxHeaderBytes > c.br.Size() {
			c.grow()
			continue
		}
		if !deadlineSet {
			c.nc.SetReadDeadline(deadlineFrom(start, s.ReadHeaderTimeout))
			deadlineSet = true
		}
		if _, err := c.br.Peek(len(b) + 1); err != nil {
			if isTimeout(err) {
				c.problem(gatehouse.Errorf(gatehouse.ETIMEOUT, "The request was not received in time."))
			}
			return false
		}
	}
	if c.req.Body != http.NoBody {
		c.nc.SetReadDeadline(deadlineFrom(start, s.ReadTimeout))
	}
	return true
}

// grow moves what the small reader holds to a big one, for a head
// longer than the small one's size.
func (c *conn) grow() {
	small := c.br
	c.src.pre, _ = small.Peek(small.Buffered())
	c.br = c.s.bigReaders.Get().(*bufio.Reader)
	c.big = true
	c.br.Reset(&c.src)
	c.br.Peek(len(c.src.pre))
	c.src.pre = nil
	small.Reset(nil)
	smallReaders.Put(small)
}

// h2Preface is what a client sends first to speak HTTP/2 (RFC 9113 §3.4).
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// replayConn is a connection handed over with the bytes already read
// from it still to be read.
type replayConn struct {
	net.Conn
	pre []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite passes a half-close on, as the connection beneath allows.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// deadline is d from now, or none for a zero d (no limit, as in net/http).
func deadline(d time.Duration) time.Time { return deadlineFrom(time.Now(), d) }

// deadlineFrom is d from start, or none for a zero d.
func deadlineFrom(start time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return start.Add(d)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// serveRequest runs the handler on c.req and completes the response;
// false means the connection closes.
func (c *conn) serveRequest() bool {
	r := &c.req
	w := &c.resp
	w.reset(r, &c.head)
	c.busy.Store(1)
	if r.Body == http.NoBody {
		c.armWatch()
	}
	if !c.run(w, r) {
		c.stopWatch()
		return false
	}
	c.stopWatch()
	if c.hijacked {
		return false
	}
	keep := w.finish()
	c.body.end()
	if !keep && !c.gone && !c.body.done() {
		c.linger = true
	}
	return keep && !c.gone && !c.s.closing.Load()
}

// run calls the handler; false means it panicked, and the connection is
// cut without more of a response (as net/http does).
func (c *conn) run(w *response, r *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			ok = false
			if v != http.ErrAbortHandler {
				c.s.logger().Error("handler panicked", "panic", v)
			}
		}
	}()
	c.s.Handler.ServeHTTP(w, r)
	return true
}

// armWatch makes the connection watchable, once the request is read
// (the body at its end), if the handler still runs.
func (c *conn) armWatch() { c.busy.CompareAndSwap(1, c.start) }

// startWatch starts watch, unless the handler ended or a watch runs. Its
// flag, set before busy is checked, and stopWatch's clearing busy before
// it checks the flag, make one of the two see the other (both atomic).
func (c *conn) startWatch() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.watching || c.hijacked {
		return
	}
	c.watchFlag.Store(true)
	if c.busy.Load() <= 1 {
		c.watchFlag.Store(false)
		return
	}
	c.watching, c.stopping = true, false
	c.nc.SetReadDeadline(time.Time{})
	go c.watch()
}

// watch reads while the handler runs, as net/http's background read
// does: an error (the client closed or reset) cancels the requests'
// context; bytes (a pipelined request) stay in br for the next request.
func (c *conn) watch() {
	_, err := c.br.Peek(1)
	c.mu.Lock()
	if err != nil && !(c.stopping && isTimeout(err)) {
		c.gone = true
		c.cancel()
	}
	c.mu.Unlock()
	c.watched <- struct{}{}
}

// stopWatch ends the watch, if any, before the connection is read again
// or given away. Without one it costs two atomic operations.
func (c *conn) stopWatch() {
	c.busy.Store(0)
	if !c.watchFlag.Load() {
		return
	}
	c.mu.Lock()
	watching := c.watching
	if watching {
		c.stopping = true
		c.nc.SetReadDeadline(aLongTimeAgo)
	}
	c.mu.Unlock()
	if watching {
		<-c.watched
	}
	c.mu.Lock()
	c.watching = false
	c.watchFlag.Store(false)
	c.mu.Unlock()
}

var aLongTimeAgo = time.Unix(1, 0)
