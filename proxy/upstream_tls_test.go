package proxy

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testpki"
)

// tlsUpstream starts a real TLS upstream presenting leaf; with clientCA it
// requires a client certificate that clientCA issued.
func tlsUpstream(t *testing.T, leaf *testpki.Leaf, clientCA *testpki.CA, maxVersion uint16) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who := "anonymous"
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			who = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "hello %s over %s", who, r.TLS.ServerName)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, MaxVersion: maxVersion}
	if clientCA != nil {
		srv.TLS.ClientAuth, srv.TLS.ClientCAs = tls.RequireAndVerifyClientCert, clientCA.Pool()
	}
	// The handshake errors the upstream sees are the test's, not news.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// tlsJSON is a service's tls member with min_version and verify as the
// admin API defaults them, then the fields given.
func tlsJSON(t *testing.T, fields map[string]any) string {
	t.Helper()
	m := map[string]any{"min_version": "1.2", "verify": true}
	for k, v := range fields {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return `,"connect_timeout_ms":2000,"tls":` + string(b)
}

// logBuffer is a slog handler's output, safe to read while requests run.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestUpstreamTLSIsVerifiedAsTheServiceSays: each of a service's TLS
// settings against a real TLS upstream with a test CA. A certificate
// that cannot be verified (untrusted, for another name, expired) is a 502
// that says only that; the log has the reason. A client certificate the
// upstream requires and does not get is a 502 that says so. The client
// key is in no log line.
func TestUpstreamTLSIsVerifiedAsTheServiceSays(t *testing.T) {
	ca := testpki.NewCA(t, "gatehouse test CA")
	other := testpki.NewCA(t, "a CA nobody trusts")
	clientCA := testpki.NewCA(t, "client CA")
	client := clientCA.Client(t, "gatehouse")
	strangerClient := other.Client(t, "stranger")

	const verifyFailed = "The upstream's TLS certificate could not be verified."
	const clientRefused = "The upstream refused the TLS connection: it did not accept the client certificate, or required one and none is configured."
	tests := []struct {
		desc     string
		upstream func(t *testing.T) *httptest.Server
		tls      map[string]any
		want     int
		wantBody string // the upstream's body, or the problem's detail
		wantLog  string // in the log of the failure
	}{
		{desc: "trusted through the bundle",
			upstream: func(t *testing.T) *httptest.Server { return tlsUpstream(t, ca.Server(t, "127.0.0.1"), nil, 0) },
			tls:      map[string]any{"ca_bundle": ca.PEM, "ca_only": true},
			want:     200, wantBody: "hello anonymous over "},
		{desc: "trusted through the bundle beside the system roots",
			upstream: func(t *testing.T) *httptest.Server { return tlsUpstream(t, ca.Server(t, "127.0.0.1"), nil, 0) },
			tls:      map[string]any{"ca_bundle": ca.PEM},
			want:     200, wantBody: "hello anonymous over "},
		{desc: "untrusted without the bundle",
			upstream: func(t *testing.T) *httptest.Server { return tlsUpstream(t, ca.Server(t, "127.0.0.1"), nil, 0) },
			tls:      map[string]any{},
			want:     502, wantBody: verifyFailed, wantLog: "certificate signed by unknown authority"},
		{desc: "signed by another CA than the bundle's",
			upstream: func(t *testing.T) *httptest.Server { return tlsUpstream(t, other.Server(t, "127.0.0.1"), nil, 0) },
			tls:      map[string]any{"ca_bundle": ca.PEM, "ca_only": true},
			want:     502, wantBody: verifyFailed, wantLog: "certificate signed by unknown authority"},
		{desc: "certificate for another name",
			upstream: func(t *testing.T) *httptest.Server { return tlsUpstream(t, ca.Server(t, "api.example"), nil, 0) },
			tls:      map[string]any{"ca_bundle": ca.PEM, "ca_only": true},
			want:     502, wantBody: verifyFailed, wantLog: "x509: cannot validate certificate for 127.0.0.1"},
		{desc: "expired certificate",
			upstream: func(t *testing.T) *httptest.Server { return tlsUpstream(t, ca.Expired(t, "127.0.0.1"), nil, 0) },
			tls:      map[string]any{"ca_bundle": ca.PEM, "ca_only": true},
			want:     502, wantBody: verifyFailed, wantLog: "certificate has expired"},
		{desc: "server_name names the certificate's host and is sent as SNI",
			upstream: func(t *testing.T) *httptest.Server { return tlsUpstream(t, ca.Server(t, "api.example"), nil, 0) },
			tls:      map[string]any{"ca_bundle": ca.PEM, "ca_only": true, "server_name": "api.example"},
			want:     200, wantBody: "hello anonymous over api.example"},
		{desc: "mutual TLS",
			upstream: func(t *testing.T) *httptest.Server { return tlsUpstream(t, ca.Server(t, "127.0.0.1"), clientCA, 0) },
			tls:      map[string]any{"ca_bundle": ca.PEM, "ca_only": true, "client_certificate": client.CertPEM, "client_key": client.KeyPEM},
			want:     200, wantBody: "hello gatehouse over "},
		{desc: "mutual TLS without a client certificate, TLS 1.3",
			upstream: func(t *testing.T) *httptest.Server { return tlsUpstream(t, ca.Server(t, "127.0.0.1"), clientCA, 0) },
			tls:      map[string]any{"ca_bundle": ca.PEM, "ca_only": true},
			want:     502, wantBody: clientRefused, wantLog: "certificate required"},
		{desc: "mutual TLS without a client certificate, TLS 1.2",
			upstream: func(t *testing.T) *httptest.Server {
				return tlsUpstream(t, ca.Server(t, "127.0.0.1"), clientCA, tls.VersionTLS12)
			},
			tls:  map[string]any{"ca_bundle": ca.PEM, "ca_only": true},
			want: 502, wantBody: clientRefused, wantLog: "handshake failure"},
		{desc: "mutual TLS with a client certificate the upstream does not trust",
			upstream: func(t *testing.T) *httptest.Server { return tlsUpstream(t, ca.Server(t, "127.0.0.1"), clientCA, 0) },
			tls:      map[string]any{"ca_bundle": ca.PEM, "ca_only": true, "client_certificate": strangerClient.CertPEM, "client_key": strangerClient.KeyPEM},
			want:     502, wantBody: clientRefused, wantLog: "unknown certificate authority"},
		{desc: "min_version 1.3 refuses an upstream that speaks 1.2 at most",
			upstream: func(t *testing.T) *httptest.Server {
				return tlsUpstream(t, ca.Server(t, "127.0.0.1"), nil, tls.VersionTLS12)
			},
			tls:  map[string]any{"ca_bundle": ca.PEM, "ca_only": true, "min_version": "1.3"},
			want: 502, wantBody: "The upstream could not be connected to.", wantLog: "protocol version"},
		{desc: "verify false accepts a certificate nobody trusts",
			upstream: func(t *testing.T) *httptest.Server {
				return tlsUpstream(t, other.Expired(t, "elsewhere.example"), nil, 0)
			},
			tls:  map[string]any{"verify": false},
			want: 200, wantBody: "hello anonymous over "},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			var logs logBuffer
			logger := slog.New(slog.NewTextHandler(&logs, nil))
			defer swapDefaultLogger(logger)()
			g := newGatewayWithOptions(t, Options{Logger: logger})
			up := tt.upstream(t)
			g.route(up.URL, tlsJSON(t, tt.tls), "")
			r := g.get("/x")
			if tt.want == 200 {
				if r.status != 200 || !strings.HasPrefix(string(r.body), tt.wantBody) {
					t.Fatalf("got %d %q; want 200 %q", r.status, r.body, tt.wantBody)
				}
			} else {
				doc := assertProblem(t, r, tt.want)
				if doc["detail"] != tt.wantBody {
					t.Errorf("got detail %q; want %q", doc["detail"], tt.wantBody)
				}
				if !strings.Contains(logs.String(), tt.wantLog) {
					t.Errorf("log lacks %q:\n%s", tt.wantLog, logs.String())
				}
			}
			if key, _ := tt.tls["client_key"].(string); key != "" {
				if strings.Contains(logs.String(), strings.TrimSpace(strings.Split(key, "\n")[1])) {
					t.Errorf("the log shows the client key:\n%s", logs.String())
				}
			}
		})
	}
}

