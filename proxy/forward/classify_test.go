package forward

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/problem"
)

// timeoutErr is a net.Error that timed out.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// tlsAlert has the shape of crypto/tls's unexported alert: a uint8.
type tlsAlert uint8

func (a tlsAlert) Error() string { return fmt.Sprintf("tls: alert %d", uint8(a)) }

// remoteAlert is an alert received from the upstream, as crypto/tls
// reports it.
func remoteAlert(n uint8) error { return &net.OpError{Op: "remote error", Err: tlsAlert(n)} }

// TestClassify pins the one table from RoundTrip error to the contract.
func TestClassify(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel2()
	live := context.Background()
	dialRefused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	dialTimeout := &net.OpError{Op: "dial", Net: "tcp", Err: timeoutErr{}}
	readReset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}

	tests := []struct {
		desc     string
		ctx      context.Context
		err      error
		wantGone bool
		wantCode gatehouse.Code // "" with wantGone or a nil err
		wantMsg  string         // substring
	}{
		{desc: "no error", ctx: live, err: nil},
		{desc: "client went away", ctx: canceled, err: errors.New("net/http: request canceled"), wantGone: true},
		{desc: "client went away during a dial failure", ctx: canceled, err: &dialError{err: dialRefused}, wantGone: true},
		{desc: "canceled from above with the client still there", ctx: live, err: fmt.Errorf("x: %w", context.Canceled), wantCode: gatehouse.EBADGATEWAY, wantMsg: "cut short"},
		{desc: "no healthy target", ctx: live, err: &noTargetError{retryAfter: 3 * time.Second}, wantCode: gatehouse.EUNAVAILABLE, wantMsg: "No healthy upstream target"},
		{desc: "connection refused", ctx: live, err: &dialError{err: dialRefused}, wantCode: gatehouse.EBADGATEWAY, wantMsg: "refused the connection"},
		{desc: "connection refused, bare OpError", ctx: live, err: dialRefused, wantCode: gatehouse.EBADGATEWAY, wantMsg: "refused the connection"},
		{desc: "dial timeout is 504, as nginx and Caddy answer", ctx: live, err: &upstreamError{failure: failConnectTimeout, connect: 5 * time.Second, err: &dialError{err: dialTimeout}}, wantCode: gatehouse.EGATEWAYTIMEOUT, wantMsg: "could not be connected to within 5s"},
		{desc: "dial timeout, bare", ctx: live, err: &dialError{err: dialTimeout}, wantCode: gatehouse.EGATEWAYTIMEOUT, wantMsg: "could not be connected to in time"},
		{desc: "TLS handshake timeout", ctx: live, err: &dialError{tls: true, err: context.DeadlineExceeded}, wantCode: gatehouse.EGATEWAYTIMEOUT, wantMsg: "could not be connected to"},
		{desc: "host name not found", ctx: live, err: &dialError{err: &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}}, wantCode: gatehouse.EBADGATEWAY, wantMsg: "could not be resolved"},
		{desc: "TLS handshake failure", ctx: live, err: &dialError{tls: true, err: remoteAlert(70)}, wantCode: gatehouse.EBADGATEWAY, wantMsg: "could not be connected to"},
		{desc: "upstream certificate untrusted", ctx: live, err: &dialError{tls: true, err: &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}}, wantCode: gatehouse.EBADGATEWAY, wantMsg: "The upstream's TLS certificate could not be verified."},
		{desc: "upstream certificate for another name", ctx: live, err: &dialError{tls: true, err: x509.HostnameError{Host: "a.example"}}, wantCode: gatehouse.EBADGATEWAY, wantMsg: "The upstream's TLS certificate could not be verified."},
		{desc: "upstream certificate expired", ctx: live, err: &dialError{tls: true, err: x509.CertificateInvalidError{Reason: x509.Expired}}, wantCode: gatehouse.EBADGATEWAY, wantMsg: "The upstream's TLS certificate could not be verified."},
		{desc: "client certificate refused after the handshake (TLS 1.3)", ctx: live, err: fmt.Errorf("read: %w", remoteAlert(116)), wantCode: gatehouse.EBADGATEWAY, wantMsg: "did not accept the client certificate"},
		{desc: "client certificate refused in the handshake", ctx: live, err: &dialError{tls: true, err: remoteAlert(42)}, wantCode: gatehouse.EBADGATEWAY, wantMsg: "did not accept the client certificate"},
		{desc: "handshake failure after a certificate request (TLS 1.2)", ctx: live, err: &dialError{tls: true, certAsked: true, err: remoteAlert(40)}, wantCode: gatehouse.EBADGATEWAY, wantMsg: "did not accept the client certificate"},
		{desc: "handshake failure without a certificate request", ctx: live, err: &dialError{tls: true, err: remoteAlert(40)}, wantCode: gatehouse.EBADGATEWAY, wantMsg: "could not be connected to"},
		{desc: "reset of the first exchange after a certificate request answered with none (TLS 1.3, alert lost)", ctx: live, err: &certlessError{err: readReset}, wantCode: gatehouse.EBADGATEWAY, wantMsg: "did not accept the client certificate"},
		{desc: "write to a closed connection after a certificate request answered with none", ctx: live, err: &certlessError{err: fmt.Errorf("write: %w", net.ErrClosed)}, wantCode: gatehouse.EBADGATEWAY, wantMsg: "did not accept the client certificate"},
		{desc: "read timeout after a certificate request answered with none", ctx: live, err: &certlessError{err: timeoutErr{}}, wantCode: gatehouse.EGATEWAYTIMEOUT, wantMsg: "did not answer in time"},
		{desc: "reset before the response", ctx: live, err: readReset, wantCode: gatehouse.EBADGATEWAY, wantMsg: "closed the connection without answering"},
		{desc: "closed before the response", ctx: live, err: fmt.Errorf("net/http: Transport failed to read from server: %w", io.EOF), wantCode: gatehouse.EBADGATEWAY, wantMsg: "closed the connection without answering"},
		{desc: "broken pipe writing the request", ctx: live, err: &net.OpError{Op: "write", Err: os.NewSyscallError("write", syscall.EPIPE)}, wantCode: gatehouse.EBADGATEWAY, wantMsg: "closed the connection"},
		{desc: "truncated response", ctx: live, err: io.ErrUnexpectedEOF, wantCode: gatehouse.EBADGATEWAY, wantMsg: "valid HTTP"},
		{desc: "malformed response", ctx: live, err: errors.New(`malformed HTTP response "not http"`), wantCode: gatehouse.EBADGATEWAY, wantMsg: "valid HTTP"},
		{desc: "read timeout", ctx: live, err: &upstreamError{failure: failTimeout, read: 2 * time.Second, err: timeoutErr{}}, wantCode: gatehouse.EGATEWAYTIMEOUT, wantMsg: "did not answer within 2s"},
		{desc: "net.Error timeout", ctx: live, err: timeoutErr{}, wantCode: gatehouse.EGATEWAYTIMEOUT, wantMsg: "did not answer in time"},
		{desc: "deadline exceeded", ctx: live, err: context.DeadlineExceeded, wantCode: gatehouse.EGATEWAYTIMEOUT, wantMsg: "did not answer in time"},
		{desc: "the caller's deadline is not named as the read timeout", ctx: expired, err: &upstreamError{failure: failTimeout, read: 2 * time.Second, err: context.DeadlineExceeded}, wantCode: gatehouse.EGATEWAYTIMEOUT, wantMsg: "did not answer in time"},
		{desc: "gatehouse error passes through", ctx: live, err: gatehouse.Errorf(gatehouse.ETOOLARGE, "too big"), wantCode: gatehouse.ETOOLARGE, wantMsg: "too big"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			gerr, gone := Classify(tt.ctx, tt.err)
			if gone != tt.wantGone {
				t.Fatalf("got clientGone %v; want %v", gone, tt.wantGone)
			}
			if tt.wantCode == "" {
				if gerr != nil {
					t.Fatalf("got %v; want nil", gerr)
				}
				return
			}
			var ge *gatehouse.Error
			if !errors.As(gerr, &ge) {
				t.Fatalf("got %T %v; want a *gatehouse.Error", gerr, gerr)
			}
			if ge.Code != tt.wantCode {
				t.Errorf("got code %s; want %s", ge.Code, tt.wantCode)
			}
			if !strings.Contains(ge.Message, tt.wantMsg) {
				t.Errorf("got message %q; want it to contain %q", ge.Message, tt.wantMsg)
			}
			messageIsClientSafe(t, ge.Message)
			if !errors.Is(gerr, tt.err) {
				t.Errorf("the classified error does not wrap its cause for the log")
			}
		})
	}
}

