// Package egress is gatehouse's egress listener (--egress-addr): a forward
// proxy that internal services send their outbound calls through. It takes
// absolute-form http:// requests, which it forwards, and CONNECT requests,
// which it answers with a tunnel (how https:// destinations are reached:
// TLS stays end to end, the proxy sees only host and port).
//
// Who may use it and where to are the active revision's egress policies
// (gatehouse.EgressConfig): a consumer authenticates with its basic-auth
// credential in Proxy-Authorization, and a request goes through if some
// egress policy allows both that consumer and the destination's host and
// port. Checks run cheapest first, and before any connection is made or
// any of the body is read:
//
//	method and request target  400 (501 for a method nobody knows)
//	a revision applied         503
//	Proxy-Authorization        407 with Proxy-Authenticate
//	consumer and destination   403 (no egress policy at all: 403 too)
//	resolving and connecting   403 (the address guard below), 502 (refused,
//	                           unresolvable), 504 (not connected in time)
//	the destination's answer   504 without response headers in time, 502
//	                           for a reset or an answer that is not HTTP
//
// Host rules match a host name exactly or, as "*.example.com", any name
// below example.com (not example.com itself). A destination given as an IP
// literal matches only a rule that lists that exact address; a wildcard
// never matches an address, and an IPv6 literal never matches (rules
// cannot hold one).
//
// Server-side request forgery: a destination reached through a wildcard
// rule, or a name that merely resolves there, must not be this machine.
// Addresses that are loopback, unspecified, link-local, private or in
// the shared CGNAT space (cloud metadata endpoints live there), and the
// addresses of the gateway's own listeners (Options.Self), are reached
// only when a rule names the destination exactly (the host name, or the
// IP literal). The check is made on the
// addresses actually dialed, after resolution, so DNS cannot swap them in
// between.
package egress

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/tunnel"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/problem"
	"github.com/gatehouse/gatehouse/proxy/forward"
)

// Options configures the egress proxy. Zero values take the defaults given.
type Options struct {
	// DialTimeout bounds resolving a destination and connecting to it;
	// past it the answer is 504. Default 10s.
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for an http destination's
	// response head once the request is sent; past it the answer is 504.
	// Default 60s. Tunnels have no such bound: what flows through them is
	// the client's business.
	ResponseHeaderTimeout time.Duration
	// Self lists the listen addresses of this gateway's listeners (admin,
	// proxy, egress), as given to their flags ("127.0.0.1:9080", ":8080").
	// A host left out or unspecified stands for every address of this
	// machine's interfaces on that port. Port 0 entries are ignored.
	Self []string
	// Logger receives one line per egress request and the proxy's own
	// events; nil means slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.DialTimeout == 0 {
		o.DialTimeout = 10 * time.Second
	}
	if o.ResponseHeaderTimeout == 0 {
		o.ResponseHeaderTimeout = 60 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Handler is the egress proxy's HTTP handler. Serve it through
// internal/serve on a listener of its own, over HTTP/1.1: CONNECT tunnels
// take over the connection.
type Handler struct {
	opts     Options
	policies func() *policy.Set
	// rules caches the allow lists compiled from the latest policy.Set.
	rules atomic.Pointer[ruleSet]
	// transports and forwarders are indexed by whether the request was
	// permitted by a rule naming its host exactly: a kept-alive
	// connection is reused only by requests the same kind of rule allowed,
	// so one dialed to a guarded address under an exact rule never serves
	// a request only a wildcard allows.
	transports [2]*http.Transport
	forwarders [2]*httputil.ReverseProxy
	dialer     net.Dialer
	// lookup resolves a destination's name; tests replace it.
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	self   selfAddrs

	// tunnels are the open CONNECT tunnels and upgraded connections,
	// which Close ends.
	tunnels tunnel.Set
}

// New returns an egress proxy that enforces the policy set policies
// returns on each request (nil: no revision yet, every request 503).
// proxy.Handler.Policies is that function on a data node. It fails if an
// Options.Self entry is not a host:port.
func New(policies func() *policy.Set, opts Options) (*Handler, error) {
	opts.setDefaults()
	self, err := parseSelf(opts.Self)
	if err != nil {
		return nil, err
	}
	h := &Handler{opts: opts, policies: policies, self: self,
		dialer: net.Dialer{KeepAlive: 30 * time.Second}}
	h.lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
		return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	}
	for i := range h.transports {
		h.transports[i] = &http.Transport{
			// Proxy stays nil: the environment's HTTP_PROXY must not send
			// egress somewhere else.
			DialContext:           h.dialPermitted,
			ResponseHeaderTimeout: opts.ResponseHeaderTimeout,
			ExpectContinueTimeout: time.Second,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			// Bodies pass through as the destination sent them.
			DisableCompression: true,
		}
		h.forwarders[i] = &httputil.ReverseProxy{
			Rewrite: rewrite,
			// A destination's "Connection: close, X-Secret" names fields
			// that net/http would otherwise let through.
			Transport:      forward.DropConnectionNamed(h.transports[i]),
			ModifyResponse: modifyResponse,
			ErrorHandler:   h.forwardFailed,
			ErrorLog:       slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
		}
	}
	return h, nil
}

