package forward

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse"
)

// failure is the kind of a failed round trip, decided once by classify.
// What each one means to the rest of gatehouse (its name in a trace, its
// cause in a target's health, whether it is retried, the client's status
// and message) is its row in failures.
type failure uint8

const (
	failInvalid           failure = iota // anything else: an answer that is not valid HTTP
	failRefused                          // dial refused
	failResolve                          // the host name did not resolve
	failConnect                          // dial or TLS handshake failed
	failConnectTimeout                   // dial or TLS handshake not done within the connect timeout
	failReset                            // connection reset or closed before a response
	failTimeout                          // no response headers within the read timeout
	failCanceled                         // the client went away, or gatehouse cut the request short
	failCertificate                      // the upstream's TLS certificate failed verification
	failClientCertificate                // the upstream refused gatehouse's TLS client certificate, or its lack
	failNoHTTP2                          // an HTTP/2 service's upstream did not select h2 in the TLS handshake
	failStreamRefused                    // the upstream refused the HTTP/2 stream unprocessed, RST_STREAM REFUSED_STREAM
	failStreamReset                      // the upstream reset the HTTP/2 stream, RST_STREAM with another code
	failGoAway                           // the upstream sent GOAWAY and closed the connection before answering
	failDeadline                         // the request's own deadline (RequestDeadline) passed before the upstream answered

	failureCount // the number of failures: every one has a row in failures
)

// failures is each failure's one row. Its columns are positional, so a
// row cannot leave one out; a failure without a row is caught by
// TestEveryFailureHasACompleteRow.
//
// retryable says whether the request can have done nothing upstream that
// an idempotent retry would repeat harmfully: the connection failed
// before any response. A read timeout is not retried: the upstream is
// slow, and a retry doubles its load. A connect timeout is: nothing was
// sent, and another target may answer; so is a certificate that failed
// verification (another target may present a good one). A refused client
// certificate is not: with TLS 1.3 the upstream says so only after the
// request was written.
var failures = [failureCount]struct {
	name      string                         // error.type of the attempt's client span: low in cardinality, as the conventions ask
	cause     string                         // a target's health (Pool.Health), in a few words: what failed, not what the client was answered
	retryable bool                           // see above
	code      gatehouse.Code                 // the client's answer (Classify)
	message   func(p Peer, err error) string // the client's message: safe to show, no address, no Go error text
}{
	failInvalid: {"invalid_response", "invalid HTTP answer", false,
		gatehouse.EBADGATEWAY, says(" did not answer with valid HTTP.")},
	failRefused: {"connection_refused", "connection refused", true,
		gatehouse.EBADGATEWAY, says(" refused the connection.")},
	failResolve: {"name_not_resolved", "host not resolved", true,
		gatehouse.EBADGATEWAY, says(" could not be resolved.")},
	failConnect: {"connect_failed", "connection failed", true,
		gatehouse.EBADGATEWAY, says(" could not be connected to.")},
	// 504, as nginx and Caddy answer: the upstream did not answer in time.
	failConnectTimeout: {"connect_timeout", "connect timeout", true,
		gatehouse.EGATEWAYTIMEOUT, within(" could not be connected to in time.", "%s could not be connected to within %v.", connectBound)},
	failReset: {"connection_reset", "closed without answering", true,
		gatehouse.EBADGATEWAY, says(" closed the connection without answering.")},
	failTimeout: {"response_timeout", "read timeout", false,
		gatehouse.EGATEWAYTIMEOUT, within(" did not answer in time.", "%s did not answer within %v.", readBound)},
	// Answered only when the client is still there: gatehouse itself cut
	// the request short.
	failCanceled: {"client_gone", "cut short", false,
		gatehouse.EBADGATEWAY, func(Peer, error) string { return "The request was cut short." }},
	// The reason (which name, which CA, what date) is the log's, in err:
	// it would tell a client about the upstream's PKI.
	failCertificate: {"certificate_invalid", "TLS certificate not verified", true,
		gatehouse.EBADGATEWAY, says("'s TLS certificate could not be verified.")},
	failClientCertificate: {"client_certificate_refused", "client certificate refused", false,
		gatehouse.EBADGATEWAY, says(" refused the TLS connection: it did not accept the client certificate, or required one and none is configured.")},
	failNoHTTP2: {"no_http2", "no HTTP/2 over TLS", true,
		gatehouse.EBADGATEWAY, says(" does not speak HTTP/2 over TLS (it did not select h2).")},
	failStreamRefused: {"stream_refused", "HTTP/2 stream refused", true,
		gatehouse.EBADGATEWAY, says(" refused the request's HTTP/2 stream.")},
	failStreamReset: {"stream_reset", "HTTP/2 stream reset", false,
		gatehouse.EBADGATEWAY, says(" reset the request's HTTP/2 stream without answering.")},
	failGoAway: {"goaway", "HTTP/2 GOAWAY", false,
		gatehouse.EBADGATEWAY, says(" closed the HTTP/2 connection (GOAWAY) without answering.")},
	failDeadline: {"deadline_exceeded", "request deadline passed", false,
		gatehouse.EGATEWAYTIMEOUT, within(" did not answer within the request's deadline.", "%s did not answer within the request's deadline of %v.", deadlineBound)},
}

