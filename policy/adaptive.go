package policy

import (
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
)

// The adaptive-concurrency policy sheds load with 503 once the requests in
// flight reach a limit that follows the upstream's latency. The algorithm
// is Netflix concurrency-limits' Gradient2
// (https://github.com/Netflix/concurrency-limits, Gradient2Limit), with
// the two changes named below.
//
// Completed exchanges are gathered into windows, as the library's
// WindowedLimit does, but a window ends after at least
// adaptiveWindowSamples outcomes and one baseline RTT rather than a
// second, so the limit changes about once per round trip: the effect of
// a change has time to show before the next. At the end of a window:
//
//	short    = the window's mean latency (to the response head)
//	gradient = clamp(tolerance × baseline / short, 0.5, 1)
//	limit    = limit × (1-smoothing) + (limit × gradient + √limit) × smoothing
//	limit    = clamp(limit, min_limit, max_limit)
//
// with tolerance 1.5 and smoothing 0.2 as in Gradient2: latency up to
// 1.5 times the baseline is noise, not queueing, and the limit grows by
// about √limit/5 per window; beyond it the limit shrinks by up to a tenth
// per window. Headroom √limit (Gradient's, and Envoy's adaptive
// concurrency filter's) lets the limit probe upwards in proportion to its
// size.
//
// Change 1, the baseline: Gradient2 compares with a long-term mean
// latency, which a gateway that starts under overload would learn as
// normal. Here the baseline is the lowest window minimum seen (the
// no-load RTT of Vegas and Gradient), which drifts up towards each
// window's minimum with a time constant of adaptiveBaselineDrift (Gradient2's
// 600 one-second windows), so that an upstream that became slower for
// good is learnt in minutes while queueing under sustained overload
// cannot pass for normal in seconds.
//
// Change 2, drops: a window in which the upstream answered 5xx (it failed,
// timed out, or shed load itself) backs off multiplicatively, limit × 0.9,
// as AIMD does (concurrency-limits' AIMDLimit), and its latencies, which
// fast failures would drag down, do not feed the baseline. An exchange
// that ended with status 0 (the client went away, or a later policy
// refused the request) releases its slot and says nothing of the upstream:
// it is not a sample. A window in which fewer than half the limit were in
// flight leaves the limit as it is (Gradient2's "app limited" rule): a
// limit that is not what bounds the traffic neither grows on fast answers
// nor shrinks on slow ones.
//
// Admission is two atomic operations; the mutex is taken once per
// completed exchange, for a few arithmetic operations, never across I/O.

func init() { register(gatehouse.PolicyAdaptiveConcurrency, buildAdaptiveConcurrency) }

const (
	adaptiveWindowSamples = 10
	adaptiveTolerance     = 1.5
	adaptiveSmoothing     = 0.2
	adaptiveMinGradient   = 0.5
	adaptiveBackoff       = 0.9
	adaptiveBaselineDrift = 10 * time.Minute
)

var errShedding = gatehouse.Errorf(gatehouse.EUNAVAILABLE, "The gateway is shedding load; retry later.")

// adaptiveConcurrency applies each of a level's adaptive-concurrency
// policies: a request takes a slot under each.
type adaptiveConcurrency struct {
	limits []*adaptiveLimit
}

func buildAdaptiveConcurrency(b *Build, pols []*gatehouse.Policy) (Step, error) {
	cfgs, err := configs[gatehouse.AdaptiveConcurrencyConfig](pols)
	if err != nil {
		return nil, err
	}
	s := &adaptiveConcurrency{}
	for i, c := range cfgs {
		// Shared by every route the policy applies to; a changed policy
		// (a new version) starts from its initial limit.
		l := Get(b.Env.State, b.StateKey(pols[i], false), func() *adaptiveLimit { return newAdaptiveLimit(c, b.Env.Now) })
		s.limits = append(s.limits, l)
	}
	return s, nil
}