// Close ends every open tunnel and drops idle connections to
// destinations. Call it once the egress listener has drained (or its
// drain timed out): tunnels are hijacked connections, which an
// http.Server's Shutdown neither waits for nor closes.
func (h *Handler) Close() {
	h.tunnels.Close()
	h.closeIdle()
}

// Tunnels are the CONNECT tunnels and upgraded connections open on the
// egress listener: a shutdown waits until they are its only requests,
// then cuts them (serve.Server.Drain).
func (h *Handler) Tunnels() *tunnel.Set { return &h.tunnels }

func (h *Handler) closeIdle() {
	for _, t := range h.transports {
		t.CloseIdleConnections()
	}
}

// pool is the index of the transport for a request permitted exactly or not.
func pool(exact bool) int {
	if exact {
		return 1
	}
	return 0
}

// exchange is one egress request, as its log line tells it.
type exchange struct {
	consumer    string
	destination string
	status      int
	// up and down count a tunnel's bytes, client to destination and back.
	up, down int64
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ex := &exchange{}
	completed := false
	defer func() {
		if !completed {
			ex.status = 0 // aborted: the client went away, or the response broke off
		}
		h.logExchange(r, ex, start)
	}()
	h.serve(w, r, ex)
	completed = true
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, ex *exchange) {
	d, err := target(r)
	if err != nil {
		ex.status = h.fail(w, r, err)
		return
	}
	ex.destination = d.String()
	set := h.policies()
	if set == nil {
		ex.status = h.fail(w, r, gatehouse.Errorf(gatehouse.EUNAVAILABLE, "The gateway has no configuration yet."))
		return
	}
	consumer, err := authenticate(set.Consumers, r.Header)
	if err != nil {
		ex.status = h.fail(w, r, err)
		return
	}
	ex.consumer = consumer.Name
	exact, err := h.ruleSet(set).allow(consumer, d)
	if err != nil {
		ex.status = h.fail(w, r, err)
		return
	}
	if r.Method == http.MethodConnect {
		h.tunnel(w, r, d, exact, ex)
		return
	}
	ctx := context.WithValue(r.Context(), permitKey{}, &permit{d: d, exact: exact})
	rec := &recorder{ResponseWriter: w, h: h}
	h.forwarders[pool(exact)].ServeHTTP(rec, r.WithContext(ctx))
	ex.status = rec.status
}

// ruleSet returns the allow lists of set, compiling them once per set.
// A new set is a new revision: idle connections opened under the old
// one's rules are dropped with it.
func (h *Handler) ruleSet(set *policy.Set) *ruleSet {
	if rs := h.rules.Load(); rs != nil && rs.set == set {
		return rs
	}
	rs := compileRules(set)
	if old := h.rules.Swap(rs); old != nil && old.set != set {
		h.closeIdle()
	}
	return rs
}

// fail answers err as a problem and returns the status sent.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) int {
	problem.WriteNegotiated(w, r, err)
	return problem.Status(gatehouse.ErrorCode(err))
}

func (h *Handler) logExchange(r *http.Request, ex *exchange, start time.Time) {
	if !h.opts.Logger.Enabled(r.Context(), slog.LevelInfo) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", problem.RequestID(r)),
		slog.String("method", r.Method),
		slog.String("destination", ex.destination),
		slog.String("consumer", ex.consumer),
		slog.Int("status", ex.status),
		slog.Duration("duration", time.Since(start)),
	}
	if r.Method == http.MethodConnect && ex.status == http.StatusOK {
		attrs = append(attrs, slog.Int64("bytes_up", ex.up), slog.Int64("bytes_down", ex.down))
	}
	h.opts.Logger.LogAttrs(r.Context(), slog.LevelInfo, "egress", attrs...)
}

// target checks the request's method and target and returns where it
// wants to go.
func target(r *http.Request) (destination, error) {
	if r.Method == http.MethodConnect {
		if r.ProtoMajor != 1 {
			return destination{}, gatehouse.Errorf(gatehouse.EVERSION, "CONNECT tunnels need HTTP/1.1 on this listener.")
		}
		// Authority form only: net/http leaves a path-form target
		// ("CONNECT /x") in URL.Path, with no host.
		if r.URL.Host == "" || r.URL.Path != "" {
			return destination{}, gatehouse.Errorf(gatehouse.EINVALID, "A CONNECT target must be host:port.")
		}
		host, port, err := net.SplitHostPort(r.URL.Host)
		if err != nil || host == "" {
			return destination{}, gatehouse.Errorf(gatehouse.EINVALID, "A CONNECT target must be host:port.")
		}
		return newDestination(host, port)
	}
	if !gatehouse.Implemented(r.Method) {
		return destination{}, gatehouse.Errorf(gatehouse.ENOTIMPLEMENTED, "The method %s is not implemented.", r.Method)
	}
	switch {
	case r.URL.Scheme == "":
		return destination{}, gatehouse.Errorf(gatehouse.EINVALID, "This is a forward proxy: send absolute-form requests or CONNECT.")
	case strings.EqualFold(r.URL.Scheme, "https"):
		return destination{}, gatehouse.Errorf(gatehouse.EINVALID,
			"This proxy does not originate TLS: reach https:// destinations through a CONNECT tunnel.")
	case !strings.EqualFold(r.URL.Scheme, "http"):
		return destination{}, gatehouse.Errorf(gatehouse.EINVALID, "Only http:// destinations are forwarded (https:// through CONNECT).")
	case r.URL.User != nil:
		// RFC 9110 §4.2.4: userinfo in an http URI is an error.
		return destination{}, gatehouse.Errorf(gatehouse.EINVALID, "The request target must not carry userinfo.")
	case r.URL.Hostname() == "":
		return destination{}, gatehouse.Errorf(gatehouse.EINVALID, "The request target has no host.")
	}
	port := r.URL.Port()
	if port == "" {
		port = "80"
	}
	return newDestination(r.URL.Hostname(), port)
}

