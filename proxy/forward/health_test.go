package forward

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// flakyUpstream hangs up without answering while fail is set.
func flakyUpstream(t *testing.T, name string, fail *atomic.Bool) Target {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				c.Close()
			}
			return
		}
		w.Header().Set("X-Upstream", name)
		io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	return Target{URL: mustURL(t, srv.URL), Weight: 1}
}

func TestPassiveEjectionAndRecovery(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	clk := newClock()
	p := newTestPool(t, Config{Targets: []Target{flakyUpstream(t, "a", &fail)}, MaxFails: 2, EjectFor: 10 * time.Second, now: clk.Now, maxEjectedPercent: 100})

	steps := []struct {
		desc           string
		advance        time.Duration
		heal           bool
		wantStatus     int
		wantRetryAfter time.Duration
	}{
		{desc: "first failure", wantStatus: 502},
		{desc: "second failure ejects", wantStatus: 502},
		{desc: "ejected: 503 until the trial", wantStatus: 503, wantRetryAfter: 10 * time.Second},
		{desc: "still resting", advance: 4 * time.Second, wantStatus: 503, wantRetryAfter: 6 * time.Second},
		{desc: "Retry-After rounds up to whole seconds", advance: 500 * time.Millisecond, wantStatus: 503, wantRetryAfter: 6 * time.Second},
		{desc: "the trial fails", advance: 5500 * time.Millisecond, wantStatus: 502},
		{desc: "ejected again", wantStatus: 503, wantRetryAfter: 10 * time.Second},
		{desc: "the trial succeeds", advance: 10 * time.Second, heal: true, wantStatus: 200},
		{desc: "back in rotation", wantStatus: 200},
	}
	for _, s := range steps {
		clk.Advance(s.advance)
		if s.heal {
			fail.Store(false)
		}
		r := get(t, p)
		if r.status != s.wantStatus {
			t.Fatalf("%s: got status %d (%v); want %d", s.desc, r.status, r.err, s.wantStatus)
		}
		d, ok := RetryAfter(r.err)
		if ok != (s.wantRetryAfter > 0) || d != s.wantRetryAfter {
			t.Errorf("%s: got Retry-After %v (%v); want %v", s.desc, d, ok, s.wantRetryAfter)
		}
	}
	if n := p.targets[0].fails.Load(); n != 0 {
		t.Errorf("got %d failures after the successful trial; want 0", n)
	}
}

func TestEjectedTargetIsSkipped(t *testing.T) {
	var fail, never atomic.Bool
	fail.Store(true)
	clk := newClock()
	p := newTestPool(t, Config{Targets: []Target{flakyUpstream(t, "a", &fail), flakyUpstream(t, "b", &never)}, MaxFails: 1, now: clk.Now})
	if r := get(t, p); r.status != 502 {
		t.Fatalf("got status %d; want the first pick, a, to fail", r.status)
	}
	for i := range 10 {
		if r := get(t, p); r.upstream != "b" {
			t.Fatalf("request %d: got %q (%d); want b while a is ejected", i, r.upstream, r.status)
		}
	}
	fail.Store(false)
	clk.Advance(DefaultEjectFor)
	var got strings.Builder
	for range 4 {
		got.WriteString(get(t, p).upstream)
	}
	if !strings.Contains(got.String(), "a") {
		t.Errorf("got %q after a's rest; want a back", got.String())
	}
}

func TestHalfOpenLetsOneTrialThrough(t *testing.T) {
	u, arrived, release := blockingUpstream(t)
	clk := newClock()
	p := newTestPool(t, Config{Targets: []Target{{URL: u, Weight: 1}}, MaxFails: 1, EjectFor: time.Second, now: clk.Now, maxEjectedPercent: 100})
	p.failed(&p.targets[0], failRefused) // ejected as if a request had failed
	clk.Advance(time.Second)

	trial := make(chan result, 1)
	go func() { trial <- get(t, p) }()
	<-arrived
	r := get(t, p)
	if r.status != 503 {
		t.Errorf("got status %d during the trial; want 503: one trial at a time", r.status)
	}
	if d, _ := RetryAfter(r.err); d != time.Second {
		t.Errorf("got Retry-After %v; want 1s, the next trial", d)
	}
	release()
	if r := <-trial; r.status != 200 {
		t.Fatalf("trial got %d (%v); want 200", r.status, r.err)
	}
	if r := get(t, p); r.status != 200 {
		t.Errorf("got %d after a successful trial; want 200", r.status)
	}
}

