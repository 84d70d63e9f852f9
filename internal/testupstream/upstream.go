// Package testupstream is a real HTTP upstream that misbehaves on purpose.
//
// Tests of the gatehouse data plane point a route at an Upstream and choose
// the upstream's behaviour per request by path, so one upstream serves many
// cases:
//
//	/echo/... (and any path not listed)   200 JSON Echo of what was received
//	/status/{code}                        that status (?retry_after=, ?location=, ?set=)
//	/headers?set=Name:Value&set=...       200 "ok\n" with those response headers
//	/bytes/{n}                            n bytes of Pattern with Content-Length
//	/chunked?chunks=3&size=16             chunked body, one chunk per flush
//	/sse?events=5&interval=20ms           text/event-stream, each event flushed
//	/continue/accept                      reads the body (so 100 Continue is sent), 201 Echo
//	/continue/reject?status=417           that status without reading the body (no 100)
//	/ws                                   WebSocket echo (RFC 6455)
//	/fault/reset                          reads the request, then TCP RST
//	/fault/reset-mid-response?length=1000&sent=100
//	                                      head announcing length bytes, sent of them, then RST
//	/fault/garbage                        "this-is-not-http\r\n\r\n", then close
//	/fault/close-after-headers?length=1000
//	                                      head announcing length bytes, then close (FIN)
//	/fault/stall                          reads the request, never answers
//	/fault/slow?delay=100ms               waits delay, then 200 Echo
//	/fault/slow-body?chunks=5&size=16&interval=50ms
//	                                      head at once, then a chunk after each interval
//
// The values shown are the defaults. /status/1xx sends that informational
// response and then a final 200; /status/101 is refused (use /ws). ";" in
// a query must be escaped as %3B (net/url rejects it; so do the modes,
// with 400). An unknown /fault/... is 404, a bad parameter 400.
//
// Every mode that waits (stall, slow, slow-body, sse) stops when the client
// goes away or the upstream closes, aborting the response (never
// completing it).
//
// A mode name also matches with a trailing path ("/ws/chat", "/sse/x").
// Durations are time.ParseDuration strings or plain milliseconds.
//
// The raw-socket faults hijack HTTP/1.x connections. Over HTTP/2, where
// there is no connection to hijack, they reset the stream instead
// (panic(http.ErrAbortHandler)): reset and garbage at once, the two
// mid-response faults after sending their head (and bytes). /ws is
// HTTP/1.1 only.
package testupstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// MaxRecordedBody is how many bytes of a request body LastRequest keeps.
// The body is counted (and, by /echo, hashed) in full.
const MaxRecordedBody = 1 << 20

// Options configures an Upstream. The zero value is a plain HTTP/1.1
// upstream on 127.0.0.1 with a random port.
type Options struct {
	// Addr is the listen address; "" means "127.0.0.1:0".
	Addr string
	// H2C also serves HTTP/2 over cleartext (prior knowledge), next to
	// HTTP/1.1 on the same port.
	H2C bool
	// TLS serves HTTPS with a self-signed certificate generated at start
	// for 127.0.0.1, ::1 and localhost; HTTP/1.1 and HTTP/2 are offered by
	// ALPN. See Upstream.CertPool, Upstream.ClientTLSConfig and Upstream.Client.
	TLS bool
	// CloseIdle closes every HTTP/1.x connection as soon as it becomes idle
	// after a response, without announcing it (no "Connection: close"), so
	// that a client's next request on it meets a stale connection. HTTP/2
	// connections are left alone.
	CloseIdle bool
	// Name, if set, is sent as the X-Upstream-Name response header on every
	// response and as "upstream" in Echo, to tell upstreams apart.
	Name string
	// NoRecord turns off LastRequest (counters still work). For benchmarks.
	NoRecord bool
	// ErrorLog receives net/http's server errors; nil discards them.
	ErrorLog *log.Logger
}

// Option adjusts Options for Start.
type Option func(*Options)

// WithH2C serves HTTP/2 cleartext (prior knowledge) next to HTTP/1.1.
func WithH2C() Option { return func(o *Options) { o.H2C = true } }

