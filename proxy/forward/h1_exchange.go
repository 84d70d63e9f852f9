// One exchange on an h1Conn: the request head out, the response head in,
// and the response body that gives the connection back at its end.

package forward

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/h1"
	"github.com/gatehouse/gatehouse/internal/httpx"
)

// exchange sends out on pc and reads the response head. stale reports an
// error that net/http would retry: pc was reused, and it failed before any
// response byte in a way that means the upstream had closed it.
func (pc *h1Conn) exchange(ctx context.Context, now time.Time, out *http.Request, body io.ReadCloser) (resp *http.Response, stale bool, err error) {
	pc.watch(ctx)
	cl := out.ContentLength
	if body == nil {
		cl = 0
	} else if cl == 0 {
		cl = -1 // a body of unknown length: chunked
	}
	if err := writeHead(pc.bw, out, cl); err != nil {
		pc.end()
		closeBody(body)
		return nil, false, &h1Error{"write request", err}
	}
	head := pc.bw.Buffered()
	if err := pc.bw.Flush(); err != nil {
		pc.end()
		closeBody(body)
		// Nothing written is safe to resend whatever the method; some of
		// it, by net/http's rule.
		stale = pc.reused && (pc.bw.Buffered() == head && (body == nil || out.GetBody != nil) || replayableH1(out))
		return nil, stale, pc.fail(ctx, "write request", err)
	}

	var ex *bodyExchange
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
	// is told apart from a truncated head (which readHead reports as
	// io.ErrUnexpectedEOF).
	if _, err := pc.br.Peek(1); err != nil {
		pc.end()
		stale = pc.reused && replayableH1(out) && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE))
		return nil, stale, pc.failExchange(ctx, ex, "read response", err)
	}
	r, err := pc.readHead(ctx, out, ex)
	if err != nil {
		pc.end()
		return nil, false, pc.failExchange(ctx, ex, "read response", err)
	}
	resp = &r.resp
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
		pc.end()
		return nil, true, pc.failExchange(ctx, ex, "read response", errIdle408)
	}

	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The connection is the caller's now, as net/http hands it over:
		// no longer ours to cancel or reuse.
		if !pc.unwatch() {
			return nil, false, pc.fail(ctx, "read response", net.ErrClosed)
		}
		resp.Body = &upgradedConn{br: pc.br, conn: pc.conn}
		return resp, false, nil
	}
	keep := !resp.Close && !out.Close
	if resp.Body == http.NoBody { // HEAD, 1xx, 204, 304, or Content-Length: 0
		pc.finish(ex, keep)
		return resp, false, nil
	}
	b := &r.body
	b.pc, b.ex, b.ctx, b.keep = pc, ex, ctx, keep
	if b.chunked {
		pc.chunks.Reset(pc.br)
	}
	resp.Body = b
	return resp, false, nil
}

// end closes pc after a failed exchange and stops watching the context.
func (pc *h1Conn) end() {
	pc.unwatch()
	pc.close()
}

// watch is an exchange's registration of its connection's abort with the
// request's context, which closes the connection when the context ends
// (the client went away, a deadline passed). With the fast engine's
// connection context it costs no allocation (h1.Aborter); with any other,
// context.AfterFunc's two. The zero watch watches nothing. It lives in
// the h1Conn, which runs one exchange at a time, rather than in the
// response body, which is kept within its size class.
type watch struct {
	a         h1.Aborter
	id        uint64
	afterFunc func() bool // context.AfterFunc's stop
}

// watch starts watching ctx for the exchange about to run on pc.
func (pc *h1Conn) watch(ctx context.Context) {
	pc.w = watch{}
	if ctx.Done() == nil {
		return
	}
	if a, ok := ctx.(h1.Aborter); ok {
		if id, ok := a.OnAbort(pc.abort); ok {
			pc.w = watch{a: a, id: id}
			return
		}
	}
	pc.w = watch{afterFunc: context.AfterFunc(ctx, pc.abort)}
}

