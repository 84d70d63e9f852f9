package policy

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/testenv"
)

func newOverloadClock() *testClock {
	return testenv.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
}

// overloadRev is a revision to compile: services s1 and s2, routes on
// them, and policies listed by some of the routes.
type overloadRev struct {
	t   *testing.T
	rev *gatehouse.Revision
}

// newOverloadRev returns a revision with services s1 and s2 and the routes
// given as "route:service" pairs.
func newOverloadRev(t *testing.T, routes ...string) *overloadRev {
	t.Helper()
	rev := &gatehouse.Revision{Number: 1}
	for _, id := range []string{"s1", "s2"} {
		rev.Services = append(rev.Services, &gatehouse.Service{Meta: gatehouse.Meta{ID: id}, Name: id, URL: "http://127.0.0.1:1"})
	}
	for _, rs := range routes {
		id, svc, _ := strings.Cut(rs, ":")
		rev.Routes = append(rev.Routes, &gatehouse.Route{Meta: gatehouse.Meta{ID: id}, Name: id,
			Paths: []string{"/" + id + "/*"}, ServiceID: svc, Policies: []string{}})
	}
	return &overloadRev{t: t, rev: rev}
}

// policy adds a policy (JSON, checked as the admin API would) and lists it
// on the named routes.
func (o *overloadRev) policy(js string, routes ...string) *gatehouse.Policy {
	o.t.Helper()
	p := testPolicy(o.t, js, gatehouse.NewID())
	o.rev.Policies = append(o.rev.Policies, p)
	for _, r := range o.rev.Routes {
		for _, id := range routes {
			if r.ID == id {
				r.Policies = append(r.Policies, p.ID)
			}
		}
	}
	return p
}

// compile compiles the revision against state (which outlives it) and clock.
func (o *overloadRev) compile(state *State, clock *testClock) *Set {
	o.t.Helper()
	set, err := Compile(o.rev, &Env{State: state, Now: clock.Now})
	if err != nil {
		o.t.Fatal(err)
	}
	return set
}

// overloadReq is one request through a route's chain.
type overloadReq struct {
	*Request
	w   *httptest.ResponseRecorder
	err error
}

// runOverload sends a request through route's chain; finish it with end.
func runOverload(t *testing.T, set *Set, route string) *overloadReq {
	t.Helper()
	chain := set.Chain(route)
	if chain == nil {
		t.Fatalf("route %s has no policies", route)
	}
	w := httptest.NewRecorder()
	r := NewRequest()
	r.W, r.R, r.RouteID = w, httptest.NewRequest("GET", "/"+route+"/x", nil), route
	t.Cleanup(r.Release)
	return &overloadReq{Request: r, w: w, err: chain.Run(r)}
}

// end finishes an admitted request with status and latency.
func (q *overloadReq) end(status int, latency time.Duration) {
	q.Finish(Outcome{Status: status, Latency: latency})
}

// wantRefused checks a refusal: its code, detail and Retry-After.
func (q *overloadReq) wantRefused(t *testing.T, code gatehouse.Code, detail, retryAfter string) {
	t.Helper()
	var e *gatehouse.Error
	if !errors.As(q.err, &e) {
		t.Fatalf("err = %v; want a %s refusal", q.err, code)
	}
	if e.Code != code || e.Message != detail {
		t.Fatalf("refused with %s %q; want %s %q", e.Code, e.Message, code, detail)
	}
	if got := q.w.Header().Get("Retry-After"); got != retryAfter {
		t.Fatalf("Retry-After %q; want %q", got, retryAfter)
	}
}

func (q *overloadReq) wantAdmitted(t *testing.T) {
	t.Helper()
	if q.err != nil {
		t.Fatalf("refused: %v; want the request let on", q.err)
	}
}

const tooManyInFlight = "Too many requests in flight on this route."

