// Package forward sends a proxied request to one of a service's upstream
// targets: it balances across the healthy targets by smooth weighted
// round-robin, retries connection failures on other targets, keeps passive
// and active health per target, shares tuned transports across pools, and
// is the one place that classifies an upstream failure into the contract's
// 502, 503 or 504 (Classify).
//
// A Pool is built once per service per revision (NewPool does all the
// configuration work); RoundTrip is the hot path and takes no lock.
package forward

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	"go.opentelemetry.io/otel/trace"
)

// Defaults applied by NewPool to zero or negative Config fields.
const (
	DefaultConnectTimeout = 5 * time.Second  // as gatehouse.Service's connect_timeout_ms
	DefaultReadTimeout    = 60 * time.Second // as gatehouse.Service's read_timeout_ms
	DefaultMaxFails       = 3
	DefaultEjectFor       = 10 * time.Second
)

// MaxTargets is how many targets a pool uses; targets past it are ignored.
// It equals gatehouse.MaxTargets, so a validated service never hits it.
const MaxTargets = 64

// Config is one service's upstream settings, compiled from a revision.
type Config struct {
	// Targets are the upstream addresses; at least one should have
	// Weight > 0, or every request is answered 503. Targets with a nil URL
	// or a Weight of 0 or less are never chosen.
	Targets []Target
	// ConnectTimeout bounds dialling a target, TLS handshake included, per
	// attempt; past it the attempt fails with 504 (unless a retry on
	// another target answers). Zero means DefaultConnectTimeout (5s).
	ConnectTimeout time.Duration
	// ReadTimeout bounds the wait for a target's response headers once the
	// request is written; past it the request fails with 504. Zero means
	// DefaultReadTimeout (60s).
	ReadTimeout time.Duration
	// Retries is how many extra attempts a request may make, each on a
	// target not yet tried, after a connection failure (refused, reset, or
	// not connected within ConnectTimeout). Only idempotent requests with
	// no body or a replayable one (GetBody set) are retried; timeouts and
	// invalid responses never are. Zero means no retry.
	Retries int
	// MaxFails is how many consecutive failed requests (connection
	// failures, invalid responses and timeouts, not 5xx answers) eject a
	// target, as long as at most half the targets are ejected at once
	// (maxEjectedPercent): a lone target is never ejected passively. Zero
	// means DefaultMaxFails (3); negative disables passive health.
	MaxFails int
	// EjectFor is how long an ejected target rests before one trial
	// request is let through; the trial's success brings it back, its
	// failure ejects it again. Zero means DefaultEjectFor (10s).
	EjectFor time.Duration
	// HealthCheck, if set, probes every target actively.
	HealthCheck *HealthCheck
	// HTTP2 speaks HTTP/2 to every target: with prior knowledge (h2c) to
	// http ones, over TLS with ALPN h2 to https ones, where an upstream
	// that does not select h2 fails the attempt (502). False: HTTP/1.1.
	HTTP2 bool
	// TLS is how the https targets are spoken to; nil means the defaults
	// (NewTLS's zero settings). It does not apply to http targets.
	TLS *TLS
	// Tracer starts the client span of each upstream attempt of a traced
	// request (one whose context holds a valid span): the server spans'
	// tracer, got once, since an SDK provider's Tracer takes a lock and
	// builds a scope per call. Nil means the tracer of that span's
	// provider, looked up per attempt.
	Tracer trace.Tracer

	// now is the clock; nil means time.Now. Tests set it.
	now func() time.Time
	// maxEjectedPercent caps passive ejection; 0 means maxEjectedPercent
	// (50). Tests of ejection itself set 100.
	maxEjectedPercent int
}

// Target is one upstream address with its share of traffic.
type Target struct {
	// URL has the scheme (http or https), host[:port] and an optional base
	// path that RoundTrip prefixes to every request's path. Its query and
	// fragment are ignored.
	URL    *url.URL
	Weight int
}

// HealthCheck configures active health checks: a GET of Path on every
// target every Interval, or with GRPC, gRPC's health check call. A 2xx or
// 3xx answer (SERVING, for GRPC) within Timeout is a success. Defaults
// match gatehouse.HealthCheck.SetDefaults.
type HealthCheck struct {
	// Path is requested from the target's host as is, not under the
	// target's base path; it may carry a query. Empty means "/". A GRPC
	// check ignores it.
	Path string
	// GRPC probes with gRPC's health protocol: the unary call
	// grpc.health.v1.Health/Check, asking about GRPCService ("": the
	// server as a whole), which must answer grpc-status 0 and SERVING.
	// The pool must speak HTTP/2 (Config.HTTP2).
	GRPC        bool
	GRPCService string
	// Interval between rounds of probes. Zero means 10s.
	Interval time.Duration
	// Timeout of one probe, connection included. Zero means 2s.
	Timeout time.Duration
	// HealthyThreshold successes in a row bring a down target back.
	// Zero means 2.
	HealthyThreshold int
	// UnhealthyThreshold failures in a row take a target out of rotation.
	// Zero means 3.
	UnhealthyThreshold int

	// grpcRequest is a GRPC check's request body, made once.
	grpcRequest []byte
}