// unwatch ends the exchange's watch; false means abort has run or runs:
// the connection is being closed.
func (pc *h1Conn) unwatch() bool {
	w := pc.w
	pc.w = watch{}
	switch {
	case w.a != nil:
		return w.a.StopAbort(w.id)
	case w.afterFunc != nil:
		return w.afterFunc()
	}
	return true
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
// goes to the interim hook (interimHook), on this goroutine; a 100 then lets
// the body go, so that whatever the hook writes for it comes before any
// read of the body. The heads share maxResponseHeaderBytes, as net/http's
// do, but for those a hook took.
func (pc *h1Conn) readHead(ctx context.Context, out *http.Request, ex *bodyExchange) (*h1Response, error) {
	limit := maxResponseHeaderBytes
	for interim := 0; ; interim++ {
		if interim > maxInterim {
			return nil, errors.New("too many 1xx informational responses")
		}
		r, n, err := pc.readResponse(out, limit)
		if err != nil {
			return nil, err
		}
		limit -= n
		code := r.resp.StatusCode
		if !validStatus(code) {
			return nil, invalidStatusError(code)
		}
		if code >= 200 || code == http.StatusSwitchingProtocols {
			if ex != nil {
				ex.signal(false)
			}
			return r, nil
		}
		if hook := pc.interimHook(ctx); hook != nil {
			if err := hook(code, textproto.MIMEHeader(r.resp.Header)); err != nil {
				return nil, err
			}
			// Delivered: the hook limits what it takes. net/http resets
			// the limit likewise.
			limit = maxResponseHeaderBytes
		}
		if code == http.StatusContinue && ex != nil {
			ex.signal(true)
		}
	}
}

// finish ends an exchange whose response was read as far as it goes: pc
// goes back to the idle stack if reuse is set and nothing else forbids
// it (the context fired, or the body was not written in full).
func (pc *h1Conn) finish(ex *bodyExchange, reuse bool) {
	if !pc.unwatch() {
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

// h1Body is a response body: it reads through the connection's buffer,
// decoding it if chunked, and at its end gives the connection back. Read
// and Close must not be called concurrently; cancel the request's context
// to abort a Read.
type h1Body struct {
	resp    *http.Response // whose Trailer a chunked body's trailer section fills
	chunked bool
	n       int64 // what is left of a body with a length; -1: it ends with the connection

	pc   *h1Conn // nil once the exchange has ended
	ex   *bodyExchange
	ctx  context.Context
	keep bool
	err  error // what Read returns once the exchange has ended
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.pc == nil {
		return 0, b.err
	}
	n, err := b.read(p)
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

// read reads the body as its head framed it, io.EOF at its end (with the
// last bytes, as net/http's body does). A body cut short by the end of
// the connection is io.ErrUnexpectedEOF.
func (b *h1Body) read(p []byte) (int, error) {
	pc := b.pc
	switch {
	case b.chunked:
		n, err := pc.chunks.Read(p)
		if err == io.EOF {
			b.trailer()
		} else if err != nil && errors.As(err, new(*gatehouse.Error)) {
			// The decoder's kind for a malformed body is a client's
			// fault (400); from an upstream it is none of the client's.
			err = errors.New("malformed chunked response body: " + gatehouse.ErrorMessage(err))
		}
		return n, err
	case b.n < 0:
		return pc.br.Read(p)
	case b.n == 0:
		return 0, io.EOF
	}
	return h1.ReadLength(pc.br, p, &b.n)
}

// trailer puts a chunked body's trailer fields in resp.Trailer, as
// net/http does: announced or not, replacing the announced names' nil.
func (b *h1Body) trailer() { b.pc.chunks.MergeTrailer(&b.resp.Trailer) }

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
	pc.finish(b.ex, reuse)
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
	var buf [512]byte
	for drained := 0; drained <= maxDrainOnClose; {
		n, err := b.read(buf[:])
		drained += n
		if err == io.EOF {
			if drained > maxDrainOnClose {
				return false
			}
			pc.conn.SetReadDeadline(time.Time{})
			return true
		}
		if err != nil {
			return false
		}
	}
	return false
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

// CloseWrite half-closes the connection (TCP, TLS), so that a tunnel can
// pass a client's half-close on and still carry the upstream's answer.
func (u *upgradedConn) CloseWrite() error {
	if cw, ok := u.conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
