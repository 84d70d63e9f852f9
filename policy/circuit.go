package policy

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/httpx"
)

func init() { register(gatehouse.PolicyCircuitBreaker, buildCircuitBreaker) }

var errCircuitOpen = gatehouse.Errorf(gatehouse.EUNAVAILABLE,
	"The circuit for this service is open after repeated upstream failures.")

// circuitBreaker applies each of a level's circuit-breaker policies: a
// request goes on only if every circuit of the service that is to answer
// (Request.ServiceID, a traffic split's choice included) lets it.
type circuitBreaker struct {
	// services are Build.Answering, the route's own service first;
	// circuits[i] are those of services[i], one per policy.
	services []string
	circuits [][]*circuit
}

func buildCircuitBreaker(b *Build, pols []*gatehouse.Policy) (Step, error) {
	cfgs, err := configs[gatehouse.CircuitBreakerConfig](pols)
	if err != nil {
		return nil, err
	}
	s := &circuitBreaker{services: b.Answering}
	for _, svc := range b.Answering {
		var circuits []*circuit
		for i, c := range cfgs {
			// One circuit per policy and service: every route that gets
			// the policy and sends to the service shares it, so that a
			// canary's failures open the canary's circuit, not its
			// stable service's.
			circuits = append(circuits, Get(b.Env.State, b.serviceStateKey(pols[i], svc), func() *circuit {
				return newCircuit(c, b.Env.Now)
			}))
		}
		s.circuits = append(s.circuits, circuits)
	}
	return s, nil
}

// serviceStateKey names state belonging to policy p on service svc,
// shared by the routes that send to it.
func (b *Build) serviceStateKey(p *gatehouse.Policy, svc string) string {
	return b.StateKey(p, false) + "/service/" + svc
}

func (s *circuitBreaker) Check(r *Request) error {
	// The route's own service is first: a route without a split finds
	// it at once, and so does a Request made without a ServiceID.
	circuits := s.circuits[0]
	for i, svc := range s.services {
		if svc == r.ServiceID {
			circuits = s.circuits[i]
			break
		}
	}
	for _, c := range circuits {
		done, wait := c.admit()
		if done == nil {
			r.W.Header()["Retry-After"] = []string{strconv.FormatInt(httpx.RetrySeconds(wait), 10)}
			// A trial taken under an earlier circuit is given back by the
			// Chain, which finishes r (status 0) on a refusal.
			return errCircuitOpen
		}
		r.OnDone(done)
	}
	return nil
}

// circuit is one service's breaker on this node.
//
// Closed: openUntil is 0 and failures counts 5xx answers in a row. At
// threshold the circuit opens: openUntil is when it turns half-open.
// Half-open (openUntil reached): the request that wins trial goes on, all
// others are refused until its outcome closes the circuit (any status
// below 500) or opens it again (5xx, or a response broken off mid-body).
// Status 0, the client gone before the exchange ended, and gatehouse's own
// 400/408/413 to a client whose body failed say nothing of the upstream:
// they neither count as a failure nor reset the count, and a trial that
// ends so lets the next request be the trial.
type circuit struct {
	openUntil atomic.Int64 // unix nanoseconds; 0: closed
	failures  atomic.Int64
	trial     atomic.Bool

	threshold int64
	open      time.Duration
	now       func() time.Time
	// closedDone and trialDone are built once, so that OnDone does not
	// allocate a closure per request.
	closedDone, trialDone func(Outcome)
	mu                    sync.Mutex // serialises opening from closed
}

func newCircuit(c *gatehouse.CircuitBreakerConfig, now func() time.Time) *circuit {
	cb := &circuit{threshold: int64(c.Failures), open: time.Duration(c.OpenSeconds) * time.Second, now: now}
	cb.closedDone, cb.trialDone = cb.closedOutcome, cb.trialOutcome
	return cb
}

// admit returns what to call with the exchange's outcome if the request
// may go on, or nil and how long until the circuit turns half-open.
func (c *circuit) admit() (func(Outcome), time.Duration) {
	until := c.openUntil.Load()
	if until == 0 {
		return c.closedDone, 0
	}
	if wait := time.Duration(until - c.now().UnixNano()); wait > 0 {
		return nil, wait
	}
	if c.trial.CompareAndSwap(false, true) {
		return c.trialDone, 0
	}
	// The trial is out: its outcome decides, soon.
	return nil, 0
}

// Judgements of the upstream from one exchange.
const (
	noJudgement = iota // the client went away, or failed the exchange itself
	succeeded
	failed
)

// judge judges the upstream by o: a 5xx or a response broken off
// mid-body is a failure; gatehouse's own answers to a client's faulty body,
// and exchanges the client abandoned, say nothing of it.
func judge(o Outcome) int {
	switch {
	case o.UpstreamBroke:
		return failed
	case o.ClientFault || o.Status == 0:
		return noJudgement
	case o.Status < 500:
		return succeeded
	}
	return failed
}

// closedOutcome counts an exchange let on while the circuit was closed.
// Outcomes that arrive after the circuit opened are stale: only the trial
// decides then.
func (c *circuit) closedOutcome(o Outcome) {
	switch judge(o) {
	case noJudgement:
	case succeeded:
		if c.failures.Load() != 0 {
			c.failures.Store(0)
		}
	default:
		if c.failures.Add(1) < c.threshold {
			return
		}
		c.mu.Lock()
		if c.openUntil.Load() == 0 && c.failures.Load() >= c.threshold {
			c.failures.Store(0)
			c.openUntil.Store(c.now().Add(c.open).UnixNano())
		}
		c.mu.Unlock()
	}
}

// trialOutcome decides the circuit on the half-open trial's outcome.
func (c *circuit) trialOutcome(o Outcome) {
	switch judge(o) {
	case noJudgement:
	case succeeded:
		c.failures.Store(0)
		c.openUntil.Store(0)
	default:
		c.openUntil.Store(c.now().Add(c.open).UnixNano())
	}
	// Last, so that no second trial starts before the circuit changed.
	c.trial.Store(false)
}
