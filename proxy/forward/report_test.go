package forward

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// condition is what a test compares of a target's health.
type condition struct {
	state   string
	since   time.Time
	trialAt time.Time
	failure gatehouse.TargetFailure // zero: none
}

func conditionOf(th gatehouse.TargetHealth) condition {
	c := condition{state: th.State, since: th.Since, trialAt: th.TrialAt}
	if th.LastFailure != nil {
		c.failure = *th.LastFailure
	}
	return c
}

// TestHealthTellsPassiveEjectionSinceWhenAndWhy: a target's state changes
// when passive health ejects it and when its trial brings it back, each
// time with its time; the failure that started the run, then the one that
// ejected it, are its last failure, with their cause in words.
func TestHealthTellsPassiveEjectionSinceWhenAndWhy(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	clk := newClock()
	t0 := clk.Now().UTC()
	p := newTestPool(t, Config{Targets: []Target{flakyUpstream(t, "a", &fail), {URL: mustURL(t, "http://127.0.0.1:1"), Weight: 0}},
		MaxFails: 2, EjectFor: 10 * time.Second, now: clk.Now, maxEjectedPercent: 100})
	closed := func(at time.Time) gatehouse.TargetFailure {
		return gatehouse.TargetFailure{At: at, Check: gatehouse.CheckPassive, Cause: "closed without answering"}
	}
	for _, s := range []struct {
		desc    string
		advance time.Duration
		heal    bool
		request bool
		want    condition
	}{
		{desc: "as built", want: condition{state: gatehouse.TargetHealthy, since: t0}},
		{desc: "a first failure", advance: time.Second, request: true,
			want: condition{state: gatehouse.TargetHealthy, since: t0, failure: closed(t0.Add(time.Second))}},
		{desc: "the second ejects", advance: time.Second, request: true,
			want: condition{state: gatehouse.TargetEjected, since: t0.Add(2 * time.Second), trialAt: t0.Add(12 * time.Second), failure: closed(t0.Add(2 * time.Second))}},
		{desc: "the trial brings it back", advance: 10 * time.Second, heal: true, request: true,
			want: condition{state: gatehouse.TargetHealthy, since: t0.Add(12 * time.Second), failure: closed(t0.Add(2 * time.Second))}},
	} {
		clk.Advance(s.advance)
		fail.Store(!s.heal)
		if s.request {
			get(t, p)
		}
		targets, active, passive := p.Health()
		if got := conditionOf(targets[0]); got != s.want || active || !passive {
			t.Fatalf("%s: got %+v (active %v, passive %v); want %+v, passive checks only", s.desc, got, active, passive, s.want)
		}
		if d := targets[1]; d.State != gatehouse.TargetDisabled || d.Weight != 0 {
			t.Fatalf("%s: the target of weight 0 is %+v; want disabled", s.desc, d)
		}
	}
}

// TestHealthTellsWhatTheActiveChecksFound: a target whose probes fail is
// unhealthy, since the probe that took it down, with the probe's cause
// (an answer's status, a refused connection); one whose probes pass again
// is healthy from the probe that brought it back.
func TestHealthTellsWhatTheActiveChecksFound(t *testing.T) {
	var healthy atomic.Bool
	var probes atomic.Int64
	healthy.Store(true)
	p := newTestPool(t, Config{
		Targets:     []Target{healthUpstream(t, "a", &healthy, &probes), {URL: refusedURL(t), Weight: 1}},
		HealthCheck: &HealthCheck{Path: "/health", Interval: 5 * time.Millisecond, Timeout: time.Second, HealthyThreshold: 1, UnhealthyThreshold: 2},
	})
	state := func(i int) gatehouse.TargetHealth { ts, _, _ := p.Health(); return ts[i] }
	eventually(t, "the refused target marked down", func() bool { return state(1).State == gatehouse.TargetUnhealthy })
	if f := state(1).LastFailure; f == nil || f.Check != gatehouse.CheckActive || f.Cause != "connection refused" {
		t.Errorf("the refused target's last failure %+v; want an active check's connection refused", f)
	}
	// Probes that keep failing alike keep the first one's time: the
	// figures a node publishes do not change at every probe.
	first := state(1).LastFailure
	for n := probes.Load() + 3; probes.Load() < n; {
		time.Sleep(5 * time.Millisecond)
	}
	if again := state(1).LastFailure; again == nil || !again.At.Equal(first.At) {
		t.Errorf("the refused target's last failure %+v after more probes; want the first's time %v kept", again, first.At)
	}
	before := time.Now()
	healthy.Store(false)
	eventually(t, "a marked down", func() bool { return state(0).State == gatehouse.TargetUnhealthy })
	down := state(0)
	if f := down.LastFailure; f == nil || f.Check != gatehouse.CheckActive || f.Cause != "answered 503" || down.Since.Before(before) {
		t.Errorf("a down: %+v, last failure %+v; want since it went down, an active check's answered 503", down, f)
	}
	healthy.Store(true)
	eventually(t, "a marked up", func() bool { return state(0).State == gatehouse.TargetHealthy })
	if up := state(0); !up.Since.After(down.Since) || up.LastFailure == nil {
		t.Errorf("a up: %+v; want since after it went down (%v), its last failure kept", up, down.Since)
	}
	if _, active, passive := p.Health(); !active || !passive {
		t.Errorf("active %v, passive %v; want both", active, passive)
	}
}