// healthUpstream answers /health with 200 or 503 as healthy says, and
// counts probes.
func healthUpstream(t *testing.T, name string, healthy *atomic.Bool, probes *atomic.Int64) Target {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			probes.Add(1)
			if r.Header.Get("User-Agent") != "gatehouse-health-check" {
				t.Errorf("probe User-Agent %q", r.Header.Get("User-Agent"))
			}
			if !healthy.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		w.Header().Set("X-Upstream", name)
	}))
	t.Cleanup(srv.Close)
	// The base path is not applied to probes.
	return Target{URL: mustURL(t, srv.URL+"/app"), Weight: 1}
}

// eventually polls cond for up to 5s: a bound for "did not hang", not a
// timing assertion.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within 5s", what)
		}
	}
}

func checkLoopRunning() bool {
	buf := make([]byte, 1<<20)
	return strings.Contains(string(buf[:runtime.Stack(buf, true)]), "forward.(*Pool).checkLoop")
}

func TestActiveHealthCheckMarksDownAndUpAndStopsOnClose(t *testing.T) {
	var aHealthy, bHealthy atomic.Bool
	var aProbes, bProbes atomic.Int64
	aHealthy.Store(true)
	bHealthy.Store(true)
	ts := NewTransports()
	p := NewPool(context.Background(), Config{
		Targets:     []Target{healthUpstream(t, "a", &aHealthy, &aProbes), healthUpstream(t, "b", &bHealthy, &bProbes)},
		HealthCheck: &HealthCheck{Path: "/health", Interval: 5 * time.Millisecond, Timeout: time.Second, HealthyThreshold: 2, UnhealthyThreshold: 2},
	}, ts)
	defer ts.CloseIdle()
	defer p.Close()

	aHealthy.Store(false)
	eventually(t, "a marked down", p.targets[0].down.Load)
	for i := range 6 {
		if r := get(t, p); r.upstream != "b" {
			t.Fatalf("request %d: got %q (%d); want b while a is down", i, r.upstream, r.status)
		}
	}

	bHealthy.Store(false)
	eventually(t, "b marked down", p.targets[1].down.Load)
	r := get(t, p)
	if r.status != 503 {
		t.Fatalf("got %d with every target down; want 503", r.status)
	}
	if d, ok := RetryAfter(r.err); !ok || d != time.Second {
		t.Errorf("got Retry-After %v; want 1s (the next check, rounded up)", d)
	}

	aHealthy.Store(true)
	bHealthy.Store(true)
	eventually(t, "a and b marked up", func() bool { return !p.targets[0].down.Load() && !p.targets[1].down.Load() })
	if r := get(t, p); r.status != 200 {
		t.Errorf("got %d after recovery; want 200", r.status)
	}

	p.Close()
	// Close waited for the goroutine's last act, closing done; it may
	// still be returning.
	eventually(t, "the health check goroutine's exit", func() bool { return !checkLoopRunning() })
	before := aProbes.Load() + bProbes.Load()
	time.Sleep(50 * time.Millisecond) // ten intervals
	if after := aProbes.Load() + bProbes.Load(); after != before {
		t.Errorf("got %d probes after Close; want 0", after-before)
	}
}

func TestActiveHealthCheckStopsWhenContextDone(t *testing.T) {
	var healthy atomic.Bool
	var probes atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	p := NewPool(ctx, Config{
		Targets:     []Target{healthUpstream(t, "a", &healthy, &probes)},
		HealthCheck: &HealthCheck{Path: "/health", Interval: 5 * time.Millisecond},
	}, nil)
	defer p.Close()
	eventually(t, "a probe", func() bool { return probes.Load() > 0 })
	cancel()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the health check goroutine did not stop when its context was done")
	}
	eventually(t, "the health check goroutine's exit", func() bool { return !checkLoopRunning() })
}

