package policy

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

const circuitOpen = "The circuit for this service is open after repeated upstream failures."

// newBreaker compiles routes r1 and r2 on service s1 and r3 on s2, all
// with a circuit breaker of 3 failures and 30 s open.
func newBreaker(t *testing.T) (*Set, *testClock) {
	t.Helper()
	o := newOverloadRev(t, "r1:s1", "r2:s1", "r3:s2")
	o.policy(`{"name":"cb","type":"circuit-breaker","config":{"failures":3,"open_seconds":30}}`, "r1", "r2", "r3")
	clock := newOverloadClock()
	return o.compile(NewState(), clock), clock
}

// exchange lets a request through route and ends it with status.
func exchange(t *testing.T, set *Set, route string, status int) {
	t.Helper()
	q := runOverload(t, set, route)
	q.wantAdmitted(t)
	q.end(status, time.Millisecond)
}

func TestCircuitOpensOnConsecutive5xxOnly(t *testing.T) {
	set, _ := newBreaker(t)
	// A success resets the count; status 0 (the client went away) and 4xx
	// are no failures, and status 0 does not reset the count either.
	for _, status := range []int{502, 503, 200, 500, 0, 504, 404} {
		exchange(t, set, "r1", status)
	}
	for _, status := range []int{500, 0, 502} {
		exchange(t, set, "r1", status)
	}
	exchange(t, set, "r1", 503) // the third in a row: the circuit opens
	runOverload(t, set, "r1").wantRefused(t, gatehouse.EUNAVAILABLE, circuitOpen, "30")
}

func TestOpenCircuitRefusesUntilHalfOpenTrialSucceeds(t *testing.T) {
	set, clock := newBreaker(t)
	for range 3 {
		exchange(t, set, "r1", 502)
	}
	// Retry-After counts down to half-open, rounded up.
	runOverload(t, set, "r1").wantRefused(t, gatehouse.EUNAVAILABLE, circuitOpen, "30")
	clock.Advance(10*time.Second + time.Millisecond)
	runOverload(t, set, "r1").wantRefused(t, gatehouse.EUNAVAILABLE, circuitOpen, "20")
	clock.Advance(20 * time.Second)

	trial := runOverload(t, set, "r1")
	trial.wantAdmitted(t)
	// Exactly one trial: the rest wait for its outcome.
	runOverload(t, set, "r1").wantRefused(t, gatehouse.EUNAVAILABLE, circuitOpen, "1")
	runOverload(t, set, "r2").wantRefused(t, gatehouse.EUNAVAILABLE, circuitOpen, "1")
	trial.end(200, time.Millisecond)
	for range 5 {
		exchange(t, set, "r2", 200)
	}
}

func TestHalfOpenTrialFailureReopensCircuit(t *testing.T) {
	set, clock := newBreaker(t)
	for range 3 {
		exchange(t, set, "r1", 500)
	}
	clock.Advance(30 * time.Second)
	exchange(t, set, "r1", 504)
	runOverload(t, set, "r1").wantRefused(t, gatehouse.EUNAVAILABLE, circuitOpen, "30")
	clock.Advance(30 * time.Second)
	exchange(t, set, "r1", 200)
	exchange(t, set, "r1", 200)
}

func TestAbandonedHalfOpenTrialLetsTheNextRequestTry(t *testing.T) {
	set, clock := newBreaker(t)
	for range 3 {
		exchange(t, set, "r1", 500)
	}
	clock.Advance(30 * time.Second)
	exchange(t, set, "r1", 0)
	// Neither closed nor reopened: still half-open, so this is the trial.
	trial := runOverload(t, set, "r1")
	trial.wantAdmitted(t)
	runOverload(t, set, "r1").wantRefused(t, gatehouse.EUNAVAILABLE, circuitOpen, "1")
	trial.end(200, time.Millisecond)
	exchange(t, set, "r1", 200)
}

func TestCircuitIsSharedByTheRoutesOfOneService(t *testing.T) {
	set, _ := newBreaker(t)
	exchange(t, set, "r1", 502)
	exchange(t, set, "r2", 502)
	exchange(t, set, "r3", 502) // another service: its own circuit
	exchange(t, set, "r1", 502)
	runOverload(t, set, "r2").wantRefused(t, gatehouse.EUNAVAILABLE, circuitOpen, "30")
	exchange(t, set, "r3", 200)
}

func TestStaleOutcomesDoNotDecideAnOpenCircuit(t *testing.T) {
	set, clock := newBreaker(t)
	// Let on while closed, ending only after the circuit opened.
	late := []*overloadReq{runOverload(t, set, "r1"), runOverload(t, set, "r1")}
	for range 3 {
		exchange(t, set, "r1", 502)
	}
	late[0].end(200, time.Millisecond)
	runOverload(t, set, "r1").wantRefused(t, gatehouse.EUNAVAILABLE, circuitOpen, "30")
	clock.Advance(30 * time.Second)
	trial := runOverload(t, set, "r1")
	trial.wantAdmitted(t)
	late[1].end(200, time.Millisecond)
	runOverload(t, set, "r1").wantRefused(t, gatehouse.EUNAVAILABLE, circuitOpen, "1")
	trial.end(502, time.Millisecond)
	runOverload(t, set, "r1").wantRefused(t, gatehouse.EUNAVAILABLE, circuitOpen, "30")
}

func TestCircuitJudgesTheUpstreamNotTheClient(t *testing.T) {
	for _, tc := range []struct {
		desc string
		o    Outcome
		want int
	}{
		{"an answer below 500", Outcome{Status: 404}, succeeded},
		{"a 5xx", Outcome{Status: 503}, failed},
		{"the client gone", Outcome{Status: 0}, noJudgement},
		{"gatehouse's 413 to a body over the limit", Outcome{Status: 413, ClientFault: true}, noJudgement},
		{"gatehouse's 400 to a broken body", Outcome{Status: 400, ClientFault: true}, noJudgement},
		{"the upstream broke off mid-response", Outcome{Status: 0, UpstreamBroke: true}, failed},
	} {
		if got := judge(tc.o); got != tc.want {
			t.Errorf("%s: judged %d; want %d", tc.desc, got, tc.want)
		}
	}
}
