package policy

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/testenv"
)

func newRLClock() *testClock {
	return testenv.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
}

// rlRevision is a revision with routes r1 and r2, each listing
// every policy given (as JSON, with an id), checked and normalised as the
// admin API would store them.
func rlRevision(t testing.TB, policies ...string) *gatehouse.Revision {
	t.Helper()
	rev := &gatehouse.Revision{Number: 1}
	var ids []string
	for _, js := range policies {
		p := testPolicy(t, js, "")
		rev.Policies = append(rev.Policies, p)
		ids = append(ids, p.ID)
	}
	for _, id := range []string{"r1", "r2"} {
		rev.Routes = append(rev.Routes, &gatehouse.Route{Meta: gatehouse.Meta{ID: id}, ServiceID: "s", Policies: ids})
	}
	return rev
}

func rlCompile(t testing.TB, rev *gatehouse.Revision, env *Env) *Set {
	t.Helper()
	set, err := Compile(rev, env)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	env.State.Sweep()
	return set
}

// rlClient is who sends a request: an address and maybe a consumer.
type rlClient struct {
	addr     string
	consumer *Consumer
}

var (
	rlAlice = rlClient{addr: "192.0.2.1"}
	rlBob   = rlClient{addr: "192.0.2.2"}
)

// rlAnswer is what the rate-limit Step made of one request.
type rlAnswer struct {
	err    error
	header http.Header
}

func (a rlAnswer) admitted() bool { return a.err == nil }

// String shows the answer as the tests compare it.
func (a rlAnswer) String() string {
	s := "admitted"
	if a.err != nil {
		s = fmt.Sprintf("%s %q Retry-After=%s", gatehouse.ErrorCode(a.err), gatehouse.ErrorMessage(a.err), a.header.Get("Retry-After"))
	}
	if p := a.header.Get("RateLimit-Policy"); p != "" {
		s += " RateLimit-Policy=" + p + " RateLimit=" + a.header.Get("RateLimit")
	}
	return s
}

func rlSend(t testing.TB, set *Set, route string, c rlClient) rlAnswer {
	t.Helper()
	chain := set.Chain(route)
	if chain == nil {
		t.Fatalf("route %s has no policies", route)
	}
	r := NewRequest()
	defer r.Release()
	w := httptest.NewRecorder()
	r.W, r.R, r.RouteID = w, httptest.NewRequest("GET", "/", nil), route
	r.Client, r.Consumer = netip.MustParseAddr(c.addr), c.consumer
	err := chain.Run(r)
	return rlAnswer{err: err, header: w.Header()}
}