// TestFailingRequestsNeverEjectMoreThanHalfTheTargets: requests a client
// can craft to make targets fail eject at most half of them (rounded
// down), so the service is never taken offline by passive health: a pool
// of one target keeps answering with the upstream's own failures, never
// 503.
func TestFailingRequestsNeverEjectMoreThanHalfTheTargets(t *testing.T) {
	for _, tc := range []struct{ targets, maxEjected int }{{1, 0}, {2, 1}, {3, 1}, {4, 2}} {
		t.Run(strconv.Itoa(tc.targets)+" targets", func(t *testing.T) {
			var fail atomic.Bool
			fail.Store(true)
			var ts []Target
			for i := range tc.targets {
				ts = append(ts, flakyUpstream(t, strconv.Itoa(i), &fail))
			}
			p := newTestPool(t, Config{Targets: ts, MaxFails: 1, now: newClock().Now})
			for i := range 10 * tc.targets {
				if r := get(t, p); r.status != 502 {
					t.Fatalf("request %d: got %d (%v); want the upstream's failure, 502, not a service taken offline", i, r.status, r.err)
				}
			}
			ejected := 0
			for i := range p.targets {
				if p.targets[i].ejectedUntil.Load() != 0 {
					ejected++
				}
			}
			if ejected != tc.maxEjected {
				t.Errorf("got %d of %d targets ejected; want %d", ejected, tc.targets, tc.maxEjected)
			}
			fail.Store(false)
			if r := get(t, p); r.status != 200 {
				t.Errorf("once healed: got %d; want 200", r.status)
			}
		})
	}
}

// stallingBody is a client's body that stalls past the server's read
// deadline, as net/http shows it in either order: over HTTP/1.x the
// request's context is canceled from inside the read, before the read
// returns (the exchange may fail on the cancel first); over HTTP/2 the
// read fails first.
type stallingBody struct {
	cancelFirst bool
	cancel      context.CancelFunc
	returnRead  chan struct{} // with cancelFirst: the read may return
	failed      atomic.Bool
}

func (b *stallingBody) Read([]byte) (int, error) {
	if b.cancelFirst {
		b.cancel()
		<-b.returnRead
	}
	b.failed.Store(true)
	return 0, os.ErrDeadlineExceeded
}

func (b *stallingBody) Close() error       { return nil }
func (b *stallingBody) ClientFailed() bool { return b.failed.Load() }

// A client stalling mid-body says nothing about the upstream, whichever
// the exchange sees first: the cancel of the request's context or the
// failed read. Neither counts against the target's health.
func TestStallingClientNeverCountsAgainstTheUpstream(t *testing.T) {
	for _, tc := range []struct {
		name        string
		cancelFirst bool
	}{
		{"context canceled before the read returns (HTTP/1.x)", true},
		{"read fails first (HTTP/2)", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, "a")
			p := newTestPool(t, Config{Targets: []Target{up.target(t, 1)}, MaxFails: 1, EjectFor: time.Hour, maxEjectedPercent: 100})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			body := &stallingBody{cancelFirst: tc.cancelFirst, cancel: cancel, returnRead: make(chan struct{})}
			r := request(t, ctx, http.MethodPost, "/", body)
			r.ContentLength = 100
			_, _, err := p.RoundTrip(r)
			close(body.returnRead) // only now, after the exchange has decided
			if err == nil {
				t.Fatal("RoundTrip succeeded with a body that failed")
			}
			if n := p.targets[0].fails.Load(); n != 0 {
				t.Fatalf("the target counts %d failures (%v); want none: the client failed", n, err)
			}
			if r := get(t, p); r.status != http.StatusOK {
				t.Fatalf("next request: %d (%v); want 200 from the target, still in rotation", r.status, r.err)
			}
		})
	}
}
