// Package serve runs gatehouse's HTTP listeners: the net/http server settings
// that make slow, oversized and malformed requests end in the right problem
// document, request ids, access logs, panic recovery and graceful draining.
// Both the admin API and the data plane are served through it.
package serve

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/h1"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/problem"
	"go.opentelemetry.io/otel/trace"
)

// Options configures a Server. Zero values take the defaults given.
type Options struct {
	// ReadHeaderTimeout bounds receiving the request line and headers;
	// a client that stalls longer gets 408. Default 10s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds receiving the whole request, body included.
	// Default 60s.
	ReadTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a kept-alive
	// connection. Default 120s.
	IdleTimeout time.Duration
	// MaxHeaderBytes is the limit on the request line plus headers; over
	// it is 431. Default 32 KiB.
	MaxHeaderBytes int
	// Name labels this listener in logs ("admin", "proxy").
	Name string
	// Logger receives access logs; nil means slog.Default().
	Logger *slog.Logger
	// AccessLogSample is the share of requests logged, 0 to 1; responses
	// of 500 and above, and aborted ones, are always logged. Zero means 1
	// (all): set it negative to log only those.
	AccessLogSample float64
	// TLSCert and TLSKey, if set, make the listener speak HTTPS, with
	// HTTP/2 negotiated by ALPN.
	TLSCert, TLSKey string
	// H2C also accepts cleartext HTTP/2 with prior knowledge.
	H2C bool
	// Tracer, if set, starts a server span per request, a child of the
	// client's W3C traceparent, and ends it with the response's status;
	// the access log then names the trace (trace_id). Nil: no tracing.
	Tracer trace.Tracer
	// Traced, if set, says which requests Tracer traces, before their
	// span would start: those it refuses get none, and do not sample a
	// client's traceparent either. Nil: every request.
	Traced func(r *http.Request) bool
	// NegotiateProblems writes the problems of this stack (draining,
	// headers too large, panics) as XML when the client prefers it, as
	// the data plane does; otherwise they are JSON, as on the admin API.
	NegotiateProblems bool
	// Engine serves HTTP/1.x: EngineStd (net/http, the default: the
	// admin and egress listeners') or EngineFast (internal/h1, the proxy
	// listener's unless --engine says std). HTTP/2 is net/http's on both.
	Engine string
	// MaxConnections caps the connections open at once; beyond it new
	// ones wait to be accepted. Default 10000.
	MaxConnections int
}

func (o *Options) setDefaults() {
	if o.ReadHeaderTimeout == 0 {
		o.ReadHeaderTimeout = 10 * time.Second
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = 60 * time.Second
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 120 * time.Second
	}
	if o.MaxHeaderBytes == 0 {
		o.MaxHeaderBytes = 32 << 10
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.AccessLogSample == 0 {
		o.AccessLogSample = 1
	}
	if o.Engine == "" {
		o.Engine = EngineStd
	}
	if o.MaxConnections == 0 {
		o.MaxConnections = 10000
	}
}

// Server is an http.Server with gatehouse's request handling around its
// handler.
type Server struct {
	http     *http.Server
	opts     Options
	draining atomic.Bool
	inFlight atomic.Int64
	// logEvery logs one request in logEvery (0: none but 5xx); served
	// counts requests for it.
	logEvery int64
	served   atomic.Int64
	// mu guards fast, the h1 servers of Serve's listeners, and shut.
	mu   sync.Mutex
	fast []*h1.Server
	shut bool
}

// New returns a Server for h.
func New(h http.Handler, opts Options) *Server {
	if opts.Engine != "" && opts.Engine != EngineStd && opts.Engine != EngineFast {
		// Never serve with another engine than the one asked for: a
		// test matrix or a flag naming one must not quietly get std.
		panic(fmt.Sprintf("serve: unknown engine %q", opts.Engine))
	}
	opts.setDefaults()
	s := &Server{opts: opts}
	if opts.AccessLogSample > 0 {
		s.logEvery = int64(math.Round(1 / min(opts.AccessLogSample, 1)))
	}
	s.http = &http.Server{
		Handler:           s.wrap(h),
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		ReadTimeout:       opts.ReadTimeout,
		IdleTimeout:       opts.IdleTimeout,
		// net/http allows 4 KiB over this; the handler chain enforces
		// the exact limit, net/http only what lies beyond it.
		MaxHeaderBytes: opts.MaxHeaderBytes,
		ConnContext:    connContext,
		// "OPTIONS *" comes to wrap, which answers it as gatehouse
		// (request id, access log), not net/http's bare 200.
		DisableGeneralOptionsHandler: true,
		ConnState:                    connState,
		ErrorLog:                     log.New(slogWriter{opts.Logger}, "", 0),
	}
	if opts.TLSCert != "" {
		// HTTP/2 has no conn below it to turn net/http's own 431 into a
		// problem: let requests up to four times the limit through to the
		// handler chain's check, which answers with one.
		s.http.MaxHeaderBytes = 4 * opts.MaxHeaderBytes
	}
	if opts.H2C || opts.TLSCert != "" {
		// Under TLS, Serve decrypts below net/http (see tlsListener):
		// net/http sees what it takes for cleartext connections, and
		// serves HTTP/2 (negotiated by ALPN) by its preface.
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		s.http.Protocols = &p
	}
	return s
}

// Serve accepts connections on l until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	l = limit(l, s.opts.MaxConnections)
	if s.opts.Engine == EngineFast {
		return s.serveFast(l)
	}
	tlsConfig, err := s.tlsConfig()
	if err != nil {
		return err
	}
	if tlsConfig != nil {
		// conn sits between net/http and the decrypted stream, as it does
		// on a cleartext listener, so that HTTP/1.1 over TLS gets the same
		// problems, 408s and framing checks; wrap gives each request the
		// connection's TLS state (r.TLS) that net/http no longer sees.
		l = tls.NewListener(l, tlsConfig)
	}
	err = s.http.Serve(listener{l, s.opts.Logger, s.opts.H2C})
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// tlsConfig is the listener's TLS configuration, nil without TLS.
func (s *Server) tlsConfig() (*tls.Config, error) {
	if s.opts.TLSCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(s.opts.TLSCert, s.opts.TLSKey)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2", "http/1.1"},
		MinVersion:   tls.VersionTLS12, // what HTTP/2 requires (RFC 9113 §9.2)
	}, nil
}