// TestUpstreamTLSVerifyOffIsLoggedWhenApplied: a service that does not
// verify its upstream is logged, loudly, each time a revision with it is
// applied; a verifying one is not.
func TestUpstreamTLSVerifyOffIsLoggedWhenApplied(t *testing.T) {
	ca := testpki.NewCA(t, "gatehouse test CA")
	up := tlsUpstream(t, ca.Server(t, "127.0.0.1"), nil, 0)
	for _, tt := range []struct {
		desc    string
		tls     map[string]any
		wantLog bool
	}{
		{desc: "verify false", tls: map[string]any{"verify": false}, wantLog: true},
		{desc: "verify true", tls: map[string]any{"ca_bundle": ca.PEM}},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			var logs logBuffer
			g := newGatewayWithOptions(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			g.route(up.URL, tlsJSON(t, tt.tls), "")
			got := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), "tls.verify false") &&
				strings.Contains(logs.String(), "service_id=s")
			if got != tt.wantLog {
				t.Errorf("got warning logged %v; want %v:\n%s", got, tt.wantLog, logs.String())
			}
		})
	}
}

// TestUpstreamTLSHandshakeTimeoutIs504: an upstream that accepts the
// connection and never answers the TLS handshake is a 504 once the
// connect timeout passes.
func TestUpstreamTLSHandshakeTimeoutIs504(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() { close(done); l.Close(); conns.Wait() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() { // hold the connection open, silent, till the test ends
				defer conns.Done()
				<-done
				c.Close()
			}()
		}
	}()
	g := newGateway(t)
	g.route("https://"+l.Addr().String(), `,"connect_timeout_ms":300,"retries":0,"tls":{"min_version":"1.2","verify":true}`, "")
	doc := assertProblem(t, g.get("/x"), 504)
	if want := "The upstream could not be connected to within 300ms."; doc["detail"] != want {
		t.Errorf("got detail %q; want %q", doc["detail"], want)
	}
}

