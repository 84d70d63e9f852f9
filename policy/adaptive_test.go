package policy

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

const shedding = "The gateway is shedding load; retry later."

// adaptiveSim drives one route's adaptive limit with synthetic exchanges
// on a fake clock.
type adaptiveSim struct {
	t     *testing.T
	set   *Set
	clock *testClock
	limit *adaptiveLimit
}

func newAdaptiveSim(t *testing.T, config string) *adaptiveSim {
	t.Helper()
	o := newOverloadRev(t, "r1:s1")
	o.policy(`{"name":"shed","type":"adaptive-concurrency","config":`+config+`}`, "r1")
	clock := newOverloadClock()
	set := o.compile(NewState(), clock)
	return &adaptiveSim{t: t, set: set, clock: clock, limit: set.Chain("r1").steps[0].(*adaptiveConcurrency).limits[0]}
}

func (s *adaptiveSim) current() int64 { return s.limit.limit.Load() }

// round fills the limit with n requests (0: as many as the limit admits),
// lets latency pass, and ends them all with status.
func (s *adaptiveSim) round(n int64, latency time.Duration, status int) {
	s.t.Helper()
	if n == 0 {
		n = s.current()
	}
	reqs := make([]*overloadReq, n)
	for i := range reqs {
		reqs[i] = runOverload(s.t, s.set, "r1")
		reqs[i].wantAdmitted(s.t)
	}
	s.clock.Advance(latency)
	for _, q := range reqs {
		q.end(status, latency)
	}
}

func TestAdaptiveLimitShedsWhenLatencyRises(t *testing.T) {
	s := newAdaptiveSim(t, `{"min_limit":4,"max_limit":1000,"initial_limit":20,"retry_after_seconds":3}`)

	// Latency steady at its baseline: the limit, kept full, grows.
	for range 10 {
		s.round(0, 10*time.Millisecond, 200)
	}
	grown := s.current()
	if grown <= 20 {
		t.Fatalf("limit %d after full rounds at a steady latency; want it grown above the initial 20", grown)
	}

	// At the limit, one more is shed at once.
	held := make([]*overloadReq, grown)
	for i := range held {
		held[i] = runOverload(t, s.set, "r1")
		held[i].wantAdmitted(t)
	}
	runOverload(t, s.set, "r1").wantRefused(t, gatehouse.EUNAVAILABLE, shedding, "3")
	s.clock.Advance(10 * time.Millisecond)
	for _, q := range held {
		q.end(200, 10*time.Millisecond)
	}

	// Latency four times the baseline: queueing. The limit falls (after
	// one round: the window open when latency rose holds samples from
	// before).
	s.round(0, 40*time.Millisecond, 200)
	prev := s.current()
	for range 30 {
		s.round(0, 40*time.Millisecond, 200)
		if now := s.current(); now > prev {
			t.Fatalf("limit rose from %d to %d while latency was 4x its baseline", prev, now)
		}
		prev = s.current()
	}
	if prev > grown/2 {
		t.Fatalf("limit %d after 30 rounds at 4x latency; want at most half of %d", prev, grown)
	}
	if prev < 4 {
		t.Fatalf("limit %d; want it kept at min_limit 4 or above", prev)
	}

	// Latency back at its baseline: the limit recovers.
	for i := 0; s.current() < 20; i++ {
		if i == 300 {
			t.Fatalf("limit %d after %d rounds at the baseline latency; want it back at 20", s.current(), i)
		}
		s.round(0, 10*time.Millisecond, 200)
	}
}

func TestAdaptiveLimitBacksOffOnUpstream5xxAndIgnoresAborts(t *testing.T) {
	s := newAdaptiveSim(t, `{"min_limit":4,"max_limit":1000,"initial_limit":20}`)
	// Aborted exchanges (status 0) say nothing of the upstream.
	for range 5 {
		s.round(0, 10*time.Millisecond, 0)
	}
	if got := s.current(); got != 20 {
		t.Fatalf("limit %d after aborted exchanges only; want the initial 20", got)
	}
	// Fast 5xx answers: the limit shrinks though the latency is low.
	for range 5 {
		s.round(0, time.Millisecond, 503)
	}
	if got := s.current(); got >= 20 || got < 4 {
		t.Fatalf("limit %d after rounds of 503s; want below 20, at least 4", got)
	}
}

func TestAdaptiveLimitHoldsWhileUnderused(t *testing.T) {
	s := newAdaptiveSim(t, `{"min_limit":4,"max_limit":1000,"initial_limit":20}`)
	for range 3 {
		s.round(0, 10*time.Millisecond, 200)
	}
	// The window open when the full rounds ended may still close on them.
	for range adaptiveWindowSamples {
		s.round(1, 10*time.Millisecond, 200)
	}
	before := s.current()
	// One request at a time, slow or fast: the limit is not what bounds
	// them, so it learns nothing from them.
	for range 50 {
		s.round(1, 100*time.Millisecond, 200)
	}
	for range 50 {
		s.round(1, time.Millisecond, 200)
	}
	if got := s.current(); got != before {
		t.Fatalf("limit moved from %d to %d with one request in flight at a time", before, got)
	}
}

func TestAdaptiveLimitIsSharedByRoutesAndSurvivesRedeploy(t *testing.T) {
	o := newOverloadRev(t, "r1:s1", "r2:s2")
	o.policy(`{"name":"shed","type":"adaptive-concurrency","config":{"min_limit":1,"max_limit":1,"initial_limit":1}}`, "r1", "r2")
	state, clock := NewState(), newOverloadClock()
	set := o.compile(state, clock)

	held := runOverload(t, set, "r1")
	held.wantAdmitted(t)
	runOverload(t, set, "r2").wantRefused(t, gatehouse.EUNAVAILABLE, shedding, "1")

	next := o.compile(state, clock)
	state.Sweep()
	runOverload(t, next, "r2").wantRefused(t, gatehouse.EUNAVAILABLE, shedding, "1")
	held.end(200, time.Millisecond)
	runOverload(t, next, "r2").wantAdmitted(t)
}

func TestAdaptiveLimitLearnsNothingFromAClientsFaultyBody(t *testing.T) {
	l := &adaptiveLimit{}
	l.limit.Store(10)
	l.acquire()
	l.done(Outcome{Status: 408, ClientFault: true, Latency: time.Hour})
	if l.samples != 0 || l.drops != 0 || l.inflight.Load() != 0 {
		t.Fatalf("after a client's stalled body: %d samples, %d drops, %d in flight; want none, the slot released",
			l.samples, l.drops, l.inflight.Load())
	}
	l.acquire()
	l.done(Outcome{UpstreamBroke: true})
	if l.drops != 1 {
		t.Fatalf("after an upstream broke off mid-response: %d drops; want 1", l.drops)
	}
}