func (hc HealthCheck) withDefaults() HealthCheck {
	if hc.GRPC {
		hc.Path = grpcHealthPath
		hc.grpcRequest = grpcHealthRequest(hc.GRPCService)
	}
	if !strings.HasPrefix(hc.Path, "/") {
		hc.Path = "/" + hc.Path
	}
	if hc.Interval <= 0 {
		hc.Interval = 10 * time.Second
	}
	if hc.Timeout <= 0 {
		hc.Timeout = 2 * time.Second
	}
	if hc.HealthyThreshold <= 0 {
		hc.HealthyThreshold = 2
	}
	if hc.UnhealthyThreshold <= 0 {
		hc.UnhealthyThreshold = 3
	}
	return hc
}

// Pool is one service's set of targets. Its methods are safe for
// concurrent use.
type Pool struct {
	targets []target
	sched   atomic.Pointer[schedule] // the live targets in smooth-WRR order
	_       [56]byte                 // keep next, written per request, off sched's cache line
	next    atomic.Uint64            // position in sched
	_       [56]byte
	// trialAt is the earliest time (unix ns) an ejected target is due a
	// trial request; 0 if none is ejected. It may be stale-early, never
	// stale-late: pick corrects it.
	trialAt atomic.Int64

	mu sync.Mutex // serialises rebuild; never taken on the hot path

	retries  int
	maxFails int32
	// maxEjectedPercent: see the constant.
	maxEjectedPercent int
	ejectFor          time.Duration
	read              time.Duration
	connect           time.Duration
	check             *HealthCheck // with defaults; nil without active checks
	now               func() time.Time
	tracer            trace.Tracer // Config.Tracer; nil: the request span's provider's

	transports *Transports
	keys       []transportKey     // acquired from transports, released by Close
	cancel     context.CancelFunc // stops the checker; nil without one
	done       chan struct{}      // closed when the checker stops
	closeOnce  sync.Once

	// releases: every target goes through an h1Transport (see
	// ReleasesRequests).
	releases bool
}

// target is a Target with its transport, its base path and its health.
type target struct {
	Target
	rt        roundTripper
	basePath  string // URL.Path without a trailing slash; "" for none
	baseRaw   string // URL.EscapedPath() likewise, set only if it differs from basePath
	healthURL string

	fails        atomic.Int32 // consecutive failed requests
	ejectedUntil atomic.Int64 // unix ns; 0 when not ejected
	down         atomic.Bool  // marked down by active checks
	// since is when the target's state last changed (unix ns), and
	// lastFailure the last failure noted: written when health changes,
	// read by Health; never on a request that succeeds.
	since       atomic.Int64
	lastFailure atomic.Pointer[gatehouse.TargetFailure]
}