// TestServicesWithOtherTLSSettingsShareNoConnection: two services on one
// upstream address, one presenting a client certificate and one not, each
// get the answer their own settings earn, whichever goes first.
func TestServicesWithOtherTLSSettingsShareNoConnection(t *testing.T) {
	ca := testpki.NewCA(t, "gatehouse test CA")
	client := ca.Client(t, "gatehouse")
	// The upstream asks for a certificate but serves without one, saying
	// whom it served.
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who := "anonymous"
		if len(r.TLS.PeerCertificates) > 0 {
			who = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		io.WriteString(w, who)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Server(t, "127.0.0.1").TLS},
		ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: ca.Pool()}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)

	g := newGateway(t)
	mtls := tlsJSON(t, map[string]any{"ca_bundle": ca.PEM, "client_certificate": client.CertPEM, "client_key": client.KeyPEM})
	plain := tlsJSON(t, map[string]any{"ca_bundle": ca.PEM})
	g.apply(revision(t, 1,
		[]string{
			fmt.Sprintf(`{"id":"mtls","name":"mtls","url":%q%s}`, srv.URL, mtls),
			fmt.Sprintf(`{"id":"plain","name":"plain","url":%q%s}`, srv.URL, plain),
		},
		[]string{
			`{"id":"a","service_id":"mtls","paths":["/mtls"]}`,
			`{"id":"b","service_id":"plain","paths":["/plain"]}`,
		}))
	for i := 0; i < 3; i++ {
		for _, c := range []struct{ path, want string }{{"/mtls", "gatehouse"}, {"/plain", "anonymous"}} {
			if r := g.get(c.path); r.status != 200 || string(r.body) != c.want {
				t.Fatalf("GET %s (round %d): got %d %q; want 200 %q", c.path, i, r.status, r.body, c.want)
			}
		}
	}
}

// swapDefaultLogger makes l the default logger (the problem writer logs
// there) and returns what puts the old one back.
func swapDefaultLogger(l *slog.Logger) func() {
	old := slog.Default()
	slog.SetDefault(l)
	return func() { slog.SetDefault(old) }
}

