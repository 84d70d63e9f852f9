package forward

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Transport tuning shared by every upstream.
const (
	maxIdleConnsPerHost = 1024
	idleConnTimeout     = 90 * time.Second
	tcpKeepAlive        = 30 * time.Second
	// expectContinueTimeout is how long a request with "Expect:
	// 100-continue" waits for the upstream's 100 before its body is sent
	// anyway.
	expectContinueTimeout = time.Second
	// h2PingAfter and h2PingTimeout check an idle HTTP/2 connection's
	// upstream is still there (newH2Transport).
	h2PingAfter   = 30 * time.Second
	h2PingTimeout = 15 * time.Second
)

// Transports shares one transport per (scheme, host, connect timeout,
// read timeout, TLS settings) across pools, so a redeploy that keeps a
// service's settings keeps its kept-alive connections. A transport lives while some
// pool holds it: Pool.Close releases it, and the last release closes its
// idle connections and forgets it.
//
// A service's transports speak HTTP/1.1 by default, to http and https
// upstreams alike (as nginx does): upgrades and streaming behave the same
// on both, and failures have one set of shapes to classify. An http
// upstream gets an h1Transport, which does the exchange on the caller's
// goroutine; an https one gets a tuned *http.Transport (see newTransport
// for why). A service whose protocol is http2 (gRPC's) gets an
// *http.Transport speaking HTTP/2 only (newH2Transport).
type Transports struct {
	mu    sync.Mutex
	m     map[transportKey]*shared
	roots *x509.CertPool // trusted CAs for https upstreams; nil: the system's. Tests set it.
}

// transportKey is what a transport is shared by. tls is the digest of
// the service's TLS settings (TLS.digest; "" for the defaults and for
// http), so that services whose TLS settings differ in any way (a CA, a
// client certificate, verification) never share a connection.
type transportKey struct {
	scheme, host  string
	connect, read time.Duration
	tls           string
	h2            bool // HTTP/2 only (Config.HTTP2)
}

type shared struct {
	t    roundTripper
	refs int
}

// roundTripper is what a target sends through: *h1Transport or
// netHTTPTransport.
type roundTripper interface {
	http.RoundTripper
	CloseIdleConnections()
}

var (
	_ roundTripper = (*h1Transport)(nil)
	_ roundTripper = netHTTPTransport{}
	_ roundTripper = (*http.Transport)(nil)
)

// NewTransports returns an empty set.
func NewTransports() *Transports {
	return &Transports{m: make(map[transportKey]*shared)}
}

// CloseIdle closes every idle upstream connection (on shutdown, say).
func (ts *Transports) CloseIdle() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, s := range ts.m {
		s.t.CloseIdleConnections()
	}
}

// acquire returns the transport for k, creating it if no pool holds one;
// t is the TLS settings whose digest is k.tls.
func (ts *Transports) acquire(k transportKey, t *TLS) roundTripper {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	s := ts.m[k]
	if s == nil {
		s = &shared{t: newTransport(k, t, ts.roots)}
		ts.m[k] = s
	}
	s.refs++
	return s.t
}

// release drops one hold on k's transport.
func (ts *Transports) release(k transportKey) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	s := ts.m[k]
	if s == nil {
		return
	}
	if s.refs--; s.refs == 0 {
		delete(ts.m, k)
		s.t.CloseIdleConnections()
	}
}

// newTransport builds the tuned transport for k: an h1Transport for an
// http upstream, an *http.Transport for https (and anything else, which
// it refuses). https stays on net/http because the h1Transport's check of
// an idle connection (its peeker) peeks at the socket, where TLS records
// the server may send unasked (session tickets, alerts) are not a sign of
// a dead connection; and net/http already does TLS well. Where a peeker
// cannot peek (canPeek), http goes to net/http too: an idle connection
// the h1Transport cannot check is one it may not reuse.
func newTransport(k transportKey, t *TLS, roots *x509.CertPool) roundTripper {
	if k.h2 {
		return newH2Transport(k, t, roots)
	}
	if k.scheme == "http" && canPeek {
		return newH1Transport(k)
	}
	return newNetHTTPTransport(k, t, roots)
}

// dialFunc dials with the connect timeout and TCP keep-alive. Failures
// come back wrapped in *dialError, so that classify knows the request
// never reached the upstream.
func dialFunc(connect time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: connect, KeepAlive: tcpKeepAlive}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, &dialError{err: err}
		}
		return c, nil
	}
}