// says is the message of a failure that names only the peer: rest
// follows its name.
func says(rest string) func(Peer, error) string {
	return func(p Peer, _ error) string { return p.Name + rest }
}

// within is the message of a failure that names the bound it passed
// when bound knows it (above zero): bounded is a format of the peer's
// name and the bound. Otherwise rest follows the peer's name.
func within(rest, bounded string, bound func(Peer, error) time.Duration) func(Peer, error) string {
	return func(p Peer, err error) string {
		if d := bound(p, err); d > 0 {
			return fmt.Sprintf(bounded, p.Name, d)
		}
		return p.Name + rest
	}
}

// The bounds the messages of timeouts name.
func connectBound(p Peer, _ error) time.Duration { return p.Connect }
func readBound(p Peer, _ error) time.Duration    { return p.Read }
func deadlineBound(_ Peer, err error) time.Duration {
	d, _ := ctxDeadline(err)
	return d
}

// classify is the one function that decides what kind of failure err is;
// RoundTrip (retries, passive health) and Classify (status codes, for the
// data plane and the egress listener) use it. ctx is the incoming
// request's context. The order matters: a client that went away explains
// every error after it; a dial timeout is a connection failure (nothing
// was sent), not a slow answer, though both are 504.
func classify(ctx context.Context, err error) failure {
	var de *dialError
	var op *net.OpError
	var dns *net.DNSError
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return failCanceled
	case RequestDeadlinePassed(ctx):
		// Before the timeouts: the client's bound, not the service's
		// read timeout, is what passed.
		return failDeadline
	case badCertificate(err):
		return failCertificate
	case refusedClientCertificate(err), brokeWithoutCertificate(err):
		// Before the reset and EOF cases: with TLS 1.3 the alert comes
		// after the handshake, as the connection ends.
		return failClientCertificate
	case errors.As(err, new(*noHTTP2Error)):
		return failNoHTTP2
	case errors.As(err, &de) || errors.As(err, &op) && op.Op == "dial":
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			return failRefused
		case timedOut(err):
			return failConnectTimeout
		case errors.As(err, &dns):
			return failResolve
		}
		return failConnect
	case streamReset(err) == refusedStream:
		return failStreamRefused
	case streamReset(err) >= 0:
		return failStreamReset
	case goAway(err):
		return failGoAway
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF):
		// io.EOF, not io.ErrUnexpectedEOF: closed before the first
		// response byte (net/http reports a truncated response as the
		// latter).
		return failReset
	case timedOut(err):
		return failTimeout
	case errors.Is(err, context.Canceled):
		// Canceled with the client's context live: gatehouse itself cut
		// the request short. No upstream is to blame (passive health
		// ignores it), but the client is still owed an answer: Classify
		// makes it a 502.
		return failCanceled
	}
	return failInvalid
}