// TestEveryFailureHasACompleteRow proves that no failure lacks a part of
// its row in failures: a failure added without one would otherwise trace
// as "", note no cause in a target's health, or panic on its message.
func TestEveryFailureHasACompleteRow(t *testing.T) {
	names, causes := map[string]failure{}, map[string]failure{}
	for f := range failureCount {
		row := failures[f]
		if row.name == "" || row.cause == "" || row.message == nil {
			t.Errorf("failure %d: row %+v lacks a name, a cause or a message", f, row)
			continue
		}
		// Names and causes tell failures apart: no two share one.
		if g, ok := names[row.name]; ok {
			t.Errorf("failures %d and %d are both named %q", g, f, row.name)
		}
		if g, ok := causes[row.cause]; ok {
			t.Errorf("failures %d and %d both have the cause %q", g, f, row.cause)
		}
		names[row.name], causes[row.cause] = f, f
		// An upstream that failed is a 502 or a 504 (CONTRACT.md), never
		// the 500 a missing code would be.
		if s := problem.Status(row.code); s != http.StatusBadGateway && s != http.StatusGatewayTimeout {
			t.Errorf("failure %d (%s): code %q is status %d; want 502 or 504", f, row.name, row.code, s)
		}
		for _, p := range []Peer{{Name: "The upstream"}, {Name: "example.com:443", Connect: time.Second, Read: time.Second}} {
			msg := row.message(p, &upstreamError{failure: f, deadline: time.Second, err: errors.New("x")})
			if !strings.HasSuffix(msg, ".") || f != failCanceled && !strings.HasPrefix(msg, p.Name) {
				t.Errorf("failure %d (%s): message %q; want a sentence that starts with %q", f, row.name, msg, p.Name)
			}
			messageIsClientSafe(t, msg)
		}
	}
}