func TestRateLimitAdmitsTheBurstThenOneEveryInterval(t *testing.T) {
	type step struct {
		advance time.Duration
		want    string
	}
	for _, tc := range []struct {
		desc   string
		policy string
		steps  []step
	}{{
		desc:   "burst defaults to the period's requests",
		policy: `{"id":"p","name":"api","type":"rate-limit","config":{"requests":6,"per":"minute","by":"route"}}`,
		steps: []step{
			// T = 10 s, τ = 50 s: six at once, then one every 10 s; t is
			// the time until the whole burst is back while some remain.
			{0, `admitted RateLimit-Policy="api";q=6;w=60 RateLimit="api";r=5;t=10`},
			{0, `admitted RateLimit-Policy="api";q=6;w=60 RateLimit="api";r=4;t=20`},
			{0, `admitted RateLimit-Policy="api";q=6;w=60 RateLimit="api";r=3;t=30`},
			{0, `admitted RateLimit-Policy="api";q=6;w=60 RateLimit="api";r=2;t=40`},
			{0, `admitted RateLimit-Policy="api";q=6;w=60 RateLimit="api";r=1;t=50`},
			// None left: t is the wait for the next one.
			{0, `admitted RateLimit-Policy="api";q=6;w=60 RateLimit="api";r=0;t=10`},
			{0, `too-many-requests "Rate limit exceeded: 6 requests per minute." Retry-After=10 RateLimit-Policy="api";q=6;w=60 RateLimit="api";r=0;t=10`},
			{4 * time.Second, `too-many-requests "Rate limit exceeded: 6 requests per minute." Retry-After=6 RateLimit-Policy="api";q=6;w=60 RateLimit="api";r=0;t=6`},
			{5*time.Second + 500*time.Millisecond, `too-many-requests "Rate limit exceeded: 6 requests per minute." Retry-After=1 RateLimit-Policy="api";q=6;w=60 RateLimit="api";r=0;t=1`},
			{500 * time.Millisecond, `admitted RateLimit-Policy="api";q=6;w=60 RateLimit="api";r=0;t=10`},
			{0, `too-many-requests "Rate limit exceeded: 6 requests per minute." Retry-After=10 RateLimit-Policy="api";q=6;w=60 RateLimit="api";r=0;t=10`},
			// Idle for a whole period: the burst is whole again.
			{time.Minute, `admitted RateLimit-Policy="api";q=6;w=60 RateLimit="api";r=5;t=10`},
		},
	}, {
		desc:   "a burst smaller than the requests spreads them out",
		policy: `{"id":"p","name":"api","type":"rate-limit","config":{"requests":10,"per":"second","burst":2,"by":"route"}}`,
		steps: []step{
			// T = 100 ms, τ = 100 ms.
			{0, `admitted RateLimit-Policy="api";q=10;w=1 RateLimit="api";r=1;t=1`},
			{0, `admitted RateLimit-Policy="api";q=10;w=1 RateLimit="api";r=0;t=1`},
			{0, `too-many-requests "Rate limit exceeded: 10 requests per second." Retry-After=1 RateLimit-Policy="api";q=10;w=1 RateLimit="api";r=0;t=1`},
			{100 * time.Millisecond, `admitted RateLimit-Policy="api";q=10;w=1 RateLimit="api";r=0;t=1`},
			{0, `too-many-requests "Rate limit exceeded: 10 requests per second." Retry-After=1 RateLimit-Policy="api";q=10;w=1 RateLimit="api";r=0;t=1`},
			{200 * time.Millisecond, `admitted RateLimit-Policy="api";q=10;w=1 RateLimit="api";r=1;t=1`},
		},
	}, {
		desc:   "a burst of one admits one request per interval",
		policy: `{"id":"p","name":"slow","type":"rate-limit","config":{"requests":1,"per":"hour","burst":1,"by":"route"}}`,
		steps: []step{
			{0, `admitted RateLimit-Policy="slow";q=1;w=3600 RateLimit="slow";r=0;t=3600`},
			{time.Minute, `too-many-requests "Rate limit exceeded: 1 request per hour." Retry-After=3540 RateLimit-Policy="slow";q=1;w=3600 RateLimit="slow";r=0;t=3540`},
			{59 * time.Minute, `admitted RateLimit-Policy="slow";q=1;w=3600 RateLimit="slow";r=0;t=3600`},
		},
	}, {
		desc:   "a burst larger than the requests",
		policy: `{"id":"p","name":"api","type":"rate-limit","config":{"requests":2,"per":"second","burst":3,"by":"route"}}`,
		steps: []step{
			{0, `admitted RateLimit-Policy="api";q=2;w=1 RateLimit="api";r=2;t=1`},
			{0, `admitted RateLimit-Policy="api";q=2;w=1 RateLimit="api";r=1;t=1`},
			{0, `admitted RateLimit-Policy="api";q=2;w=1 RateLimit="api";r=0;t=1`},
			{0, `too-many-requests "Rate limit exceeded: 2 requests per second." Retry-After=1 RateLimit-Policy="api";q=2;w=1 RateLimit="api";r=0;t=1`},
		},
	}} {
		t.Run(tc.desc, func(t *testing.T) {
			clock := newRLClock()
			set := rlCompile(t, rlRevision(t, tc.policy), &Env{State: NewState(), Now: clock.Now})
			for i, s := range tc.steps {
				clock.Advance(s.advance)
				if got := rlSend(t, set, "r1", rlAlice).String(); got != s.want {
					t.Fatalf("request %d:\n got %s\nwant %s", i+1, got, s.want)
				}
			}
		})
	}
}