// WithTLS serves HTTPS with a self-signed certificate generated at start.
func WithTLS() Option { return func(o *Options) { o.TLS = true } }

// WithCloseIdle closes keep-alive connections as soon as they become idle,
// silently, so a client reusing one meets a stale connection.
func WithCloseIdle() Option { return func(o *Options) { o.CloseIdle = true } }

// WithName sets the X-Upstream-Name response header (and Echo.Upstream).
func WithName(name string) Option { return func(o *Options) { o.Name = name } }

// WithNoRecord turns off LastRequest recording.
func WithNoRecord() Option { return func(o *Options) { o.NoRecord = true } }

// Seen is a request as the upstream received it.
type Seen struct {
	Method           string
	URL              *url.URL
	RequestURI       string
	Proto            string
	Host             string
	Header           http.Header
	ContentLength    int64
	TransferEncoding []string
	RemoteAddr       string
	TLS              bool
	// Body holds the first MaxRecordedBody bytes of the body the mode read;
	// modes that do not read the body (/continue/reject, /ws, ...) leave it
	// empty. BodyLen counts every byte read, BodyComplete reports that the
	// body was read to its end, and Trailer is set once it was.
	Body          []byte
	BodyLen       int64
	BodyTruncated bool
	BodyComplete  bool
	Trailer       http.Header
}

func (s *Seen) clone() *Seen {
	c := *s
	if s.URL != nil {
		u := *s.URL
		c.URL = &u
	}
	c.Header = s.Header.Clone()
	c.Trailer = s.Trailer.Clone()
	c.TransferEncoding = append([]string(nil), s.TransferEncoding...)
	c.Body = append([]byte(nil), s.Body...)
	return &c
}

// Upstream is a running test upstream.
type Upstream struct {
	// Addr is the listening host:port.
	Addr string
	// URL is "http://host:port" (or "https://..." with TLS).
	URL string

	opts     Options
	srv      *http.Server
	name     []string // X-Upstream-Name value, nil if unnamed
	certPool *x509.CertPool
	cert     *x509.Certificate

	requests    atomic.Int64
	connections atomic.Int64

	seenMu sync.Mutex
	seen   *Seen

	// closeMu guards closed against handlers registering in inflight, so
	// that no inflight.Add races with Close's inflight.Wait.
	closeMu  sync.RWMutex
	closed   bool
	inflight sync.WaitGroup
	done     chan struct{} // closed by Close: wakes stalled handlers

	connsMu     sync.Mutex
	conns       map[*trackedConn]struct{}
	connsClosed bool // set by Close: later accepts are closed at once

	served    chan struct{} // closed when Serve returns
	closeOnce sync.Once
	closeErr  error
}

// Start starts an Upstream for a test and closes it in t.Cleanup. It fails
// the test if the upstream cannot start, or if closing it leaves a handler
// running.
func Start(t testing.TB, opts ...Option) *Upstream {
	t.Helper()
	var o Options
	for _, opt := range opts {
		opt(&o)
	}
	u, err := New(o)
	if err != nil {
		t.Fatalf("testupstream: %v", err)
	}
	t.Cleanup(func() {
		if err := u.Close(); err != nil {
			t.Errorf("testupstream: %v", err)
		}
	})
	return u
}