// badCertificate reports whether err is the upstream's certificate
// failing verification: untrusted, for another name, expired or not yet
// valid.
func badCertificate(err error) bool {
	var (
		ve  *tls.CertificateVerificationError
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		cie x509.CertificateInvalidError
	)
	return errors.As(err, &ve) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &cie)
}

// TLS alerts (RFC 8446 §6.2) an upstream sends about the client's
// certificate: it is bad, unsupported, revoked, expired, unknown, signed
// by a CA it does not trust, or missing.
var clientCertificateAlerts = map[uint64]bool{42: true, 43: true, 44: true, 45: true, 46: true, 48: true, 116: true}

// refusedClientCertificate reports whether err is the upstream's alert
// refusing gatehouse's client certificate (or its lack), read by
// remoteAlert.
//
// An upstream that asked for a certificate and answers with a
// handshake_failure alert (40) refused it too: that is how TLS 1.2
// servers (Go's among them) refuse a handshake without one.
func refusedClientCertificate(err error) bool {
	n, ok := receivedAlert(err)
	if !ok {
		return false
	}
	var de *dialError
	return clientCertificateAlerts[n] || n == 40 && errors.As(err, &de) && de.certAsked
}

// alertNoApplicationProtocol is the TLS alert (RFC 7301 §3.2) of a server
// that shares no ALPN protocol with the client.
const alertNoApplicationProtocol = 120

// receivedAlert returns the number of the TLS alert err received from the
// upstream, if it is one. crypto/tls reports a received alert as a
// *net.OpError "remote error" around an unexported uint8 type; its
// number is read by kind rather than by the wording of its text.
func receivedAlert(err error) (uint64, bool) {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" || op.Err == nil {
		return 0, false
	}
	v := reflect.ValueOf(op.Err)
	if v.Kind() != reflect.Uint8 {
		return 0, false
	}
	return v.Uint(), true
}

// brokeWithoutCertificate reports whether err ended the first exchange
// of a connection whose upstream asked for a client certificate and got
// none (certlessError), other than by a timeout or a cancellation: with
// TLS 1.3 such an upstream refuses after gatehouse's handshake is done,
// and the reset that follows its alert can reach gatehouse first (a
// large body being written), losing the alert. It is the refusal then
// too, every time, rather than a reset that would be retried.
func brokeWithoutCertificate(err error) bool {
	var ce *certlessError
	return errors.As(err, &ce) && !timedOut(err) && !errors.Is(err, context.Canceled)
}

// certlessConn is a TLS connection to an upstream that asked for a
// client certificate in the handshake and got none.
type certlessConn struct{ net.Conn }

// certlessError is the error of the first exchange on a certlessConn.
type certlessError struct{ err error }

func (e *certlessError) Error() string {
	return "no client certificate sent, though the upstream asked for one: " + e.err.Error()
}

func (e *certlessError) Unwrap() error { return e.err }

// TLSFailed reports whether err (from RoundTrip) is a failure of TLS
// with the upstream: a handshake that failed or timed out, a certificate
// that failed verification, a client certificate refused. Its client
// hears only that (Classify); the log is where its reason belongs, for
// the operator who configured the service's TLS.
func TLSFailed(err error) bool {
	var ue *upstreamError
	if errors.As(err, &ue) && (ue.failure == failCertificate || ue.failure == failClientCertificate) {
		return true
	}
	var de *dialError
	return errors.As(err, &de) && de.tls
}

func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// validStatus reports whether code is an HTTP status code: RFC 9110 §15
// defines 100–599, and a response with any other is not valid HTTP (502).
func validStatus(code int) bool { return code >= 100 && code <= 599 }

// invalidStatusError is a response whose status code is not HTTP's:
// classify takes it for what it is, an invalid answer.
type invalidStatusError int

func (e invalidStatusError) Error() string {
	return "status code " + strconv.Itoa(int(e)) + " outside 100-599"
}

// DialError marks err as a failure to establish a connection (resolving
// included): nothing was sent. A dialer of its own (the egress
// listener's) wraps its failures with it for Classify.
func DialError(err error) error { return &dialError{err: err} }