func TestRateLimitCountsPerKey(t *testing.T) {
	carol := &Consumer{ID: "carol"}
	dave := &Consumer{ID: "dave"}
	for _, tc := range []struct {
		by string
		// separate pairs of requests that must not share a counter;
		// shared pairs must.
		separate, shared [][2]rlClient
	}{{
		by: "consumer",
		separate: [][2]rlClient{
			{{addr: "192.0.2.1", consumer: carol}, {addr: "192.0.2.1", consumer: dave}},
			{{addr: "192.0.2.1", consumer: carol}, {addr: "192.0.2.1"}}, // anonymous: by address
			{rlAlice, rlBob},
		},
		shared: [][2]rlClient{
			{{addr: "192.0.2.1", consumer: carol}, {addr: "192.0.2.9", consumer: carol}},
			{rlAlice, rlAlice},
		},
	}, {
		by:       "ip",
		separate: [][2]rlClient{{rlAlice, rlBob}},
		shared: [][2]rlClient{
			{{addr: "192.0.2.1", consumer: carol}, {addr: "192.0.2.1", consumer: dave}},
			{{addr: "2001:db8::1"}, {addr: "2001:db8::1"}},
		},
	}, {
		by:     "route",
		shared: [][2]rlClient{{rlAlice, rlBob}, {{addr: "192.0.2.1", consumer: carol}, {addr: "192.0.2.2", consumer: dave}}},
	}} {
		t.Run(tc.by, func(t *testing.T) {
			policy := fmt.Sprintf(`{"id":"p","name":"one","type":"rate-limit","config":{"requests":1,"per":"hour","by":%q}}`, tc.by)
			for _, pair := range tc.separate {
				set := rlCompile(t, rlRevision(t, policy), &Env{State: NewState()})
				if a := rlSend(t, set, "r1", pair[0]); !a.admitted() {
					t.Fatalf("first %v: %s", pair[0], a)
				}
				if a := rlSend(t, set, "r1", pair[1]); !a.admitted() {
					t.Errorf("%v after %v: %s; want admitted, counted apart", pair[1], pair[0], a)
				}
			}
			for _, pair := range tc.shared {
				set := rlCompile(t, rlRevision(t, policy), &Env{State: NewState()})
				if a := rlSend(t, set, "r1", pair[0]); !a.admitted() {
					t.Fatalf("first %v: %s", pair[0], a)
				}
				if a := rlSend(t, set, "r1", pair[1]); a.admitted() {
					t.Errorf("%v after %v: admitted; want 429, counted together", pair[1], pair[0])
				}
			}
			// Whatever the key, each route counts apart.
			set := rlCompile(t, rlRevision(t, policy), &Env{State: NewState()})
			if a := rlSend(t, set, "r1", rlAlice); !a.admitted() {
				t.Fatalf("r1: %s", a)
			}
			if a := rlSend(t, set, "r2", rlAlice); !a.admitted() {
				t.Errorf("r2 after r1: %s; want admitted, each route counting apart", a)
			}
		})
	}
}

func TestRequestRefusedByOneRateLimitConsumesNoneOfTheOthers(t *testing.T) {
	clock := newRLClock()
	set := rlCompile(t, rlRevision(t,
		`{"id":"route","name":"route-wide","type":"rate-limit","config":{"requests":3,"per":"hour","by":"route"}}`,
		`{"id":"ip","name":"per-ip","type":"rate-limit","config":{"requests":1,"per":"hour","by":"ip"}}`,
	), &Env{State: NewState(), Now: clock.Now})
	carol, dave := rlClient{addr: "192.0.2.3"}, rlClient{addr: "192.0.2.4"}
	for i, step := range []struct {
		c    rlClient
		want string
	}{
		// Both count; the per-ip limit, with none left, is the most
		// restrictive.
		{rlAlice, `admitted RateLimit-Policy="per-ip";q=1;w=3600 RateLimit="per-ip";r=0;t=3600`},
		// Refused by per-ip: route-wide keeps its two.
		{rlAlice, `too-many-requests "Rate limit exceeded: 1 request per hour." Retry-After=3600 RateLimit-Policy="per-ip";q=1;w=3600 RateLimit="per-ip";r=0;t=3600`},
		{rlAlice, `too-many-requests "Rate limit exceeded: 1 request per hour." Retry-After=3600 RateLimit-Policy="per-ip";q=1;w=3600 RateLimit="per-ip";r=0;t=3600`},
		{rlBob, `admitted RateLimit-Policy="per-ip";q=1;w=3600 RateLimit="per-ip";r=0;t=3600`},
		// Route-wide's last: both have none left; route-wide's wait for
		// the next unit (1200 s) is shorter, per-ip's longer.
		{carol, `admitted RateLimit-Policy="per-ip";q=1;w=3600 RateLimit="per-ip";r=0;t=3600`},
		// Refused by route-wide, before per-ip counts dave.
		{dave, `too-many-requests "Rate limit exceeded: 3 requests per hour." Retry-After=1200 RateLimit-Policy="route-wide";q=3;w=3600 RateLimit="route-wide";r=0;t=1200`},
		// Refused by both: Retry-After is the longer wait.
		{rlAlice, `too-many-requests "Rate limit exceeded: 1 request per hour." Retry-After=3600 RateLimit-Policy="per-ip";q=1;w=3600 RateLimit="per-ip";r=0;t=3600`},
	} {
		if got := rlSend(t, set, "r1", step.c).String(); got != step.want {
			t.Fatalf("request %d (%s):\n got %s\nwant %s", i+1, step.c.addr, got, step.want)
		}
	}
	// dave was refused by route-wide, and per-ip did not count him.
	clock.Advance(20 * time.Minute)
	if a := rlSend(t, set, "r1", dave); !a.admitted() {
		t.Fatalf("dave once route-wide has a unit again: %s; want admitted (per-ip never counted him)", a)
	}
}

