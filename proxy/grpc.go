package proxy

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/problem"
	"github.com/gatehouse/gatehouse/proxy/forward"
)

// grpcDeadline bounds out's whole upstream exchange by the client's
// grpc-timeout, if it sent a valid one (parseGRPCTimeout), and returns
// the cancel to call once the exchange is over; nil, and out unchanged,
// otherwise (no work and no allocation for any other request). The field
// itself travels on to the upstream, which may bound its work by it too.
func grpcDeadline(out *http.Request) (*http.Request, context.CancelFunc) {
	v := out.Header["Grpc-Timeout"]
	if len(v) == 0 {
		return out, nil
	}
	d, ok := parseGRPCTimeout(v[0])
	if !ok {
		return out, nil // ignored, as Envoy ignores it
	}
	ctx, cancel := forward.RequestDeadline(out.Context(), d)
	return out.WithContext(ctx), cancel
}

// failDeadline answers an exchange whose head did not come before the
// client's own grpc-timeout passed (grpcDeadline): the classifier's 504,
// DEADLINE_EXCEEDED to a gRPC client. It is no failure of the upstream's,
// so neither its metrics nor its circuit count it (pr.ClientFault).
func (h *Handler) failDeadline(w http.ResponseWriter, r *http.Request, pr *policy.Request, err error) int {
	if pr != nil {
		pr.ClientFault = true
	}
	gerr, gone := forward.Classify(r.Context(), err)
	if gone {
		h.abort()
	}
	return h.fail(w, r, gerr)
}

// endDeadlineStream ends the response that broke off because the
// client's own grpc-timeout passed after the upstream's head (grpcDeadline
// gave out its context), the client still being there, and reports true;
// false if something else broke it off. A gRPC client reads
// DEADLINE_EXCEEDED in the trailers, as a gRPC server would have sent it
// (a reset stream would read as INTERNAL); any other client's stream is
// reset. No one is judged for it: not the upstream (a circuit breaker's
// failure) nor the client.
func (h *Handler) endDeadlineStream(w http.ResponseWriter, out, r *http.Request, pr *policy.Request) bool {
	if !forward.RequestDeadlinePassed(out.Context()) || r.Context().Err() != nil {
		return false
	}
	if pr != nil {
		pr.ClientFault = true
	}
	if !problem.IsGRPC(r) {
		h.abort()
	}
	problem.WriteGRPCTrailers(w, r, gatehouse.Errorf(gatehouse.EGATEWAYTIMEOUT,
		"The upstream did not finish its answer within the request's deadline (grpc-timeout)."))
	return true
}