// NewPool compiles cfg into a pool. transports shares connections across
// pools; nil gives the pool a private set. Active checks, if configured,
// run in one goroutine until ctx is done or Close is called.
func NewPool(ctx context.Context, cfg Config, transports *Transports) *Pool {
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.MaxFails == 0 {
		cfg.MaxFails = DefaultMaxFails
	}
	if cfg.EjectFor <= 0 {
		cfg.EjectFor = DefaultEjectFor
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	if cfg.maxEjectedPercent <= 0 {
		cfg.maxEjectedPercent = maxEjectedPercent
	}
	if transports == nil {
		transports = NewTransports()
	}
	p := &Pool{
		retries:           max(cfg.Retries, 0),
		maxFails:          int32(min(cfg.MaxFails, 1<<30)),
		maxEjectedPercent: cfg.maxEjectedPercent,
		ejectFor:          cfg.EjectFor,
		read:              cfg.ReadTimeout,
		connect:           cfg.ConnectTimeout,
		now:               cfg.now,
		tracer:            cfg.Tracer,
		transports:        transports,
	}
	if cfg.HealthCheck != nil {
		hc := cfg.HealthCheck.withDefaults()
		p.check = &hc
	}
	ts := cfg.Targets[:min(len(cfg.Targets), MaxTargets)]
	p.targets = make([]target, len(ts))
	p.releases = true
	built := p.now().UnixNano()
	for i, t := range ts {
		pt := &p.targets[i]
		pt.Target = t
		pt.since.Store(built)
		if t.URL == nil {
			pt.Weight = 0
			continue
		}
		if pt.Weight < 0 {
			pt.Weight = 0
		}
		key := transportKey{scheme: t.URL.Scheme, host: t.URL.Host, connect: p.connect, read: p.read, h2: cfg.HTTP2}
		var tlsCfg *TLS
		if t.URL.Scheme == "https" && cfg.TLS != nil {
			tlsCfg, key.tls = cfg.TLS, cfg.TLS.digest
		}
		pt.rt = transports.acquire(key, tlsCfg)
		if _, ok := pt.rt.(*h1Transport); !ok {
			p.releases = false
		}
		p.keys = append(p.keys, key)
		if base := strings.TrimSuffix(t.URL.Path, "/"); base != "" {
			pt.basePath = base
			if raw := strings.TrimSuffix(t.URL.EscapedPath(), "/"); raw != base {
				pt.baseRaw = raw
			}
		}
		if p.check != nil {
			pt.healthURL = t.URL.Scheme + "://" + t.URL.Host + p.check.Path
		}
	}
	p.rebuild()

	if p.check != nil {
		ctx, p.cancel = context.WithCancel(ctx)
		p.done = make(chan struct{})
		go p.checkLoop(ctx)
	}
	return p
}

// Close stops active checks, waits for their goroutine to end, and
// releases the pool's transports: a transport no other pool uses has its
// idle connections closed. Requests in flight are not interrupted. Build
// the next revision's pool before closing this one, so that equal settings
// keep their connections. Close is idempotent.
func (p *Pool) Close() {
	p.closeOnce.Do(func() {
		if p.cancel != nil {
			p.cancel()
			<-p.done
		}
		for _, k := range p.keys {
			p.transports.release(k)
		}
	})
}

// ReleasesRequests reports whether RoundTrip is done with its request
// when it returns, so that the caller may reuse the request, its URL and
// its header (not its body, nor its trailer, which a body writer may still
// read) once it is done with the response too, whose Request is the
// request. It holds when every target goes through the h1Transport, which
// writes the head on the caller's goroutine, calls its interim hook only
// while it waits for the head, and hands its body writer the body and
// the trailer alone. net/http's transports may still read the request
// after RoundTrip returned (a head still being written when the answer
// came, the body closed at the end of the write).
func (p *Pool) ReleasesRequests() bool { return p.releases }

// RoundTrip sends out to a target and returns the response with the target
// that gave it. The returned *Target belongs to the pool: read, never
// modify. It sets out.URL.Scheme and Host and prefixes the target's base
// path to out.URL.Path (and RawPath, if either has one); out.Host is the
// caller's (empty means the target's host). out.URL must not be shared
// with another request.
//
// A connection failure is retried on another target, up to Config.Retries
// times, when out's method is idempotent (GET, HEAD, OPTIONS, TRACE, PUT,
// DELETE) and its body is absent or replayable (GetBody set). On error the
// *Target is the one last tried (nil if none was); pass the error to
// Classify.
func (p *Pool) RoundTrip(out *http.Request) (*http.Response, *Target, error) {
	return p.roundTrip(out, nil)
}

// Interim is told of an upstream's interim (1xx) response, as
// httptrace.ClientTrace.Got1xxResponse is: on the goroutine that reads
// the response head, before a 100 lets the request body go. An error
// fails the exchange.
type Interim func(code int, header textproto.MIMEHeader) error

// RoundTripRelaying is RoundTrip with interim told of each interim
// response. The h1Transport calls it directly; net/http's transports
// through a ClientTrace in a copy of out. A ClientTrace in out's context
// costs an allocation per request (the context value), which this saves
// where the h1Transport serves.
func (p *Pool) RoundTripRelaying(out *http.Request, interim Interim) (*http.Response, *Target, error) {
	return p.roundTrip(out, interim)
}

func (p *Pool) roundTrip(out *http.Request, interim Interim) (*http.Response, *Target, error) {
	ctx := out.Context()
	path, raw := out.URL.Path, out.URL.RawPath
	attempts := 1
	if p.retries > 0 && replayable(out) {
		attempts += p.retries
	}
	var tried uint64
	var last *target
	var lastErr error
	for n := 1; ; n++ {
		i, ok := p.pick(tried)
		if !ok {
			if last != nil {
				return nil, &last.Target, lastErr
			}
			return nil, nil, p.unavailable()
		}
		t := &p.targets[i]
		tried |= 1 << i
		if n > 1 {
			// A trailer is filled in as the first attempt's body is read,
			// perhaps still, by that attempt's writer: a retry could not
			// share it safely, nor send it whole. Such a request is not
			// retried.
			if out.Trailer != nil {
				return nil, &last.Target, lastErr
			}
			if out.Body != nil && out.Body != http.NoBody {
				body, err := out.GetBody()
				if err != nil {
					return nil, &last.Target, lastErr
				}
				out.Body = body
			}
			out.URL.Path, out.URL.RawPath = path, raw
		}
		out.URL.Scheme, out.URL.Host = t.URL.Scheme, t.URL.Host
		if t.basePath != "" {
			out.URL.Path, out.URL.RawPath = t.join(out.URL)
		}
		span := startAttempt(p.tracer, out, t, n) // nil unless traced (trace.go)
		resp, err := send(t.rt, out, interim)
		if err == nil && !validStatus(resp.StatusCode) {
			// net/http's Transport takes any three digits (999).
			resp.Body.Close()
			err = invalidStatusError(resp.StatusCode)
		}
		if err == nil {
			if span != nil {
				endAttempt(span, resp, nil, 0)
			}
			p.succeeded(t)
			return resp, &t.Target, nil
		}
		f := classify(ctx, err) // once: the span says what the answer will
		if span != nil {
			endAttempt(span, nil, err, f)
		}
		ue := &upstreamError{failure: f, host: t.URL.Host, attempt: n, connect: p.connect, read: p.read, err: err}
		if f == failDeadline {
			// The client's own bound, however short: no fault of the
			// target's, and no time left to retry.
			var de *deadlineError
			if errors.As(context.Cause(ctx), &de) {
				ue.deadline = de.d
			}
			return nil, &t.Target, ue
		}
		if f == failCanceled || clientBodyFailed(out.Body) {
			// The client's side failed (it went away, stalled, or sent
			// too much): not the upstream's fault, not retried. One of
			// the two holds whichever the exchange saw first: net/http
			// cancels the context before a failed body read returns
			// (HTTP/1.x), or fails the read first (HTTP/2).
			return nil, &t.Target, ue
		}
		p.failed(t, f)
		if n >= attempts || !failures[f].retryable {
			return nil, &t.Target, ue
		}
		last, lastErr = t, ue
	}
}

// replayable reports whether out may be sent again: an idempotent method
// and a body that is absent or can be rewound.
func replayable(out *http.Request) bool {
	switch out.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return out.Body == nil || out.Body == http.NoBody || out.GetBody != nil
	}
	return false
}