// Shutdown drains the server: from now on new requests get 503 with
// Retry-After and Connection: close, in-flight requests run to completion
// (or until ctx ends), then the listeners close.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shut = true
	fast := s.fast
	s.mu.Unlock()
	if err := s.Drain(ctx, nil); err != nil {
		for _, f := range fast {
			f.Close()
		}
		s.http.Close()
		return err
	}
	var errs []error
	for _, f := range fast {
		errs = append(errs, f.Shutdown(ctx))
	}
	errs = append(errs, s.http.Shutdown(ctx))
	return errors.Join(errs...)
}

// Drain begins the shutdown (new requests get 503) and returns once the
// requests in flight are no more than tunnels() (the handler's open
// tunnels, which run inside their requests and end only when cut), or
// with ctx's error. A nil tunnels counts none. Shutdown finishes the job.
func (s *Server) Drain(ctx context.Context, tunnels func() int) error {
	s.draining.Store(true)
	if tunnels == nil {
		tunnels = func() int { return 0 }
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	// A tunnel is registered after its request entered and removed
	// before it leaves, so in flight never counts fewer than the open
	// tunnels; reading in flight first keeps it so here.
	for s.inFlight.Load() > int64(tunnels()) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// InFlight returns how many requests are being handled.
func (s *Server) InFlight() int64 { return s.inFlight.Load() }

// Draining reports whether Shutdown has begun.
func (s *Server) Draining() bool { return s.draining.Load() }

// wrap puts the request handling every listener shares around h, outermost
// first: connection bookkeeping, request id, access log, panic recovery,
// draining, the head checks net/http does not make (netHTTPHeadError),
// "OPTIONS *".
func (s *Server) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cc := connOf(r); cc != nil {
			cc.enter()
			if r.TLS == nil {
				r.TLS = cc.tlsState()
			}
		}
		s.inFlight.Add(1)
		defer s.inFlight.Add(-1)

		// Judged before the request id joins the fields: the head as the
		// client sent it.
		headErr := s.netHTTPHeadError(r)

		// The id travels in the request's own header (see
		// problem.RequestID): one the client sent, if it is sane, or a
		// new one.
		ids := r.Header["X-Request-Id"]
		if len(ids) != 1 || !validRequestID(ids[0]) {
			ids = newRequestIDs()
			r.Header["X-Request-Id"] = ids
		}
		id := ids[0]
		w.Header()["X-Request-Id"] = ids

		var span trace.Span
		if s.opts.Tracer != nil && (s.opts.Traced == nil || s.opts.Traced(r)) {
			r, span = s.startSpan(r)
		}
		start := time.Now()
		var rec *statusRecorder
		if cr, ok := r.Context().Value(recorderKey{}).(*connRecorder); ok && !cr.busy && r.ProtoMajor == 1 {
			// The fast engine's connection: its requests come one at a
			// time (HTTP/2's, concurrent, are net/http's, without one).
			cr.busy = true
			defer func() { cr.busy = false }()
			cr.rec = statusRecorder{ResponseWriter: w, connect: r.Method == http.MethodConnect}
			rec = &cr.rec
		} else {
			rec = &statusRecorder{ResponseWriter: w, connect: r.Method == http.MethodConnect}
		}
		defer func() {
			v := recover()
			abort := v == http.ErrAbortHandler
			if v != nil && !abort {
				s.opts.Logger.Error("handler panicked", "request_id", id, "panic", v, "stack", string(debug.Stack()))
				// A response already under way cannot become a 500;
				// cutting the connection is the honest signal.
				abort = rec.wroteHeader
				if !abort {
					// What the handler set for its answer (Allow, ETag...)
					// does not describe this one.
					clear(rec.Header())
					rec.Header()["X-Request-Id"] = ids
					s.writeProblem(rec, r, gatehouse.Internal(fmt.Errorf("panic: %v", v)))
				}
			}
			// An aborted exchange (the handler cut it, or the client went
			// away mid-response) is logged with the status actually
			// sent, 0 if none, and aborted=true: never as a success.
			status, aborted := rec.status(), abort || rec.failed
			if abort && !rec.wroteHeader {
				status = 0
			}
			if span != nil {
				endSpan(span, r, rec, status, aborted)
			}
			if !s.opts.Logger.Enabled(r.Context(), slog.LevelInfo) ||
				status < 500 && !aborted && (s.logEvery == 0 || s.served.Add(1)%s.logEvery != 0) {
				if abort {
					panic(http.ErrAbortHandler)
				}
				return
			}
			attrs := []slog.Attr{
				slog.String("listener", s.opts.Name),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", status),
				slog.Duration("duration", time.Since(start)),
				slog.String("request_id", id),
			}
			if rec.route != "" {
				attrs = append(attrs, slog.String("route", rec.route))
			}
			if rec.service != "" {
				attrs = append(attrs, slog.String("service", rec.service))
			}
			if aborted {
				attrs = append(attrs, slog.Bool("aborted", true))
			}
			if span != nil && span.SpanContext().IsSampled() {
				attrs = append(attrs, slog.String("trace_id", span.SpanContext().TraceID().String()))
			}
			s.opts.Logger.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
			if abort {
				panic(http.ErrAbortHandler)
			}
		}()

		switch {
		case s.draining.Load():
			rec.Header().Set("Connection", "close")
			s.writeProblem(rec, r, gatehouse.Errorf(gatehouse.EUNAVAILABLE, "The server is shutting down."))
		case headErr != nil:
			s.writeProblem(rec, r, headErr)
		case r.Method == http.MethodOptions && r.RequestURI == "*":
			// A question about the server itself (RFC 9110 §9.3.7),
			// never a route's or the upstream's: 200 with the methods
			// gatehouse serves, as net/http and Apache answer, now with
			// the request id.
			rec.Header().Set("Allow", gatehouse.ImplementedMethods)
			rec.Header().Set("Content-Length", "0")
			rec.WriteHeader(http.StatusOK)
		default:
			h.ServeHTTP(rec, r)
		}
	})
}

