package proxy

import (
	"context"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/policy"
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

// endDeadlineStream resets the stream whose response broke off because
// the client's own grpc-timeout passed (grpcDeadline gave out its
// context), the client still being there: no one is judged for it, not
// the upstream (a circuit breaker's failure) nor the client. It returns if
// something else broke the response off.
func (h *Handler) endDeadlineStream(out, r *http.Request, pr *policy.Request) {
	if out.Context().Err() == nil || r.Context().Err() != nil {
		return
	}
	if pr != nil {
		pr.ClientFault = true
	}
	h.abort()
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