// join returns u's path and raw path under t's base path, joined by one
// slash as httputil.ReverseProxy joins them: "/base" + "/x" is "/base/x".
// RawPath is set only when the base or u has an escaped form that differs
// from the decoded one (a %2F, for instance).
func (t *target) join(u *url.URL) (path, raw string) {
	path = joinSlash(t.basePath, u.Path)
	if t.baseRaw == "" && u.RawPath == "" {
		return path, ""
	}
	base := t.baseRaw
	if base == "" {
		base = t.basePath
	}
	return path, joinSlash(base, u.EscapedPath())
}

// joinSlash joins a base without a trailing slash to p.
func joinSlash(base, p string) string {
	if strings.HasPrefix(p, "/") {
		return base + p
	}
	return base + "/" + p
}

// send sends out through rt, with interim (if not nil) told of interim
// responses.
func send(rt roundTripper, out *http.Request, interim Interim) (*http.Response, error) {
	if interim == nil {
		return rt.RoundTrip(out)
	}
	if h1, ok := rt.(*h1Transport); ok {
		return h1.roundTrip(out, interim)
	}
	// net/http's transports call the hook on their own goroutine, which
	// may still run after RoundTrip returned (a header timeout, a
	// cancel): by then the caller answers the client itself, or tries
	// another target, and a late relay would write beside it. As
	// httputil.ReverseProxy does (Go issue 65123), a hook that comes too
	// late does nothing, and RoundTrip's return waits out one under way.
	g := &interimGuard{hook: interim}
	trace := &httptrace.ClientTrace{Got1xxResponse: g.relay}
	resp, err := rt.RoundTrip(out.WithContext(httptrace.WithClientTrace(out.Context(), trace)))
	g.mu.Lock()
	g.done = true
	g.mu.Unlock()
	return resp, err
}

// interimGuard passes interim responses to hook until done.
type interimGuard struct {
	mu   sync.Mutex
	done bool
	hook Interim
}

func (g *interimGuard) relay(code int, header textproto.MIMEHeader) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done {
		return nil
	}
	return g.hook(code, header)
}

// ClientBody is implemented by a request body that knows when reading the
// client failed (it stalled, went away, or sent more than allowed). A
// transfer that fails for that reason says nothing about the upstream, so
// it neither counts against the target's health nor is retried.
type ClientBody interface {
	ClientFailed() bool
}

func clientBodyFailed(body io.Reader) bool {
	cb, ok := body.(ClientBody)
	return ok && cb.ClientFailed()
}