func (s *adaptiveConcurrency) Check(r *Request) error {
	for _, l := range s.limits {
		if !l.acquire() {
			r.W.Header()["Retry-After"] = l.retryAfter
			return errShedding
		}
		r.OnDone(l.release)
	}
	return nil
}

// adaptiveLimit is one policy's limit and the requests in flight under it.
type adaptiveLimit struct {
	inflight atomic.Int64
	limit    atomic.Int64 // what admission compares with: the estimate, rounded down

	retryAfter []string
	release    func(Outcome) // l.done, bound once
	now        func() time.Time

	mu          sync.Mutex
	min, max    float64
	estimate    float64
	baseline    time.Duration // 0 until the first window
	windowStart time.Time
	samples     int           // outcomes with a latency
	sum         time.Duration // of their latencies
	low         time.Duration // their lowest
	drops       int
	peak        int64 // the most in flight seen at a completion
}

func newAdaptiveLimit(c *gatehouse.AdaptiveConcurrencyConfig, now func() time.Time) *adaptiveLimit {
	l := &adaptiveLimit{retryAfter: []string{strconv.Itoa(c.RetryAfterSeconds)}, now: now,
		min: float64(c.MinLimit), max: float64(c.MaxLimit), estimate: float64(c.InitialLimit), windowStart: now()}
	l.limit.Store(int64(c.InitialLimit))
	l.release = l.done
	return l
}

// acquire takes a slot if the limit allows.
func (l *adaptiveLimit) acquire() bool {
	if l.inflight.Add(1) > l.limit.Load() {
		l.inflight.Add(-1)
		return false
	}
	return true
}

// done releases a slot and learns from how the exchange went.
func (l *adaptiveLimit) done(o Outcome) {
	n := l.inflight.Add(-1) + 1
	// As the circuit breaker judges the upstream: an exchange the client
	// abandoned or failed with its own body says nothing of its latency.
	verdict := judge(o)
	if verdict == noJudgement {
		return
	}
	l.mu.Lock()
	l.peak = max(l.peak, n)
	switch {
	case verdict == failed:
		l.drops++
	case o.Latency > 0:
		if l.samples == 0 || o.Latency < l.low {
			l.low = o.Latency
		}
		l.samples++
		l.sum += o.Latency
	}
	if l.samples+l.drops >= adaptiveWindowSamples {
		if now := l.now(); now.Sub(l.windowStart) >= l.baseline {
			l.update(now)
		}
	}
	l.mu.Unlock()
}

// update ends a window: it adjusts the baseline and the limit and starts
// the next window. l.mu is held.
func (l *adaptiveLimit) update(now time.Time) {
	elapsed := now.Sub(l.windowStart)
	if l.drops == 0 && l.samples > 0 {
		switch {
		case l.baseline == 0 || l.low < l.baseline:
			l.baseline = l.low
		default:
			// Drift up towards the window's minimum, by the share of the
			// time constant that passed.
			k := 1 - math.Exp(-float64(elapsed)/float64(adaptiveBaselineDrift))
			l.baseline += time.Duration(float64(l.low-l.baseline) * k)
		}
	}
	if float64(l.peak) >= l.estimate/2 {
		switch {
		case l.drops > 0:
			l.estimate *= adaptiveBackoff
		case l.samples > 0:
			short := float64(l.sum) / float64(l.samples)
			gradient := max(adaptiveMinGradient, min(1, adaptiveTolerance*float64(l.baseline)/short))
			next := l.estimate*gradient + math.Sqrt(l.estimate)
			l.estimate = l.estimate*(1-adaptiveSmoothing) + next*adaptiveSmoothing
		}
		l.estimate = max(l.min, min(l.max, l.estimate))
		l.limit.Store(int64(l.estimate))
	}
	l.windowStart = now
	l.samples, l.sum, l.low, l.drops, l.peak = 0, 0, 0, 0, 0
}