// parseGRPCTimeout reads a grpc-timeout value as gRPC's PROTOCOL-HTTP2
// defines it: 1 to 8 ASCII digits and a unit, H (hours), M (minutes), S
// (seconds), m (milliseconds), u (microseconds) or n (nanoseconds).
// A value past time.Duration's range (99999999H is) is the longest
// duration.
func parseGRPCTimeout(s string) (time.Duration, bool) {
	if len(s) < 2 || len(s) > 9 {
		return 0, false
	}
	var unit time.Duration
	switch s[len(s)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	var n int64
	for i := 0; i < len(s)-1; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if n > math.MaxInt64/int64(unit) {
		return math.MaxInt64, true
	}
	return time.Duration(n) * unit, true
}

// flushGRPCHead sends a gRPC response's header section at once, before
// its first message: a server stream may hold its messages back long
// after its head. A trailers-only answer (grpc-status in the head) is
// left to go out as one section that ends the stream, which is what its
// client expects.
func flushGRPCHead(w http.ResponseWriter, resp *http.Response) {
	ct := resp.Header["Content-Type"]
	if len(ct) == 0 || !strings.HasPrefix(ct[0], "application/grpc") {
		return
	}
	if _, trailersOnly := resp.Header["Grpc-Status"]; trailersOnly {
		return
	}
	http.NewResponseController(w).Flush()
}

// idleStream makes the server's ReadTimeout (--read-timeout) an idle
// timeout between a gRPC client's messages, rather than a bound on its
// whole request: net/http's HTTP/2 server arms it once per stream, when
// the head has come, and a client or bidi stream outlives it. Each read
// of the client's stream that returns data moves the stream's read
// deadline to the read timeout from then (http.ResponseController's
// SetReadDeadline, which HTTP/2 applies to the one stream). body's reads
// go through it from then on; call it before the exchange starts, once
// out carries the request's own deadline (grpcDeadline), and end the
// returned reader before the handler returns. Any other request, and a
// server without a ReadTimeout, is left as it is (nil).
//
// A stream silent past the timeout fails its body read with
// os.ErrDeadlineExceeded: 408 before the upstream's head (failBody), and
// after it the status endStalledStream writes.
func idleStream(w http.ResponseWriter, r, out *http.Request, body *limitedBody) *idleReader {
	if !problem.IsGRPC(r) {
		return nil
	}
	// The one ReadTimeout: the server's own, which armed the first
	// deadline, not a copy that could disagree with it.
	srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	if srv == nil || srv.ReadTimeout <= 0 {
		return nil
	}
	s := &idleReader{r: body.r, rc: http.NewResponseController(w), idle: srv.ReadTimeout}
	s.deadline, _ = out.Context().Deadline()
	if !s.deadline.IsZero() && time.Until(s.deadline) <= s.idle {
		s.release()
	}
	body.r = s
	return s
}

// idleReader is a gRPC request's body whose every read that returns data
// extends the stream's read deadline by idle (idleStream).
type idleReader struct {
	r    io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration
	// deadline is the request's own (grpc-timeout), zero for none. Once
	// it is nearer than idle, it alone bounds the stream (released): the
	// read deadline is cleared rather than set to the same instant, so
	// that a client silent to its deadline gets the deadline's answer,
	// never a race between the two.
	deadline time.Time
	// mu guards the fields below and every use of rc: the transport may
	// still read the body after the exchange is over, when the response
	// writer is no longer the handler's to touch (net/http's HTTP/2
	// writer panics once its handler has returned), so end waits for an
	// extension under way and stops the next.
	mu       sync.Mutex
	released bool
	ended    bool
}

func (s *idleReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.extend()
	}
	return n, err
}

func (s *idleReader) extend() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released || s.ended {
		return
	}
	next := time.Now().Add(s.idle)
	if !s.deadline.IsZero() && !next.Before(s.deadline) {
		s.released = true
		next = time.Time{}
	}
	s.rc.SetReadDeadline(next)
}

// release clears the read deadline, on the handler's goroutine before
// the exchange starts.
func (s *idleReader) release() {
	s.released = true
	s.rc.SetReadDeadline(time.Time{})
}

// end stops the extensions; call it before the handler returns.
func (s *idleReader) end() {
	s.mu.Lock()
	s.ended = true
	s.mu.Unlock()
}

func (s *idleReader) Close() error { return s.r.Close() }

// stalled reports whether the client's stream failed because it sent
// nothing for the server's read timeout (idleStream's, or net/http's own
// whole-body bound).
func (b *limitedBody) stalled() bool {
	return errors.Is(b.err(), os.ErrDeadlineExceeded)
}

// endStalledStream ends a response already under way whose client's
// request stream went silent past the read timeout. The client is at
// fault, not the upstream (no circuit breaker or health counts it): a
// gRPC client gets the status gatehouse answers a stall with before the
// head (408's, UNKNOWN, with its detail), in the trailers, so that it
// reads why its call ended; any other client's stream is reset, as a
// client that went away.
func (h *Handler) endStalledStream(w http.ResponseWriter, r *http.Request, body *limitedBody, pr *policy.Request, status int) outcome {
	if pr != nil {
		pr.ClientFault = true
	}
	if !problem.IsGRPC(r) {
		h.abort()
	}
	problem.WriteGRPCTrailers(w, r, gatehouse.BodyUnreadable(body.err()))
	return outcome{status: status}
}
