package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse"
)

// failure is the kind of a failed round trip, decided once by classify.
type failure uint8

const (
	failInvalid        failure = iota // anything else: an answer that is not valid HTTP (502)
	failRefused                       // dial refused (502, retryable)
	failResolve                       // the host name did not resolve (502, retryable)
	failConnect                       // dial or TLS handshake failed (502, retryable)
	failConnectTimeout                // dial or TLS handshake not done within the connect timeout (504, retryable)
	failReset                         // connection reset or closed before a response (502, retryable)
	failTimeout                       // no response headers within the read timeout (504)
	failCanceled                      // the client went away: no response is owed
)

// retryable reports whether the request can have done nothing upstream
// that an idempotent retry would repeat harmfully: the connection failed
// before any response. A read timeout is not retried: the upstream is
// slow, and a retry doubles its load. A connect timeout is: nothing was
// sent, and another target may answer.
func (f failure) retryable() bool {
	switch f {
	case failRefused, failResolve, failConnect, failConnectTimeout, failReset:
		return true
	}
	return false
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
	err error
	tls bool // the TCP connection was made; the TLS handshake failed
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
	code, msg := gatehouse.EBADGATEWAY, ""
	switch f {
	case failCanceled: // not by the client: its context is live
		msg = "The request was cut short."
	case failRefused:
		msg = p.Name + " refused the connection."
	case failResolve:
		msg = p.Name + " could not be resolved."
	case failConnect:
		msg = p.Name + " could not be connected to."
	case failConnectTimeout:
		// As nginx and Caddy answer: the upstream did not answer in time.
		code, msg = gatehouse.EGATEWAYTIMEOUT, p.Name+" could not be connected to in time."
		if p.Connect > 0 {
			msg = fmt.Sprintf("%s could not be connected to within %v.", p.Name, p.Connect)
		}
	case failReset:
		msg = p.Name + " closed the connection without answering."
	case failTimeout:
		code, msg = gatehouse.EGATEWAYTIMEOUT, p.Name+" did not answer in time."
		if p.Read > 0 {
			msg = fmt.Sprintf("%s did not answer within %v.", p.Name, p.Read)
		}
	default:
		msg = p.Name + " did not answer with valid HTTP."
	}
	return &gatehouse.Error{Code: code, Message: msg, Err: err}, false
}