// dialError marks a failure to establish the connection: nothing was sent.
type dialError struct {
	err       error
	tls       bool // the TCP connection was made; the TLS handshake failed
	certAsked bool // the upstream asked for a client certificate in the handshake
}

func (e *dialError) Error() string {
	if e.tls {
		return "tls handshake: " + e.err.Error()
	}
	return e.err.Error()
}

func (e *dialError) Unwrap() error { return e.err }

// upstreamError is a failed RoundTrip: which target, which attempt, and
// the transport's error. Its text is for the log only.
type upstreamError struct {
	failure
	host          string
	attempt       int
	connect, read time.Duration
	deadline      time.Duration // the RequestDeadline's bound, when failDeadline
	err           error
}

func (e *upstreamError) Error() string {
	return fmt.Sprintf("upstream %s, attempt %d: %v", e.host, e.attempt, e.err)
}

func (e *upstreamError) Unwrap() error { return e.err }

// ErrNoHealthyTarget is matched (errors.Is) by RoundTrip's error when no
// target could be tried.
var ErrNoHealthyTarget = errors.New("no healthy upstream target")

type noTargetError struct{ retryAfter time.Duration }

func (e *noTargetError) Error() string {
	return fmt.Sprintf("%v; the earliest is retried in %v", ErrNoHealthyTarget, e.retryAfter)
}

func (e *noTargetError) Is(target error) bool { return target == ErrNoHealthyTarget }

// RetryAfter returns how long a client should wait before retrying, when
// err (from RoundTrip, or Classify's result) means no target was healthy:
// the time until the earliest target's trial or next health check, in
// whole seconds, at least 1s. Use it for the 503's Retry-After header.
func RetryAfter(err error) (time.Duration, bool) {
	var e *noTargetError
	if errors.As(err, &e) {
		return e.retryAfter, true
	}
	return 0, false
}

// Peer is what Classify's messages name, and the timeouts they name when
// one was hit (zero: not named).
type Peer struct {
	// Name starts the sentences: "The upstream", or a destination's
	// host:port. It must be safe to show the client.
	Name          string
	Connect, Read time.Duration
}

// Classify turns a RoundTrip error into the contract's error, once, for
// every caller. ctx is the incoming request's context. It returns:
//
//   - nil, true when the client went away (ctx canceled), whatever err
//     is: no response is owed; log it as client-closed, not as an
//     upstream failure. Only ctx decides this: a client still there is
//     always owed an answer;
//   - a *gatehouse.Error otherwise: EUNAVAILABLE (503, see RetryAfter),
//     EBADGATEWAY (502) or EGATEWAYTIMEOUT (504: no answer, or no
//     connection, within its timeout), whose Message is safe for clients
//     (no address, no Go error text) and whose Err keeps the cause for
//     the log;
//   - nil, false for a nil err.
//
// An error that is already a *gatehouse.Error is returned as is.
func Classify(ctx context.Context, err error) (gerr error, clientGone bool) {
	p := Peer{Name: "The upstream"}
	var ue *upstreamError
	if errors.As(err, &ue) {
		p.Connect, p.Read = ue.connect, ue.read
	}
	return ClassifyPeer(ctx, err, p)
}

// ClassifyPeer is Classify for a failure to reach p, for a caller that
// does not go through a Pool (the egress listener): the same decision and
// the same status for each cause.
func ClassifyPeer(ctx context.Context, err error, p Peer) (gerr error, clientGone bool) {
	if err == nil {
		return nil, false
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return nil, true
	}
	var ge *gatehouse.Error
	if errors.As(err, &ge) {
		return ge, false
	}
	if errors.Is(err, ErrNoHealthyTarget) {
		return &gatehouse.Error{Code: gatehouse.EUNAVAILABLE, Message: "No healthy upstream target is available.", Err: err}, false
	}
	var f failure
	var ue *upstreamError
	if errors.As(err, &ue) {
		f = ue.failure
	} else {
		f = classify(ctx, err)
	}
	// A deadline on the incoming context is the caller's, not the read
	// timeout: do not name a duration that was not the one hit.
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		p.Read = 0
	}
	row := failures[f]
	return &gatehouse.Error{Code: row.code, Message: row.message(p, err), Err: err}, false
}

