// One exchange on an h1Conn: the request head out, the response head in,
// and the response body that gives the connection back at its end.

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
	"net/textproto"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpx"
)

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
		end := max(len(pc.lr.rec)-pc.br.Buffered(), start) // meaningless, and unused, once overflowed
		code := resp.StatusCode
		if !validStatus(code) {
			return nil, invalidStatusError(code)
		}
		if code >= 200 || code == http.StatusSwitchingProtocols {
			if ex != nil {
				ex.signal(false)
			}
			if resp.Close && resp.Header["Connection"] == nil {
				if pc.lr.overflow {
					resp.Body.Close()
					return nil, errHeadUncheckable
				}
				dropConnectionNamed(resp.Header, pc.lr.rec[start:end])
			}
			return resp, nil
		}
		start = end
		if hook := pc.interimHook(ctx); hook != nil {
			if err := hook(code, textproto.MIMEHeader(resp.Header)); err != nil {
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
	for name := range httpx.FieldList(fields["Connection"]) {
		h.Del(name)
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

// CloseWrite half-closes the connection (TCP, TLS), so that a tunnel can
// pass a client's half-close on and still carry the upstream's answer.
func (u *upgradedConn) CloseWrite() error {
	if cw, ok := u.conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