// netHTTPHeadError is what the fast engine's parser refuses in a head
// that net/http read instead (HTTP/1 on std, HTTP/2 on either engine),
// with the fast engine's own problems: a head over MaxHeaderBytes, more
// than h1.MaxFields field lines (HTTP/1), an invalid Host (RFC 9112
// §3.2: net/http checks only its characters; a value no route could mean
// would otherwise fall through to a catch-all route and travel upstream
// in X-Forwarded-Host). nil for a head the fast engine parsed: those
// checks are not made twice.
func (s *Server) netHTTPHeadError(r *http.Request) error {
	if s.opts.Engine == EngineFast && r.ProtoMajor == 1 {
		return nil
	}
	switch {
	case headerBytes(r) > s.opts.MaxHeaderBytes:
		return h1.HeadTooLarge(s.opts.MaxHeaderBytes)
	case r.ProtoMajor == 1 && fieldLines(r) > h1.MaxFields:
		return h1.ErrTooManyFields
	case !httpx.ValidHost(r.Host):
		return h1.ErrHostInvalid
	}
	return nil
}

func (s *Server) writeProblem(w http.ResponseWriter, r *http.Request, err error) {
	if s.opts.NegotiateProblems {
		problem.WriteNegotiated(w, r, err)
		return
	}
	problem.Write(w, r, err)
}