func TestRateLimitCountersSurviveARedeployOfTheSamePolicyAndResetWhenItChanges(t *testing.T) {
	policy := `{"id":"p","name":"api","type":"rate-limit","config":{"requests":2,"per":"hour","by":"ip"}}`
	env := &Env{State: NewState()}
	rev := rlRevision(t, policy)
	set := rlCompile(t, rev, env)
	rlSend(t, set, "r1", rlAlice)
	rlSend(t, set, "r1", rlAlice)
	if a := rlSend(t, set, "r1", rlAlice); a.admitted() {
		t.Fatal("third request admitted; want 429")
	}

	rev2 := rlRevision(t, policy)
	rev2.Number = 2
	set = rlCompile(t, rev2, env)
	if a := rlSend(t, set, "r1", rlAlice); a.admitted() {
		t.Fatal("after redeploying the unchanged policy: admitted; want 429, the counter kept")
	}

	rev3 := rlRevision(t, policy)
	rev3.Number, rev3.Policies[0].Version = 3, 2
	set = rlCompile(t, rev3, env)
	if a := rlSend(t, set, "r1", rlAlice); !a.admitted() || a.header.Get("RateLimit") != `"api";r=1;t=1800` {
		t.Fatalf("after the policy changed: %s; want admitted with a fresh counter", a)
	}
}

func TestRedisRateLimitWithoutRedisFailsToCompile(t *testing.T) {
	rev := rlRevision(t, `{"id":"p","name":"shared","type":"rate-limit","config":{"requests":2,"per":"hour","store":"redis"}}`)
	_, err := Compile(rev, &Env{State: NewState()})
	if err == nil || !strings.Contains(err.Error(), `policy "shared" counts in Redis, but this node has no --redis-url`) {
		t.Fatalf("Compile: %v; want the policy named as needing --redis-url", err)
	}
}

func TestLocalLimiterForgetsExpiredKeys(t *testing.T) {
	// T = 1 ms and a burst of one: a key is as good as fresh 1 ms after
	// its request. 200,000 addresses, 10 µs apart, are never more than
	// about 100 live at once.
	const n = 200_000
	l := newLocalLimiter(int64(time.Millisecond), 0, false)
	now := time.Now().UnixNano()
	peak := 0
	for i := range n {
		now += int64(10 * time.Microsecond)
		addr := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if _, _, ok := l.take(limitKey{addr: addr}, now); !ok {
			t.Fatalf("request %d: refused; want each new address admitted", i)
		}
		if i%500 == 0 {
			peak = max(peak, l.len())
		}
	}
	// Each shard sweeps when it doubles what it kept, or reaches
	// localSweepMin: with ~3 live keys per shard, that is the bound.
	if bound := localShards * localSweepMin; peak > bound {
		t.Fatalf("the limiter held %d keys; want at most %d", peak, bound)
	}
}

func TestLocalLimiterHoldsAtMostItsMaximumOfLiveKeys(t *testing.T) {
	// Hour-long counters: every key stays live, so only the cap bounds
	// memory. Past it, keys are forgotten, and their clients admitted
	// again rather than memory growing.
	l := newLocalLimiter(int64(time.Hour), 0, false)
	l.shardMax = 64
	now := time.Now().UnixNano()
	for i := range 20_000 {
		addr := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		l.take(limitKey{addr: addr}, now)
		if got := l.len(); got > localShards*l.shardMax {
			t.Fatalf("after %d keys the limiter holds %d; want at most %d", i+1, got, localShards*l.shardMax)
		}
	}
}

func TestLocalLimiterAdmitsExactlyTheBurstUnderConcurrency(t *testing.T) {
	// Many goroutines on few keys at one instant, with sweeps racing the
	// counting (new keys keep arriving): each key admits exactly its
	// burst, never more.
	const (
		burst   = 5
		keys    = 200
		workers = 8
	)
	l := newLocalLimiter(int64(time.Hour), int64(time.Hour)*(burst-1), false)
	now := time.Now().UnixNano()
	var admitted [keys]atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 3 * burst {
				for k := range keys {
					k := (k + w*31 + round) % keys
					if _, _, ok := l.take(limitKey{addr: netip.AddrFrom4([4]byte{10, 1, byte(k >> 8), byte(k)})}, now); ok {
						admitted[k].Add(1)
					}
				}
			}
		}()
	}
	wg.Wait()
	for k := range admitted {
		if n := admitted[k].Load(); n != burst {
			t.Fatalf("key %d admitted %d requests; want exactly %d", k, n, burst)
		}
	}
}

func TestGivingBackRestoresTheUnit(t *testing.T) {
	l := newLocalLimiter(int64(time.Second), int64(time.Second), true)
	now := time.Now().UnixNano()
	c1, _, _ := l.take(limitKey{}, now)
	l.take(limitKey{}, now)
	if _, _, ok := l.take(limitKey{}, now); ok {
		t.Fatal("third of a burst of two admitted")
	}
	l.giveBack(c1)
	if _, _, ok := l.take(limitKey{}, now); !ok {
		t.Fatal("refused after a unit was given back; want admitted")
	}
}