func TestConcurrencyLimitRefusesOverMaxUntilASlotIsReleased(t *testing.T) {
	o := newOverloadRev(t, "r1:s1")
	o.policy(`{"name":"cap","type":"concurrency-limit","config":{"max":2,"retry_after_seconds":7}}`, "r1")
	set := o.compile(NewState(), newOverloadClock())

	first, second := runOverload(t, set, "r1"), runOverload(t, set, "r1")
	first.wantAdmitted(t)
	second.wantAdmitted(t)
	runOverload(t, set, "r1").wantRefused(t, gatehouse.EUNAVAILABLE, tooManyInFlight, "7")

	// Failures and aborts (status 0) release as completions do.
	for _, status := range []int{200, 502, 0} {
		first.end(status, time.Millisecond)
		first = runOverload(t, set, "r1")
		first.wantAdmitted(t)
		runOverload(t, set, "r1").wantRefused(t, gatehouse.EUNAVAILABLE, tooManyInFlight, "7")
	}
}

func TestConcurrencyLimitCountsEachRouteApart(t *testing.T) {
	o := newOverloadRev(t, "r1:s1", "r2:s1")
	o.policy(`{"name":"cap","type":"concurrency-limit","config":{"max":1}}`, "r1", "r2")
	set := o.compile(NewState(), newOverloadClock())

	runOverload(t, set, "r1").wantAdmitted(t)
	runOverload(t, set, "r2").wantAdmitted(t)
	runOverload(t, set, "r1").wantRefused(t, gatehouse.EUNAVAILABLE, tooManyInFlight, "1")
}

func TestConcurrencySlotReleasedWhenALaterPolicyRefuses(t *testing.T) {
	// r1 has a concurrency limit and, later in the chain, an adaptive
	// limit that r2 holds fully; r2 has only the adaptive limit.
	o := newOverloadRev(t, "r1:s1", "r2:s1")
	o.policy(`{"name":"cap","type":"concurrency-limit","config":{"max":1}}`, "r1")
	o.policy(`{"name":"shed","type":"adaptive-concurrency","config":{"min_limit":1,"max_limit":1,"initial_limit":1}}`, "r1", "r2")
	set := o.compile(NewState(), newOverloadClock())

	holder := runOverload(t, set, "r2")
	holder.wantAdmitted(t)
	for range 3 {
		runOverload(t, set, "r1").wantRefused(t, gatehouse.EUNAVAILABLE, "The gateway is shedding load; retry later.", "1")
	}
	holder.end(200, time.Millisecond)
	// Had the refusals kept r1's slot, this would be "too many in flight".
	runOverload(t, set, "r1").wantAdmitted(t)
}

func TestConcurrencyCountSurvivesRedeployOfUnchangedPolicy(t *testing.T) {
	o := newOverloadRev(t, "r1:s1")
	p := o.policy(`{"name":"cap","type":"concurrency-limit","config":{"max":1}}`, "r1")
	state, clock := NewState(), newOverloadClock()
	old := runOverload(t, o.compile(state, clock), "r1")
	old.wantAdmitted(t)

	next := o.compile(state, clock)
	state.Sweep()
	runOverload(t, next, "r1").wantRefused(t, gatehouse.EUNAVAILABLE, tooManyInFlight, "1")
	old.end(200, time.Millisecond)
	runOverload(t, next, "r1").wantAdmitted(t)

	// A changed policy is a new version: it counts afresh.
	p.Version = 2
	changed := o.compile(state, clock)
	runOverload(t, changed, "r1").wantAdmitted(t)
}

func TestOverloadPoliciesDoNotAllocatePerRequest(t *testing.T) {
	o := newOverloadRev(t, "r1:s1")
	o.policy(`{"name":"cap","type":"concurrency-limit","config":{"max":10}}`, "r1")
	o.policy(`{"name":"shed","type":"adaptive-concurrency","config":{}}`, "r1")
	o.policy(`{"name":"cb","type":"circuit-breaker","config":{}}`, "r1")
	chain := o.compile(NewState(), newOverloadClock()).Chain("r1")
	r := &Request{W: httptest.NewRecorder(), R: httptest.NewRequest("GET", "/r1/x", nil)}
	allocs := testing.AllocsPerRun(1000, func() {
		if err := chain.Run(r); err != nil {
			t.Fatal(err)
		}
		r.Finish(Outcome{Status: 200, Latency: time.Millisecond})
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per admitted request; want 0", allocs)
	}
}