// headerBytes approximates the request head's size on the wire, as
// net/http counts it against MaxHeaderBytes.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n + len(r.Host) + 8
}

// fieldLines counts the field lines of an HTTP/1 request's head as
// net/http read it: its values, the Host line it took out of them, and
// the Transfer-Encoding line it took out too. It cannot see what else
// net/http changed: a Cache-Control it added for a Pragma: no-cache
// counts, equal Content-Length lines it merged count once, and a Host
// taken from an absolute-form target counts as a line. At the bound, such
// a head may be answered one line apart from the fast engine's count.
func fieldLines(r *http.Request) int {
	n := 0
	for _, vs := range r.Header {
		n += len(vs)
	}
	if r.Host != "" {
		n++
	}
	if len(r.TransferEncoding) > 0 {
		n++
	}
	return n
}

// NewRequestID returns a unique id: 64 random bits chosen at start, then
// a counter, in hex. Unique without a random read per request.
func NewRequestID() string {
	var b [32]byte
	putRequestID(&b)
	return string(b[:])
}

// requestIDs is a new request id and the header value that holds it, in
// one allocation (wrap's, per request without a usable id of its own).
// Never pooled: the id outlives its request in logs and audit samples.
type requestIDs struct {
	b [32]byte
	v [1]string
}

// newRequestIDs returns a header value of one new id (NewRequestID's).
// Its capacity is one, so that an append to it copies rather than
// writes past the id.
func newRequestIDs() []string {
	ids := new(requestIDs)
	putRequestID(&ids.b)
	// The bytes are never written again: the string may alias them.
	ids.v[0] = unsafe.String(&ids.b[0], len(ids.b))
	return ids.v[:]
}

func putRequestID(b *[32]byte) {
	n := requestCounter.Add(1)
	hex.Encode(b[:16], requestPrefix[:])
	const digits = "0123456789abcdef"
	for i := 31; i >= 16; i-- {
		b[i] = digits[n&15]
		n >>= 4
	}
}

var (
	requestPrefix  = func() (p [8]byte) { rand.Read(p[:]); return }()
	requestCounter atomic.Uint64
)

// validRequestID accepts a client's X-Request-Id if it is short and
// printable, so that it is safe in logs and headers.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// statusRecorder remembers the status for the access log, and whether
// the response failed to reach the client.
type statusRecorder struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
	failed      bool
	connect     bool // the request is a CONNECT
	// route and service are what Annotate said served the request.
	route, service string
}

// Annotate tells the access log which route took the request w answers
// and which service answered it ("" for none). It finds the log's writer
// by unwrapping w; a w from outside this package's stack is left alone.
// It costs a type switch per layer and allocates nothing.
func Annotate(w http.ResponseWriter, route, service string) {
	for {
		switch x := w.(type) {
		case *statusRecorder:
			x.route, x.service = route, service
			return
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return
		}
	}
}

// Hijack hands the connection to the handler, which answers on it out of
// net/http's sight: a CONNECT with 200, an upgrade with 101 (the only
// hijacks gatehouse's handlers make), so that is the status recorded.
func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err == nil && !r.wroteHeader {
		r.code, r.wroteHeader = http.StatusSwitchingProtocols, true
		if r.connect {
			r.code = http.StatusOK
		}
	}
	return c, brw, err
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wroteHeader && code >= 200 {
		r.code, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if !r.wroteHeader {
		r.code, r.wroteHeader = http.StatusOK, true
	}
	n, err := r.ResponseWriter.Write(p)
	if err != nil {
		r.failed = true
	}
	return n, err
}

func (r *statusRecorder) status() int {
	if !r.wroteHeader {
		return http.StatusOK
	}
	return r.code
}

// FlushError flushes through to the connection, noting a failure: most
// streamed responses reach the client by flushes, not by Write.
func (r *statusRecorder) FlushError() error {
	err := http.NewResponseController(r.ResponseWriter).Flush()
	if err != nil && !errors.Is(err, http.ErrNotSupported) {
		r.failed = true
	}
	return err
}

// Flush is FlushError for callers of http.Flusher.
func (r *statusRecorder) Flush() { r.FlushError() }

// Unwrap lets http.ResponseController reach the underlying writer (flush,
// hijack, deadlines).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// slogWriter sends net/http's own error log lines to slog.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Warn(string(p))
	return len(p), nil
}