// authenticate returns the consumer whose basic-auth credential is in
// Proxy-Authorization, or the 407 that says what is wrong.
func authenticate(cs *policy.Consumers, h http.Header) (*policy.Consumer, error) {
	values := h["Proxy-Authorization"]
	if len(values) == 0 {
		return nil, gatehouse.Errorf(gatehouse.EPROXYAUTH, "The egress proxy needs Basic credentials in Proxy-Authorization.")
	}
	user, password, ok := parseBasic(values)
	if !ok {
		return nil, gatehouse.Errorf(gatehouse.EPROXYAUTH, "Proxy-Authorization does not hold Basic credentials.")
	}
	var c *policy.Consumer
	if cs != nil { // nil for the empty revision: nobody can authenticate
		c = cs.ByBasic(user, password)
	}
	if c == nil {
		return nil, gatehouse.Errorf(gatehouse.EPROXYAUTH, "The proxy credentials are not valid.")
	}
	return c, nil
}

// parseBasic decodes a single Basic credential (RFC 7617).
func parseBasic(values []string) (user, password string, ok bool) {
	if len(values) != 1 {
		return "", "", false
	}
	scheme, token, found := strings.Cut(strings.TrimSpace(values[0]), " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(token))
	if err != nil {
		return "", "", false
	}
	return strings.Cut(string(b), ":")
}

// rewrite makes the outbound request: ReverseProxy has removed the
// hop-by-hop fields (Proxy-Authorization and Proxy-Connection among them,
// and those Connection names) and the client's Forwarded and
// X-Forwarded-* fields; none are added back, so a destination outside
// learns no internal address. The URL stays the client's absolute one,
// which the transport sends in origin form.
func rewrite(pr *httputil.ProxyRequest) {
	httpx.AddVia(pr.Out.Header, pr.In.ProtoMajor, pr.In.ProtoMinor)
}

// modifyResponse adds this hop to the response's Via, and drops an
// X-Request-Id the destination merely echoed: the client has it already
// (internal/serve set it), and ReverseProxy would add it a second time.
func modifyResponse(resp *http.Response) error {
	httpx.AddVia(resp.Header, resp.ProtoMajor, resp.ProtoMinor)
	if id := resp.Header["X-Request-Id"]; len(id) == 1 && resp.Request != nil && id[0] == problem.RequestID(resp.Request) {
		delete(resp.Header, "X-Request-Id")
	}
	return nil
}

// forwardFailed is the ReverseProxy's error handler: the one place an
// http destination's failure becomes a status.
func (h *Handler) forwardFailed(w http.ResponseWriter, r *http.Request, err error) {
	p, _ := r.Context().Value(permitKey{}).(*permit)
	var d destination
	if p != nil {
		d = p.d
	}
	gerr, gone := h.classify(r.Context(), d, err)
	if gone {
		// Nobody to answer; without a response net/http would send an
		// empty 200.
		panic(http.ErrAbortHandler)
	}
	h.fail(w, r, gerr)
}

// recorder remembers the status sent, for the log line.
type recorder struct {
	http.ResponseWriter
	status int
	h      *Handler
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

// Hijack serves an upgrade (a 101 from the destination, which
// ReverseProxy writes on the hijacked connection): the connection's
// deadlines are cleared as tunnel does, and Close ends it like a tunnel.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	r.status = http.StatusSwitchingProtocols
	c.SetDeadline(time.Time{})
	tc := &trackedConn{Conn: c, h: r.h}
	if !r.h.tunnels.Add(tc) {
		c.Close()
		return nil, nil, errClosed
	}
	return tc, brw, nil
}

var errClosed = errors.New("egress: the proxy is closed")

// trackedConn is an upgraded connection that leaves the Handler's
// tracking when ReverseProxy closes it.
type trackedConn struct {
	net.Conn
	h    *Handler
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.h.tunnels.Remove(c) })
	return c.Conn.Close()
}

// Unwrap lets http.ResponseController reach the writer beneath (flushes).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
