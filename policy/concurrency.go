package policy

import (
	"strconv"
	"sync/atomic"

	"github.com/gatehouse/gatehouse"
)

func init() { register(gatehouse.PolicyConcurrencyLimit, buildConcurrencyLimit) }

// concurrencyLimit refuses a request with 503 when its route already has
// Max requests in flight on this node under one of the policies; it does
// not queue. Several policies at one level all apply: a request takes a
// slot under each.
type concurrencyLimit struct {
	limits []*inflightLimit
}

// inflightLimit is one policy's cap on one route.
type inflightLimit struct {
	// n is the route's requests in flight, kept in State so that a
	// redeploy of the unchanged policy counts the requests still running
	// on the old revision.
	n          *inflight
	max        int64
	retryAfter []string
	// release is built once, so that registering it with OnDone does not
	// allocate a closure per request.
	release func(Outcome)
}

// inflight counts requests in flight; a named type so that State keeps
// it apart from any other policy's counter.
type inflight struct{ atomic.Int64 }

// errTooManyInFlight is shared: its text never varies.
var errTooManyInFlight = gatehouse.Errorf(gatehouse.EUNAVAILABLE, "Too many requests in flight on this route.")

func buildConcurrencyLimit(b *Build, pols []*gatehouse.Policy) (Step, error) {
	cfgs, err := configs[gatehouse.ConcurrencyLimitConfig](pols)
	if err != nil {
		return nil, err
	}
	s := &concurrencyLimit{}
	for i, c := range cfgs {
		n := Get(b.Env.State, b.StateKey(pols[i], true), func() *inflight { return new(inflight) })
		s.limits = append(s.limits, &inflightLimit{n: n, max: int64(c.Max),
			retryAfter: []string{strconv.Itoa(c.RetryAfterSeconds)},
			release:    func(Outcome) { n.Add(-1) }})
	}
	return s, nil
}

func (s *concurrencyLimit) Check(r *Request) error {
	for _, l := range s.limits {
		if l.n.Add(1) > l.max {
			l.n.Add(-1)
			r.W.Header()["Retry-After"] = l.retryAfter
			// The slots taken under earlier limits are released by the
			// Chain, which finishes r on a refusal.
			return errTooManyInFlight
		}
		r.OnDone(l.release)
	}
	return nil
}
