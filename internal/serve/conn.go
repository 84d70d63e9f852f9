package serve

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/h1"
)

// net/http answers some requests before any handler runs: headers too large
// (431), malformed requests (400), unknown transfer codings (501), unknown
// expectations (417), unsupported versions (505); and it hangs up without a
// word on a client that stalls mid-headers. The contract wants a problem
// document for each, and a 408 for the stall. conn sits between net/http
// and the socket (under TLS, the decrypted stream) to provide both, so the
// behaviour comes from net/http's own parser and limits rather than a
// second one; it also follows each request's framing (see framing) to
// refuse what net/http would read ambiguously.
//
// A response is net/http's own when no handler has run since the connection
// was last idle (net/http's ConnState tells when it is: after a response is
// complete, before the next request is read).
type conn struct {
	net.Conn
	// pending counts bytes read since the connection was last idle: a
	// timeout with pending > 0 interrupted a request, not an idle wait.
	pending atomic.Int64
	// handled is set when a handler starts, and cleared when the
	// connection goes idle again.
	handled atomic.Bool
	closed  atomic.Bool
	// readDeadline is the last read deadline set, in Unix nanoseconds, or
	// 0 for none.
	// net/http cancels a pending read with a deadline in the distant past;
	// that is not a client that stalled.
	readDeadline atomic.Int64
	// h2 marks a connection net/http serves as HTTP/2, whose frames this
	// HTTP/1 bookkeeping must leave alone.
	h2 atomic.Bool
	// preface counts the bytes of the HTTP/2 preface the connection has
	// begun with so far, or is -1 once it did not (see prefaceDone).
	preface int
	// h2c: the listener serves cleartext HTTP/2 with prior knowledge.
	h2c bool

	// frames follows the requests' framing; only the reading goroutine
	// (net/http hands reading on, never shares it) touches it.
	frames framing
	// stopped is why frames stopped following the connection: the
	// problem of a request whose framing was refused, or errLost. No byte
	// of the connection after that point reaches net/http.
	stopped error
	// heads counts the request heads passed to net/http, idles the
	// responses it completed; before is the number of requests that came
	// before the one frames stopped in: while idles < before, one of them
	// is still being answered.
	heads, idles atomic.Int64
	before       int64
	// hijacked: a handler took the connection over; its bytes are no
	// longer HTTP/1 requests.
	hijacked atomic.Bool
	// tls is the state of a TLS connection beneath, once known.
	tls atomic.Pointer[tls.ConnectionState]
	// log reports a panic in frames; nil means slog.Default().
	log *slog.Logger
	// wake tells refuse, holding back the client's end (gone) from
	// net/http, that a response completed or the read deadline changed.
	wake chan struct{}
	gone error
}

// tlsState returns the state of the TLS connection beneath c, or nil for
// a cleartext one. It is read once the handshake is done, which it is
// when a request has been read.
func (c *conn) tlsState() *tls.ConnectionState {
	if st := c.tls.Load(); st != nil {
		return st
	}
	tc, ok := c.Conn.(*tls.Conn)
	if !ok {
		return nil
	}
	st := tc.ConnectionState()
	c.tls.Store(&st)
	return &st
}

// listener wraps every accepted connection in a conn.
type listener struct {
	net.Listener
	log *slog.Logger // for the conns; nil means slog.Default()
	h2c bool         // Options.H2C
}

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c, log: l.log, h2c: l.h2c, wake: make(chan struct{}, 1)}, nil
}

type connKey struct{}

// connContext is http.Server.ConnContext: it lets the handler chain mark the
// conn as inside a handler.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if cc, ok := c.(*conn); ok {
		return context.WithValue(ctx, connKey{}, cc)
	}
	return ctx
}

// connState is http.Server.ConnState: a connection that goes idle has
// finished a response, so what follows is a new request that no handler
// has seen yet.
func connState(c net.Conn, state http.ConnState) {
	cc, ok := c.(*conn)
	if !ok {
		return
	}
	switch state {
	case http.StateIdle:
		cc.idles.Add(1)
		cc.signal()
		fallthrough
	case http.StateNew:
		cc.handled.Store(false)
		cc.pending.Store(0)
	case http.StateHijacked:
		cc.hijacked.Store(true)
		cc.signal()
	}
}