// New starts an Upstream. Close it with Close.
func New(o Options) (*Upstream, error) {
	addr := o.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	u := &Upstream{
		opts:   o,
		done:   make(chan struct{}),
		conns:  make(map[*trackedConn]struct{}),
		served: make(chan struct{}),
	}
	if o.Name != "" {
		u.name = []string{o.Name}
	}
	errorLog := o.ErrorLog
	if errorLog == nil {
		errorLog = log.New(io.Discard, "", 0)
	}
	u.srv = &http.Server{
		Handler:  u,
		ErrorLog: errorLog,
	}
	if o.H2C {
		p := new(http.Protocols)
		p.SetHTTP1(true)
		p.SetHTTP2(true)
		p.SetUnencryptedHTTP2(true)
		u.srv.Protocols = p
	}
	if o.CloseIdle {
		// ServeHTTP marks the connections that served an HTTP/1.x request;
		// an HTTP/2 connection also reports StateIdle, from its start.
		u.srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		}
		u.srv.ConnState = func(c net.Conn, s http.ConnState) {
			if s == http.StateIdle && tracked(c).servedHTTP1.Load() {
				c.Close()
			}
		}
	}
	scheme := "http"
	if o.TLS {
		cert, leaf, err := selfSignedCert()
		if err != nil {
			return nil, err
		}
		u.cert = leaf
		u.certPool = x509.NewCertPool()
		u.certPool.AddCert(leaf)
		u.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		scheme = "https"
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	u.Addr = ln.Addr().String()
	u.URL = scheme + "://" + u.Addr
	tl := &trackingListener{Listener: ln, u: u}
	go func() {
		defer close(u.served)
		if o.TLS {
			u.srv.ServeTLS(tl, "", "")
		} else {
			u.srv.Serve(tl)
		}
	}()
	return u, nil
}

// Requests returns the number of requests received so far.
func (u *Upstream) Requests() int64 { return u.requests.Load() }

// Connections returns the number of TCP connections accepted so far.
func (u *Upstream) Connections() int64 { return u.connections.Load() }

// OpenConnections returns the number of accepted TCP connections that are
// still open (including hijacked ones).
func (u *Upstream) OpenConnections() int {
	u.connsMu.Lock()
	defer u.connsMu.Unlock()
	return len(u.conns)
}

// LastRequest returns a copy of the most recently received request, or nil
// if none was received (or recording is off). Its body fields reflect what
// the mode has read so far.
func (u *Upstream) LastRequest() *Seen {
	u.seenMu.Lock()
	defer u.seenMu.Unlock()
	if u.seen == nil {
		return nil
	}
	return u.seen.clone()
}

// Reset zeroes the counters and forgets the last request.
func (u *Upstream) Reset() {
	u.requests.Store(0)
	u.connections.Store(0)
	u.seenMu.Lock()
	u.seen = nil
	u.seenMu.Unlock()
}

// CertPool returns a pool trusting the upstream's certificate (nil without TLS).
func (u *Upstream) CertPool() *x509.CertPool { return u.certPool }

// Certificate returns the upstream's self-signed certificate (nil without TLS).
func (u *Upstream) Certificate() *x509.Certificate { return u.cert }

// ClientTLSConfig returns a client TLS config trusting the upstream (nil
// without TLS).
func (u *Upstream) ClientTLSConfig() *tls.Config {
	if u.certPool == nil {
		return nil
	}
	return &tls.Config{RootCAs: u.certPool}
}

// Client returns a new client with its own transport that speaks the
// upstream's best protocol: HTTP/2 over TLS with TLS (trusting the
// certificate), HTTP/2 cleartext with H2C, HTTP/1.1 otherwise.
func (u *Upstream) Client() *http.Client {
	tr := &http.Transport{}
	switch {
	case u.opts.TLS:
		tr.TLSClientConfig = u.ClientTLSConfig()
		tr.ForceAttemptHTTP2 = true
	case u.opts.H2C:
		p := new(http.Protocols)
		p.SetUnencryptedHTTP2(true)
		tr.Protocols = p
	}
	return &http.Client{Transport: tr}
}

// Close stops the upstream: it stops listening, wakes stalled handlers,
// closes every connection (hijacked ones included) and waits for the
// handlers to return. It reports an error if one is still running after
// five seconds. Close is idempotent.
func (u *Upstream) Close() error {
	u.closeOnce.Do(func() {
		u.closeMu.Lock()
		u.closed = true
		u.closeMu.Unlock()
		close(u.done)
		u.srv.Close()
		u.closeAllConns()
		<-u.served

		finished := make(chan struct{})
		go func() {
			u.inflight.Wait()
			close(finished)
		}()
		select {
		case <-finished:
		case <-time.After(5 * time.Second):
			u.closeErr = errors.New("testupstream: handlers still running 5s after Close")
		}
	})
	return u.closeErr
}