// newNetHTTPTransport builds the tuned *http.Transport for k, speaking
// TLS as t says (nil: the defaults). Dial and TLS handshake failures come
// back wrapped in *dialError.
func newNetHTTPTransport(k transportKey, t *TLS, roots *x509.CertPool) netHTTPTransport {
	dial := dialFunc(k.connect)
	tr := &http.Transport{
		Proxy:                 nil, // never from the environment: upstreams are addressed directly
		DialContext:           dial,
		MaxIdleConns:          0, // no global limit; per host below
		MaxIdleConnsPerHost:   maxIdleConnsPerHost,
		IdleConnTimeout:       idleConnTimeout,
		ResponseHeaderTimeout: k.read,
		ExpectContinueTimeout: expectContinueTimeout,
		DisableCompression:    true, // pass bodies through as the upstream encoded them
		ForceAttemptHTTP2:     false,
	}
	if k.scheme == "https" {
		tr.DialTLSContext = dialTLSFunc(k, t, roots, dial)
	}
	return recordHeads(tr)
}

// dialTLSFunc dials TLS to k's targets as t says. Dialling TLS ourselves
// bounds the handshake by the connect timeout and marks its failures as
// dial failures (502, retryable) rather than a timeout the transport
// would report like a slow answer. NextProtos offers HTTP/1.1 only, or
// h2 only for an HTTP/2 transport, whose upstream must select it.
func dialTLSFunc(k transportKey, t *TLS, roots *x509.CertPool, dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	cfg, cfgErr := t.config((&url.URL{Host: k.host}).Hostname(), roots)
	if cfgErr == nil && k.h2 {
		cfg.NextProtos = []string{"h2"}
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if cfgErr != nil {
			return nil, &dialError{err: cfgErr, tls: true}
		}
		ctx, cancel := context.WithTimeout(ctx, k.connect)
		defer cancel()
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		hc, asked := noticeCertificateRequest(cfg)
		tc := tls.Client(c, hc)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			if n, ok := receivedAlert(err); ok && n == alertNoApplicationProtocol && k.h2 {
				err = &noHTTP2Error{err: err}
			}
			return nil, &dialError{err: err, tls: true, certAsked: *asked}
		}
		if k.h2 {
			if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
				tc.Close()
				return nil, &dialError{err: &noHTTP2Error{proto: p}, tls: true}
			}
			// net/http speaks HTTP/2 only on a *tls.Conn itself: no
			// certlessConn here (a TLS 1.3 refusal of a missing client
			// certificate is a reset, 502, all the same).
			return tc, nil
		}
		if *asked && len(hc.Certificates) == 0 {
			return &certlessConn{Conn: tc}, nil
		}
		return tc, nil
	}
}

// newH2Transport builds the *http.Transport for a service whose protocol
// is http2: HTTP/2 only, with prior knowledge (h2c) to an http target,
// over TLS with ALPN h2 to an https one (dialTLSFunc). Its connections
// are not headRecorders: HTTP/2 has no Connection field to restore, and
// net/http speaks HTTP/2 only on the *tls.Conn a dialler returns.
func newH2Transport(k transportKey, t *TLS, roots *x509.CertPool) *http.Transport {
	dial := dialFunc(k.connect)
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dial,
		MaxIdleConnsPerHost:   maxIdleConnsPerHost,
		IdleConnTimeout:       idleConnTimeout,
		ResponseHeaderTimeout: k.read,
		ExpectContinueTimeout: expectContinueTimeout,
		DisableCompression:    true,
		Protocols:             new(http.Protocols),
		// One connection carries many streams, long-lived ones too: a
		// connection silent for h2PingAfter is pinged, and closed if the
		// ping goes unanswered for h2PingTimeout, so that a vanished
		// upstream fails its streams rather than leaving them hanging.
		HTTP2: &http.HTTP2Config{SendPingTimeout: h2PingAfter, PingTimeout: h2PingTimeout},
	}
	if k.scheme == "https" {
		tr.Protocols.SetHTTP2(true)
		tr.DialTLSContext = dialTLSFunc(k, t, roots, dial)
	} else {
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	return tr
}

// noHTTP2Error is an upstream that did not select h2 in the TLS handshake
// of a service whose protocol is http2: it selected proto instead, or
// refused the handshake for want of a protocol it speaks (err). Nothing
// was sent.
type noHTTP2Error struct {
	proto string
	err   error
}

func (e *noHTTP2Error) Error() string {
	switch {
	case e.err != nil:
		return "h2 was required: " + e.err.Error()
	case e.proto == "":
		return "the upstream selected no application protocol; h2 was required"
	}
	return "the upstream selected " + e.proto + "; h2 was required"
}

func (e *noHTTP2Error) Unwrap() error { return e.err }