// signal wakes refuse, if it waits.
func (c *conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// connOf returns the request's connection, or nil (a server not started by Serve).
func connOf(r *http.Request) *conn {
	cc, _ := r.Context().Value(connKey{}).(*conn)
	return cc
}

// enter marks that a handler has run on the connection since it was
// last idle.
func (c *conn) enter() { c.handled.Store(true) }

func (c *conn) Read(p []byte) (int, error) {
	if c.stopped != nil {
		return c.refuse(p)
	}
	n, err := c.Conn.Read(p)
	if c.h2.Load() {
		return n, err
	}
	if c.prefaceDone(p[:n]) {
		c.h2.Store(true)
		return n, err
	}
	if n > 0 && !c.hijacked.Load() {
		heads, cut, stopped := c.follow(p[:n])
		c.heads.Add(int64(heads))
		if stopped != nil {
			c.stopped = stopped
			c.before = c.heads.Load()
			if c.frames.headEnded {
				c.before-- // net/http has the head: stopped in its body
			}
			if cut == 0 {
				return c.refuse(p)
			}
			// The bytes before the cut: for a refusal, net/http holds
			// an incomplete head, which it never completes; when lost,
			// what net/http needs to fail the request as it would, and
			// nothing of a request after it.
			n, err = cut, nil
		}
	}
	if n > 0 {
		c.pending.Add(int64(n))
	}
	if err != nil && c.stalled(err) {
		// Part of a request came and then nothing: say so before
		// net/http closes the connection. Body stalls happen inside a
		// handler, which answers 408 itself.
		c.writeProblem(gatehouse.Errorf(gatehouse.ETIMEOUT, "The request was not received in time."))
	}
	if err != nil {
		c.answerCleartext(err)
	}
	return n, err
}

// answerCleartext answers, in cleartext, a TLS read that failed because
// a method came instead of a TLS record: cleartext HTTP to the TLS
// listener, answered as net/http's own TLS path does. Apart from Read, so
// that a successful read does not put the error it might match on the
// heap.
func (c *conn) answerCleartext(err error) {
	if nc := h1.CleartextConn(err); nc != nil {
		c.writeProblemTo(nc, h1.ErrCleartext)
	}
}

// h2Preface is what a client sends first to speak HTTP/2 (RFC 9113 §3.4).
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// prefaceDone reports whether p, the next bytes read, completes the
// HTTP/2 preface the connection began with, on a connection net/http
// serves HTTP/2 on: it does so only when the first 24 bytes are the
// whole preface (it peeks at them across reads), and only where HTTP/2
// is allowed: a cleartext listener with H2C, or TLS that negotiated h2
// by ALPN. Anything else, "PRI * HTTP/2.0" included, net/http reads as
// HTTP/1 requests, and so does frames. Until then frames follows the
// preface's bytes as well, which it reads as two requests without
// fields, never a refusal or a loss.
func (c *conn) prefaceDone(p []byte) bool {
	if c.preface < 0 || len(p) == 0 {
		return false
	}
	rest := h2Preface[c.preface:]
	m := min(len(p), len(rest))
	if string(p[:m]) != rest[:m] {
		c.preface = -1
		return false
	}
	if c.preface += m; c.preface < len(h2Preface) {
		return false
	}
	c.preface = -1
	if st := c.tlsState(); st != nil {
		return st.NegotiatedProtocol == "h2"
	}
	return c.h2c
}

// follow feeds p to frames. A panic there must not take the process
// down: the body may be read on a goroutine nothing recovers (the proxy's
// copy upstream). It fails safe, as a loss does before p: none of p, nor
// anything after, reaches net/http.
func (c *conn) follow(p []byte) (heads, cut int, stop error) {
	// Whether net/http has the head of the request a loss now is in:
	// not once that request's body is complete (state fStart).
	inHead := c.frames.headEnded && c.frames.state != fStart
	defer func() {
		if v := recover(); v != nil {
			log := c.log
			if log == nil {
				log = slog.Default()
			}
			log.Error("request framing follower panicked; connection cut",
				"panic", v, "stack", string(debug.Stack()))
			c.frames = framing{state: fLost, headEnded: inHead}
			heads, cut, stop = 0, 0, errLost
		}
	}()
	return c.frames.feed(p)
}

// refuse answers the refused request once every request before it has
// been answered, and ends the connection: net/http reads EOF where the
// refused request's head should end. When frames lost track, net/http
// reads EOF where the bytes passed to it end (a handler reading the body
// at once), with no answer of refuse's own.
func (c *conn) refuse(p []byte) (int, error) {
	for c.idles.Load() < c.before {
		if c.hijacked.Load() {
			return 0, io.EOF // the refused bytes were the tunnel's
		}
		// net/http's read while it answers an earlier request, to see
		// the client go: wait as that read would, and drop what comes,
		// until net/http cancels it (a deadline) or the client leaves.
		if c.gone == nil {
			_, err := c.Conn.Read(p)
			var ne net.Error
			if err == nil {
				continue
			}
			if errors.As(err, &ne) && ne.Timeout() {
				return 0, err
			}
			// The client's end (a half-close, most often) would make
			// net/http abort the earlier request: it could still take
			// the answers, so the end waits for them, as it would on a
			// connection where nothing was refused.
			c.gone = err
			continue
		}
		if err := c.waitDeadline(); err != nil {
			return 0, err
		}
	}
	if c.stopped != errLost {
		c.writeProblem(c.stopped)
	}
	return 0, io.EOF
}

// waitDeadline waits for signal, or returns the timeout a read would at
// the read deadline.
func (c *conn) waitDeadline() error {
	var at <-chan time.Time
	if d := c.readDeadline.Load(); d != 0 {
		wait := time.Until(time.Unix(0, d))
		if wait <= 0 {
			return os.ErrDeadlineExceeded
		}
		t := time.NewTimer(wait)
		defer t.Stop()
		at = t.C
	}
	select {
	case <-c.wake:
		return nil
	case <-at:
		return os.ErrDeadlineExceeded
	}
}

func (c *conn) Write(p []byte) (int, error) {
	if c.h2.Load() {
		return c.Conn.Write(p)
	}
	if !c.handled.Load() {
		if err := netHTTPError(p); err != nil {
			c.writeProblem(err)
			return len(p), nil
		}
	}
	return c.Conn.Write(p)
}

// netHTTPError returns the problem that replaces an error response net/http
// wrote on its own, or nil to let the response through.
func netHTTPError(p []byte) error {
	line, _, _ := bytes.Cut(p, []byte("\r\n"))
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return nil
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil || status < 400 {
		return nil
	}
	_, reason, _ := bytes.Cut(line[12:], []byte(": "))
	switch status {
	case http.StatusRequestHeaderFieldsTooLarge:
		return gatehouse.Errorf(gatehouse.EHEADERSTOOLARGE, "The request's header fields exceed the limit.")
	case http.StatusNotImplemented:
		return gatehouse.Errorf(gatehouse.ENOTIMPLEMENTED, "The request's transfer coding is not supported.")
	case http.StatusExpectationFailed:
		return gatehouse.Errorf(gatehouse.EEXPECTATION, "The only expectation supported is 100-continue.")
	case http.StatusHTTPVersionNotSupported:
		return gatehouse.Errorf(gatehouse.EVERSION, "Only HTTP/1.x is supported on this listener without TLS.")
	default:
		detail := "The request is malformed."
		if len(reason) > 0 {
			detail = fmt.Sprintf("The request is malformed: %s.", reason)
		}
		return gatehouse.Errorf(gatehouse.EINVALID, "%s", detail)
	}
}

// writeProblem writes a complete problem response straight to the socket
// and marks the connection for closing. It runs only where no handler owns
// the connection, and gives a stalled client one second to take it.
func (c *conn) writeProblem(err error) { c.writeProblemTo(c.Conn, err) }

// writeProblemTo is writeProblem on w, the connection itself or, for a
// client that does not speak TLS, the socket beneath it (see
// h1.CleartextConn).
func (c *conn) writeProblemTo(w net.Conn, err error) {
	if c.closed.Swap(true) {
		return
	}
	h1.WriteProblem(w, err, NewRequestID())
	c.pending.Store(0)
}

// CloseWrite half-closes the connection when the socket beneath can, so
// that a tunnel on a hijacked connection (the egress listener's CONNECT)
// can pass one side's end of stream on while the other still sends.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

func (c *conn) SetReadDeadline(t time.Time) error {
	c.setReadDeadline(t)
	return c.Conn.SetReadDeadline(t)
}

func (c *conn) SetDeadline(t time.Time) error {
	c.setReadDeadline(t)
	return c.Conn.SetDeadline(t)
}

func (c *conn) setReadDeadline(t time.Time) {
	var d int64
	if !t.IsZero() {
		d = t.UnixNano()
	}
	c.readDeadline.Store(d)
	c.signal()
}

// stalled reports whether a read timeout means the client stopped sending
// the head of a request: the deadline was a real one, no handler has run
// since the connection was idle (a handler answers a stalled body itself;
// after it, net/http may still be discarding the rest of a body, and a
// 408 then would follow a complete response), and part of a request has
// arrived since the last response (or, read with the one before it, sits
// in net/http's buffer: frames is inside its head).
func (c *conn) stalled(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() &&
		c.readDeadline.Load() > time.Unix(2, 0).UnixNano() &&
		!c.handled.Load() && (c.pending.Load() > 0 || c.frames.inHead())
}