func (u *Upstream) closeAllConns() {
	u.connsMu.Lock()
	u.connsClosed = true
	conns := make([]*trackedConn, 0, len(u.conns))
	for c := range u.conns {
		conns = append(conns, c)
	}
	u.connsMu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// ServeHTTP is the upstream's handler; it is exported only so that
// *Upstream satisfies http.Handler for its own server.
func (u *Upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.closeMu.RLock()
	if u.closed {
		u.closeMu.RUnlock()
		panic(http.ErrAbortHandler)
	}
	u.inflight.Add(1)
	u.closeMu.RUnlock()
	defer u.inflight.Done()

	u.requests.Add(1)
	if u.opts.CloseIdle && r.ProtoMajor == 1 {
		if c, ok := r.Context().Value(connKey{}).(net.Conn); ok {
			tracked(c).servedHTTP1.Store(true)
		}
	}
	// Modes read the body through body, never by replacing r.Body: net/http
	// inspects r.Body's type after the handler (Expect: 100-continue).
	var body io.Reader = r.Body
	if !u.opts.NoRecord {
		if rec := u.record(r); rec != nil {
			body = rec
		}
	}
	if u.name != nil {
		w.Header()["X-Upstream-Name"] = u.name
	}
	u.dispatch(w, r, body)
}

// record makes r the last request and returns a reader of r.Body that
// records what is read into it (nil if r has no body).
func (u *Upstream) record(r *http.Request) *recordingBody {
	s := &Seen{
		Method:           r.Method,
		RequestURI:       r.RequestURI,
		Proto:            r.Proto,
		Host:             r.Host,
		Header:           r.Header.Clone(),
		ContentLength:    r.ContentLength,
		TransferEncoding: append([]string(nil), r.TransferEncoding...),
		RemoteAddr:       r.RemoteAddr,
		TLS:              r.TLS != nil,
	}
	if r.URL != nil {
		uc := *r.URL
		s.URL = &uc
	}
	var rec *recordingBody
	if r.Body == nil || r.Body == http.NoBody {
		s.BodyComplete = true
	} else {
		rec = &recordingBody{body: r.Body, u: u, s: s, r: r}
	}
	u.seenMu.Lock()
	u.seen = s
	u.seenMu.Unlock()
	return rec
}

// recordingBody copies what a mode reads of the request body into its Seen.
type recordingBody struct {
	body io.Reader
	u    *Upstream
	s    *Seen
	r    *http.Request
}

func (b *recordingBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	b.u.seenMu.Lock()
	s := b.s
	if n > 0 {
		s.BodyLen += int64(n)
		keep := min(n, MaxRecordedBody-len(s.Body))
		s.Body = append(s.Body, p[:keep]...)
		if keep < n {
			s.BodyTruncated = true
		}
	}
	if err == io.EOF {
		s.BodyComplete = true
		s.Trailer = b.r.Trailer.Clone()
	}
	b.u.seenMu.Unlock()
	return n, err
}

// trackingListener counts accepted connections and tracks them so that
// Close can close hijacked ones too.
type trackingListener struct {
	net.Listener
	u *Upstream
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.u.connections.Add(1)
	tc := &trackedConn{Conn: c, u: l.u}
	l.u.connsMu.Lock()
	closed := l.u.connsClosed
	if !closed {
		l.u.conns[tc] = struct{}{}
	}
	l.u.connsMu.Unlock()
	if closed {
		c.Close()
	}
	return tc, nil
}

type trackedConn struct {
	net.Conn
	u           *Upstream
	once        sync.Once
	servedHTTP1 atomic.Bool // for CloseIdle
}

type connKey struct{}

// tracked returns the trackedConn under c (a *trackedConn or a *tls.Conn
// over one).
func tracked(c net.Conn) *trackedConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	return c.(*trackedConn)
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.u.connsMu.Lock()
		delete(c.u.conns, c)
		c.u.connsMu.Unlock()
	})
	return err
}