func TestRetryAfterIsExposedThroughClassify(t *testing.T) {
	err := &noTargetError{retryAfter: 7 * time.Second}
	gerr, _ := Classify(context.Background(), err)
	if statusOf(gerr) != http.StatusServiceUnavailable {
		t.Errorf("got status %d; want 503", statusOf(gerr))
	}
	for _, e := range []error{err, gerr} {
		if d, ok := RetryAfter(e); !ok || d != 7*time.Second {
			t.Errorf("RetryAfter(%v) = %v, %v; want 7s, true", e, d, ok)
		}
	}
	if _, ok := RetryAfter(errors.New("other")); ok {
		t.Errorf("RetryAfter of another error reports ok")
	}
}

// TestUpstreamFailuresOverRealSockets drives each failure mode through a
// real RoundTrip and checks the status Classify gives it and that the
// failure counts against the target's passive health.
func TestUpstreamFailuresOverRealSockets(t *testing.T) {
	tests := []struct {
		desc       string
		upstream   func(t *testing.T) Target
		readTO     time.Duration
		wantStatus int
		wantMsg    string
	}{
		{
			desc:       "nothing listening",
			upstream:   func(t *testing.T) Target { return Target{URL: refusedURL(t), Weight: 1} },
			wantStatus: 502, wantMsg: "refused the connection",
		},
		{
			desc: "answer that is not HTTP",
			upstream: func(t *testing.T) Target {
				return Target{URL: rawUpstream(t, func(c net.Conn) { io.WriteString(c, "not http\r\n\r\n") }), Weight: 1}
			},
			wantStatus: 502, wantMsg: "valid HTTP",
		},
		{
			desc: "headers cut short",
			upstream: func(t *testing.T) Target {
				return Target{URL: rawUpstream(t, func(c net.Conn) { io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Le") }), Weight: 1}
			},
			wantStatus: 502, wantMsg: "valid HTTP",
		},
		{
			desc: "reset before any response byte",
			upstream: func(t *testing.T) Target {
				return Target{URL: rawUpstream(t, func(c net.Conn) { c.(*net.TCPConn).SetLinger(0) }), Weight: 1}
			},
			wantStatus: 502, wantMsg: "closed the connection without answering",
		},
		{
			desc: "closed before any response byte",
			upstream: func(t *testing.T) Target {
				return Target{URL: rawUpstream(t, func(c net.Conn) {}), Weight: 1}
			},
			wantStatus: 502, wantMsg: "closed the connection without answering",
		},
		{
			desc: "no headers within the read timeout",
			upstream: func(t *testing.T) Target {
				u, _, _ := blockingUpstream(t)
				return Target{URL: u, Weight: 1}
			},
			readTO:     50 * time.Millisecond,
			wantStatus: 504, wantMsg: "did not answer within 50ms",
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			p := newTestPool(t, Config{Targets: []Target{tt.upstream(t)}, ReadTimeout: tt.readTO})
			start := time.Now()
			r := get(t, p)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v; want no hang", d)
			}
			if r.status != tt.wantStatus {
				t.Fatalf("got status %d (%v); want %d", r.status, r.err, tt.wantStatus)
			}
			if !strings.Contains(r.message, tt.wantMsg) {
				t.Errorf("got message %q; want it to contain %q", r.message, tt.wantMsg)
			}
			messageIsClientSafe(t, r.message)
			if n := p.targets[0].fails.Load(); n != 1 {
				t.Errorf("got %d recorded failures; want 1", n)
			}
		})
	}
}

func TestUpstream5xxIsAnAnswerNotAFailure(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	p := newTestPool(t, Config{Targets: []Target{{URL: mustURL(t, srv.URL), Weight: 1}}, MaxFails: 1})
	for range 3 {
		if r := get(t, p); r.status != http.StatusServiceUnavailable || r.err != nil {
			t.Fatalf("got %d %v; want the upstream's own 503 passed through", r.status, r.err)
		}
	}
	if n := p.targets[0].fails.Load(); n != 0 {
		t.Errorf("got %d recorded failures; want 0", n)
	}
}

func TestClientGoneIsNotAnUpstreamFailure(t *testing.T) {
	u, arrived, _ := blockingUpstream(t)
	p := newTestPool(t, Config{Targets: []Target{{URL: u, Weight: 1}}, MaxFails: 1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result, 1)
	go func() { done <- do(t, p, request(t, ctx, "GET", "/", nil)) }()
	<-arrived
	cancel()
	select {
	case r := <-done:
		if !r.gone {
			t.Errorf("got status %d (%v); want clientGone", r.status, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RoundTrip hung after the client went away")
	}
	if n := p.targets[0].fails.Load(); n != 0 {
		t.Errorf("got %d recorded failures; want 0", n)
	}
	if r := p.targets[0].ejectedUntil.Load(); r != 0 {
		t.Errorf("target was ejected for a client's cancellation")
	}
}

// TestOneClassifierForBothPlanes: the data plane (a Pool's error) and the
// egress listener (ClassifyPeer) give every cause the same status; a
// connect timeout is 504 on both.
func TestOneClassifierForBothPlanes(t *testing.T) {
	live := context.Background()
	dialTimeout := &net.OpError{Op: "dial", Net: "tcp", Err: timeoutErr{}}
	for _, tc := range []struct {
		cause string
		err   error
		want  int
	}{
		{"connection refused", &dialError{err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}, 502},
		{"host name not found", &dialError{err: &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}}, 502},
		{"connect timeout", &dialError{err: dialTimeout}, 504},
		{"resolving past the connect timeout", &dialError{err: context.DeadlineExceeded}, 504},
		{"TLS handshake failed", &dialError{tls: true, err: x509.UnknownAuthorityError{}}, 502},
		{"reset before the response", &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, 502},
		{"no response head in time", timeoutErr{}, 504},
		{"not HTTP", errors.New(`malformed HTTP response "SSH-2.0"`), 502},
		{"status outside 100-599", invalidStatusError(999), 502},
	} {
		t.Run(tc.cause, func(t *testing.T) {
			pool := &upstreamError{failure: classify(live, tc.err), host: "h:1", attempt: 1, connect: time.Second, read: time.Second, err: tc.err}
			dataPlane, _ := Classify(live, pool)
			egress, _ := ClassifyPeer(live, tc.err, Peer{Name: "example.com:443", Connect: time.Second, Read: time.Second})
			if got := statusOf(dataPlane); got != tc.want {
				t.Errorf("data plane: got %d (%v); want %d", got, dataPlane, tc.want)
			}
			if got := statusOf(egress); got != tc.want {
				t.Errorf("egress: got %d (%v); want %d", got, egress, tc.want)
			}
		})
	}
}

// TestAResetOnTheRequestsOwnDeadlineIsTheDeadlineNotTheUpstreams: the
// upstream got the same grpc-timeout and may reset the stream on it
// before gatehouse's own timer has ended the context; by the clock, the
// deadline passed, and the upstream is not to blame (no 502, no passive
// failure, no retry). A reset before the deadline is the upstream's.
func TestAResetOnTheRequestsOwnDeadlineIsTheDeadlineNotTheUpstreams(t *testing.T) {
	reset := fmt.Errorf("upstream: %w", h2StreamError{StreamID: 1, Code: 0x8}) // CANCEL
	tests := []struct {
		desc string
		at   time.Duration // the deadline's time, from now
		want failure
	}{
		{"the deadline's time has passed, its timer not yet fired", -time.Millisecond, failDeadline},
		{"the deadline is still ahead", time.Hour, failStreamReset},
	}
	for _, tc := range tests {
		ctx := context.WithValue(context.Background(), requestDeadlineKey{}, time.Now().Add(tc.at))
		if got := classify(ctx, reset); got != tc.want {
			t.Errorf("%s: classify = %v; want %v", tc.desc, got, tc.want)
		}
	}
}