// TestUpstreamCertificateFailureIsRetriedOnAnotherTarget: a handshake
// that fails on the certificate sent nothing, so an idempotent request
// goes on to another target, whose good certificate answers.
func TestUpstreamCertificateFailureIsRetriedOnAnotherTarget(t *testing.T) {
	ca := testpki.NewCA(t, "gatehouse test CA")
	good := tlsUpstream(t, ca.Server(t, "127.0.0.1"), nil, 0)
	expired := tlsUpstream(t, ca.Expired(t, "127.0.0.1"), nil, 0)
	g := newGateway(t)
	g.apply(revision(t, 1,
		[]string{fmt.Sprintf(`{"id":"s","name":"s","targets":[{"url":%q,"weight":1},{"url":%q,"weight":1}],"retries":1%s}`,
			expired.URL, good.URL, tlsJSON(t, map[string]any{"ca_bundle": ca.PEM, "ca_only": true}))},
		[]string{`{"id":"r","service_id":"s","paths":["/*"]}`}))
	for i := range 4 {
		if r := g.get("/x"); r.status != 200 {
			t.Fatalf("GET %d: got %d %s; want 200 from the good target", i, r.status, r.body)
		}
	}
}

// silentRefuser is a TLS 1.3 upstream that asks for a client certificate
// and, without one, resets the connection with its alert lost: the race
// a refusing upstream loses against a large request body, as the client
// sees it (its write or read fails on the reset before the alert is
// read), made certain. It counts the connections it took.
type silentRefuser struct {
	ln    net.Listener
	conns atomic.Int32
}

func newSilentRefuser(t *testing.T, leaf *testpki.Leaf) *silentRefuser {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &silentRefuser{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			go s.refuse(c, leaf)
		}
	}()
	return s
}

func (s *silentRefuser) refuse(c net.Conn, leaf *testpki.Leaf) {
	mc := &mutableConn{Conn: c}
	tc := tls.Server(mc, &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, MinVersion: tls.VersionTLS13,
		ClientAuth: tls.RequestClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				mc.mute.Store(true) // the alert to come is lost
				return errors.New("certificate required")
			}
			return nil
		}})
	if tc.Handshake() != nil {
		c.(*net.TCPConn).SetLinger(0)
	}
	c.Close()
}

// mutableConn drops what is written once mute is set.
type mutableConn struct {
	net.Conn
	mute atomic.Bool
}

func (c *mutableConn) Write(p []byte) (int, error) {
	if c.mute.Load() {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// TestUpstreamRefusingAMissingClientCertificateIsSaidSoEvenWhenItsAlertIsLost:
// a TLS 1.3 upstream that asked for a client certificate, got none, and
// broke the connection before its alert was read refused the missing
// certificate: the client hears so (not that the upstream closed the
// connection), the log has the TLS failure, and the request, though
// idempotent with a replayable body, is not retried: it would meet the
// same refusal.
func TestUpstreamRefusingAMissingClientCertificateIsSaidSoEvenWhenItsAlertIsLost(t *testing.T) {
	ca := testpki.NewCA(t, "gatehouse test CA")
	const clientRefused = "The upstream refused the TLS connection: it did not accept the client certificate, or required one and none is configured."
	tests := []struct {
		desc   string
		method string
		body   int
	}{
		{desc: "GET without a body", method: "GET"},
		{desc: "PUT with a 3 MB body", method: "PUT", body: 3 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			var logs logBuffer
			logger := slog.New(slog.NewTextHandler(&logs, nil))
			defer swapDefaultLogger(logger)()
			g := newGatewayWithOptions(t, Options{Logger: logger})
			up := newSilentRefuser(t, ca.Server(t, "127.0.0.1"))
			g.route("https://"+up.ln.Addr().String(), `,"retries":2`+tlsJSON(t, map[string]any{"ca_bundle": ca.PEM, "ca_only": true}), "")
			var body io.Reader
			if tt.body > 0 {
				body = bytes.NewReader(make([]byte, tt.body))
			}
			r := g.do(tt.method, "/x", body)
			doc := assertProblem(t, r, 502)
			if doc["detail"] != clientRefused {
				t.Errorf("got detail %q; want %q", doc["detail"], clientRefused)
			}
			if !strings.Contains(logs.String(), "client certificate") {
				t.Errorf("log lacks the TLS failure:\n%s", logs.String())
			}
			if n := up.conns.Load(); n != 1 {
				t.Errorf("the upstream was called %d times; want 1 (no retry)", n)
			}
		})
	}
}