// RequestDeadline bounds the whole upstream exchange of a request that
// carries its own deadline (gRPC's grpc-timeout) to d: head and body. The
// service's read timeout still bounds the head, whichever passes first.
// Its passing is told from the client going away and from the read
// timeout (classify): the client is owed a 504 if no head came yet.
func RequestDeadline(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx = context.WithValue(ctx, requestDeadlineKey{}, time.Now().Add(d))
	return context.WithTimeoutCause(ctx, d, &deadlineError{d: d})
}

// requestDeadlineKey holds a RequestDeadline's time in its context.
type requestDeadlineKey struct{}

// deadlineError is the cause of a RequestDeadline's context, naming the
// bound.
type deadlineError struct{ d time.Duration }

func (e *deadlineError) Error() string {
	return "the request's deadline of " + e.d.String() + " passed"
}

// RequestDeadlinePassed reports whether ctx's RequestDeadline has passed:
// ctx ended on it, or its time is up though ctx's timer has not fired
// yet. The upstream, which got the same bound (grpc-timeout), may end the
// exchange on it (a reset stream) first, and that is still the request's
// deadline, not the upstream's failure.
func RequestDeadlinePassed(ctx context.Context) bool {
	if ctx.Err() != nil {
		var de *deadlineError
		return errors.As(context.Cause(ctx), &de)
	}
	at, ok := ctx.Value(requestDeadlineKey{}).(time.Time)
	return ok && !time.Now().Before(at)
}

// ctxDeadline returns the bound of the RequestDeadline that err (an
// upstreamError's) records.
func ctxDeadline(err error) (time.Duration, bool) {
	var ue *upstreamError
	if errors.As(err, &ue) && ue.deadline > 0 {
		return ue.deadline, true
	}
	return 0, false
}

// HTTP/2 error codes (RFC 9113 §7) classify reads.
const refusedStream = 0x7

// h2StreamError mirrors net/http's HTTP/2 stream error, whose As method
// fills any struct with its field names and types: an RST_STREAM, the
// upstream's or the transport's own.
type h2StreamError struct {
	StreamID uint32
	Code     uint32
	Cause    error
}

func (e h2StreamError) Error() string {
	return fmt.Sprintf("stream error: stream ID %d; code %#x", e.StreamID, e.Code)
}

// streamReset returns the HTTP/2 error code of the stream reset err is,
// or -1 if it is none.
//
// net/http's HTTP/2 transport retries a refused stream itself when it
// can replay the request; when it cannot (a body it has begun to send
// and cannot rewind) it reports the reset with %v, losing its type. That
// one report is recognised by its wording, the one place this
// classifier reads text: otherwise a refused stream, which the upstream
// never processed, would read as an answer that is not HTTP.
func streamReset(err error) int64 {
	var se h2StreamError
	if errors.As(err, &se) {
		return int64(se.Code)
	}
	if s := err.Error(); strings.HasPrefix(s, netHTTPCannotRetry) || strings.Contains(s, ": "+netHTTPCannotRetry) {
		if strings.Contains(s, "; REFUSED_STREAM") {
			return refusedStream
		}
	}
	return -1
}

// netHTTPCannotRetry starts net/http's report of an HTTP/2 failure it
// could not retry (http2shouldRetryRequest).
const netHTTPCannotRetry = "http2: Transport: cannot retry err ["

// goAway reports whether err is net/http's report of an upstream that
// sent GOAWAY and closed the connection before answering. Its type is
// unexported: it is found by name, as refusedClientCertificate reads an
// alert by kind.
func goAway(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		t := reflect.TypeOf(e)
		if t.PkgPath() == "net/http" && t.Name() == "http2GoAwayError" {
			return true
		}
	}
	return false
}
