package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/redistest"
	"github.com/gatehouse/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/internal/testupstream"
	"github.com/gatehouse/gatehouse/policy"
)

func newRateClock() *testClock { return testenv.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) }

// rateLog keeps the messages the data plane logs.
type rateLog struct {
	mu       sync.Mutex
	messages []string
}

func (l *rateLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *rateLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *rateLog) WithGroup(string) slog.Handler            { return l }
func (l *rateLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.messages = append(l.messages, r.Level.String()+" "+r.Message)
	return nil
}

func (l *rateLog) count(prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.messages {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

// rateHeaders shows a response's status and rate-limit headers as these
// tests compare them.
func rateHeaders(r *response) string {
	s := fmt.Sprintf("%d RateLimit-Policy=%s RateLimit=%s", r.status, r.header.Get("RateLimit-Policy"), r.header.Get("RateLimit"))
	if ra := r.header.Get("Retry-After"); ra != "" {
		s += " Retry-After=" + ra
	}
	return s
}

func TestRateLimitExceededReturns429WithRetryAfterAndRateLimitHeaders(t *testing.T) {
	up := testupstream.Start(t)
	clock := newRateClock()
	g := newGatewayWithOptions(t, Options{Now: clock.Now})
	g.apply(newPolicyFixture(t, up.URL).
		policy(`{"name":"api","type":"rate-limit","config":{"requests":2,"per":"minute","by":"route"}}`).rev)

	// T = 30 s, and a burst of two (the default: the period's requests).
	for i, want := range []string{
		`200 RateLimit-Policy="api";q=2;w=60 RateLimit="api";r=1;t=30`,
		`200 RateLimit-Policy="api";q=2;w=60 RateLimit="api";r=0;t=30`,
	} {
		r := g.get("/echo")
		if got := rateHeaders(r); got != want {
			t.Fatalf("request %d:\n got %s\nwant %s", i+1, got, want)
		}
		r.echo(t) // the upstream's answer, with the headers added
	}

	clock.Advance(10 * time.Second)
	for _, method := range []string{"GET", "POST", "HEAD"} {
		r := g.do(method, "/echo", nil)
		if want := `429 RateLimit-Policy="api";q=2;w=60 RateLimit="api";r=0;t=20 Retry-After=20`; rateHeaders(r) != want {
			t.Fatalf("%s over the limit:\n got %s\nwant %s", method, rateHeaders(r), want)
		}
		if method == "HEAD" {
			if len(r.body) != 0 {
				t.Fatalf("HEAD 429 has %d body bytes; want none", len(r.body))
			}
			continue
		}
		doc := assertProblem(t, r, http.StatusTooManyRequests)
		if doc["detail"] != "Rate limit exceeded: 2 requests per minute." {
			t.Fatalf("detail %q; want the limit named", doc["detail"])
		}
	}
	if n := up.Requests(); n != 2 {
		t.Fatalf("the upstream saw %d requests; want the 2 admitted", n)
	}

	// Once Retry-After has passed, one more is admitted.
	clock.Advance(20 * time.Second)
	if r := g.get("/echo"); rateHeaders(r) != `200 RateLimit-Policy="api";q=2;w=60 RateLimit="api";r=0;t=30` {
		t.Fatalf("after Retry-After: %s; want admitted", rateHeaders(r))
	}
}

func TestRateLimitBurstAdmitsThatManyAtOnceThenOneEveryInterval(t *testing.T) {
	up := testupstream.Start(t)
	for _, tc := range []struct {
		desc       string
		burst      string
		admitted   int
		retryAfter string
	}{
		// 60 per minute: T = 1 s.
		{"burst 1", `,"burst":1`, 1, "1"},
		{"burst 5", `,"burst":5`, 5, "1"},
		{"default burst: the period's requests", ``, 60, "1"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			clock := newRateClock()
			g := newGatewayWithOptions(t, Options{Now: clock.Now})
			g.apply(newPolicyFixture(t, up.URL).
				policy(`{"name":"api","type":"rate-limit","config":{"requests":60,"per":"minute","by":"route"` + tc.burst + `}}`).rev)
			for i := range tc.admitted {
				if r := g.get("/echo"); r.status != http.StatusOK {
					t.Fatalf("request %d of the burst: %s; want 200", i+1, rateHeaders(r))
				}
			}
			r := g.get("/echo")
			assertProblem(t, r, http.StatusTooManyRequests)
			if r.header.Get("Retry-After") != tc.retryAfter {
				t.Fatalf("past the burst: %s; want Retry-After %s", rateHeaders(r), tc.retryAfter)
			}
			// One interval later, one more; not two.
			clock.Advance(time.Second)
			if r := g.get("/echo"); r.status != http.StatusOK {
				t.Fatalf("one interval later: %s; want 200", rateHeaders(r))
			}
			assertProblem(t, g.get("/echo"), http.StatusTooManyRequests)
		})
	}
}

func TestRateLimitByIPCountsEachClientAddressApart(t *testing.T) {
	up := testupstream.Start(t)
	policyJSON := `{"name":"per-ip","type":"rate-limit","config":{"requests":1,"per":"hour","by":"ip"}}`

	t.Run("behind a trusted proxy", func(t *testing.T) {
		// The test client is the trusted proxy: X-Forwarded-For names the
		// client.
		g := newGatewayWithOptions(t, Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
		g.apply(newPolicyFixture(t, up.URL).policy(policyJSON).rev)
		for i, step := range []struct {
			client string
			status int
		}{
			{"203.0.113.1", 200},
			{"203.0.113.1", 429},
			{"203.0.113.2", 200},
			{"198.51.100.9, 203.0.113.2", 429}, // the nearest untrusted hop counts
			{"203.0.113.3", 200},
		} {
			if r := g.get("/echo", "X-Forwarded-For", step.client); r.status != step.status {
				t.Fatalf("request %d from %s: %s; want %d", i+1, step.client, rateHeaders(r), step.status)
			}
		}
	})
	t.Run("X-Forwarded-For from an untrusted peer is not believed", func(t *testing.T) {
		g := newGateway(t)
		g.apply(newPolicyFixture(t, up.URL).policy(policyJSON).rev)
		if r := g.get("/echo", "X-Forwarded-For", "203.0.113.1"); r.status != http.StatusOK {
			t.Fatalf("first: %s", rateHeaders(r))
		}
		// Another claimed address, but the same peer: the same counter.
		assertProblem(t, g.get("/echo", "X-Forwarded-For", "203.0.113.2"), http.StatusTooManyRequests)
	})
}

func TestRateLimitByConsumerCountsEachConsumerApart(t *testing.T) {
	up := testupstream.Start(t)
	g := newGateway(t)
	g.apply(newPolicyFixture(t, up.URL).
		consumer("c1", "carol").key("c1", "carol-key").
		consumer("c2", "dave").key("c2", "dave-key").
		policy(`{"name":"auth","type":"auth","config":{"key_auth":{}}}`).
		policy(`{"name":"per-consumer","type":"rate-limit","config":{"requests":1,"per":"hour"}}`).rev)
	// All from one address: the consumer is the key.
	if r := g.get("/echo", "X-API-Key", "carol-key"); r.status != http.StatusOK {
		t.Fatalf("carol: %s", rateHeaders(r))
	}
	assertProblem(t, g.get("/echo", "X-API-Key", "carol-key"), http.StatusTooManyRequests)
	if r := g.get("/echo", "X-API-Key", "dave-key"); r.status != http.StatusOK {
		t.Fatalf("dave after carol: %s; want 200, counted apart", rateHeaders(r))
	}
	// Without credentials the auth policy answers first: 401, not 429.
	assertProblem(t, g.get("/echo"), http.StatusUnauthorized)
}

func TestRateLimitCountersSurviveARedeployAndResetWhenThePolicyChanges(t *testing.T) {
	up := testupstream.Start(t)
	g := newGateway(t)
	f := newPolicyFixture(t, up.URL).
		policy(`{"id":"lim","name":"api","type":"rate-limit","config":{"requests":2,"per":"hour","by":"route"}}`)
	g.apply(f.rev)
	g.get("/echo")
	g.get("/echo")
	assertProblem(t, g.get("/echo"), http.StatusTooManyRequests)

	// The same policy in a new revision: the counter is kept.
	f.rev.Number = 2
	g.apply(f.rev)
	assertProblem(t, g.get("/echo"), http.StatusTooManyRequests)

	// The policy changed (a new version): it counts afresh.
	changed := *f.rev.Policies[0]
	changed.Version = 2
	f.rev.Number, f.rev.Policies[0] = 3, &changed
	g.apply(f.rev)
	if r := g.get("/echo"); r.status != http.StatusOK || r.header.Get("RateLimit") != `"api";r=1;t=1800` {
		t.Fatalf("after the policy changed: %s; want 200 from a fresh counter", rateHeaders(r))
	}
}

func TestSeveralRateLimitsAllCountAndTheHeadersReportTheMostRestrictive(t *testing.T) {
	up := testupstream.Start(t)
	clock := newRateClock()
	g := newGatewayWithOptions(t, Options{Now: clock.Now})
	g.apply(newPolicyFixture(t, up.URL).
		policy(`{"name":"hourly","type":"rate-limit","config":{"requests":3,"per":"hour","by":"route"}}`).
		policy(`{"name":"per-second","type":"rate-limit","config":{"requests":2,"per":"second","by":"route"}}`).rev)
	for i, step := range []struct {
		advance time.Duration
		want    string
	}{
		// The one with fewer requests left speaks.
		{0, `200 RateLimit-Policy="per-second";q=2;w=1 RateLimit="per-second";r=1;t=1`},
		{0, `200 RateLimit-Policy="per-second";q=2;w=1 RateLimit="per-second";r=0;t=1`},
		// Refused by per-second: hourly does not count it.
		{0, `429 RateLimit-Policy="per-second";q=2;w=1 RateLimit="per-second";r=0;t=1 Retry-After=1`},
		// Hourly counted two requests, so this is its last.
		{time.Second, `200 RateLimit-Policy="hourly";q=3;w=3600 RateLimit="hourly";r=0;t=1199`},
		{time.Second, `429 RateLimit-Policy="hourly";q=3;w=3600 RateLimit="hourly";r=0;t=1198 Retry-After=1198`},
	} {
		clock.Advance(step.advance)
		if got := rateHeaders(g.get("/echo")); got != step.want {
			t.Fatalf("request %d:\n got %s\nwant %s", i+1, got, step.want)
		}
	}
}

// redisGateways starts n gateways sharing srv, each with its own Redis
// client (as separate nodes would have), the clock and a log.
func redisGateways(t *testing.T, srv *redistest.Server, clock *testClock, n int) ([]*gateway, []*rateLog) {
	t.Helper()
	var gs []*gateway
	var logs []*rateLog
	for range n {
		opts, err := redis.ParseURL(srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		client := redis.NewClient(opts)
		t.Cleanup(func() { client.Close() })
		// Connected, and the script loaded, before the test's first
		// request has policy.RedisTimeout to run it.
		if err := policy.LoadRedisScript(context.Background(), client); err != nil {
			t.Fatal(err)
		}
		log := &rateLog{}
		gs = append(gs, newGatewayWithOptions(t, Options{Redis: client, Now: clock.Now, Logger: slog.New(log)}))
		logs = append(logs, log)
	}
	return gs, logs
}

func TestRedisRateLimitIsSharedByTwoGateways(t *testing.T) {
	srv := redistest.Start(t)
	up := testupstream.Start(t)
	gs, _ := redisGateways(t, srv, newRateClock(), 2)
	rev := newPolicyFixture(t, up.URL).
		policy(`{"name":"shared","type":"rate-limit","config":{"requests":5,"per":"hour","by":"route","store":"redis"}}`).rev
	for _, g := range gs {
		g.apply(rev)
	}
	admitted := 0
	for i := range 12 {
		r := gs[i%2].get("/echo")
		switch r.status {
		case http.StatusOK:
			admitted++
		case http.StatusTooManyRequests:
			assertProblem(t, r, http.StatusTooManyRequests)
		default:
			t.Fatalf("request %d: %s; want 200 or 429", i+1, rateHeaders(r))
		}
	}
	if admitted != 5 || up.Requests() != 5 {
		t.Fatalf("two gateways admitted %d requests (the upstream saw %d); want exactly 5 together", admitted, up.Requests())
	}
}

func TestRedisOutageFallsBackWithoutHangingAndTheSharedLimitReturnsWithRedis(t *testing.T) {
	for _, fallback := range []string{"local", "allow"} {
		t.Run("fallback "+fallback, func(t *testing.T) {
			srv := redistest.Start(t)
			up := testupstream.Start(t)
			clock := newRateClock()
			gs, logs := redisGateways(t, srv, clock, 2)
			rev := newPolicyFixture(t, up.URL).
				policy(`{"name":"shared","type":"rate-limit","config":{"requests":3,"per":"hour","by":"route","store":"redis","fallback":"` + fallback + `"}}`).rev
			for _, g := range gs {
				g.apply(rev)
			}
			if r := gs[0].get("/echo"); r.header.Get("RateLimit") != `"shared";r=2;t=1200` {
				t.Fatalf("before the outage: %s; want counted in Redis", rateHeaders(r))
			}

			// Redis goes away: every request is still answered (the
			// client's 10 s timeout would fail a hung one), by the
			// fallback.
			srv.Stop()
			for i, g := range gs {
				statuses := ""
				for range 4 {
					statuses += fmt.Sprint(g.get("/echo").status, " ")
				}
				want := map[string]string{
					"local": "200 200 200 429 ", // each gateway counts 3 alone
					"allow": "200 200 200 200 ", // nobody counts
				}[fallback]
				if statuses != want {
					t.Fatalf("gateway %d during the outage: %s; want %s", i+1, statuses, want)
				}
				if n := logs[i].count("WARN rate limits: Redis failed"); n != 1 {
					t.Fatalf("gateway %d logged %d warnings; want 1", i+1, n)
				}
			}

			// Redis returns (empty: it kept nothing), the back-off passes,
			// a request has each gateway try Redis again in the
			// background, and once they found it, they share the limit
			// again.
			if err := srv.Restart(); err != nil {
				t.Fatal(err)
			}
			clock.Advance(policy.RedisBackoff)
			for i, g := range gs {
				g.get("/echo")
				for deadline := time.Now().Add(10 * time.Second); logs[i].count("INFO rate limits: Redis answers again") == 0; time.Sleep(5 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("gateway %d did not find Redis back within 10 s", i+1)
					}
				}
			}
			admitted := 0
			for i := range 8 {
				if r := gs[i%2].get("/echo"); r.status == http.StatusOK {
					admitted++
				}
			}
			if admitted != 3 {
				t.Fatalf("with Redis back, the two gateways admitted %d; want 3 together", admitted)
			}
			for i, log := range logs {
				if n := log.count("INFO rate limits: Redis answers again"); n != 1 {
					t.Fatalf("gateway %d noted Redis's return %d times; want once", i+1, n)
				}
			}
		})
	}
}

// TestRequestRefusedAfterTheRateLimitDoesNotSpendIt: a body the schema
// rejects (checked after the limits, so that a limited client's body is
// never read) is a rejected request, and a rejected request changes
// nothing.
func TestRequestRefusedAfterTheRateLimitDoesNotSpendIt(t *testing.T) {
	up := testupstream.Start(t)
	g := newGateway(t)
	g.apply(newPolicyFixture(t, up.URL).
		policy(`{"name":"two","type":"rate-limit","config":{"requests":2,"per":"minute","by":"ip"}}`).
		policy(`{"name":"named","type":"content","config":{"schema":{"type":"object","required":["name"]}}}`).rev)
	post := func(body string) *response {
		return g.do("POST", "/echo", strings.NewReader(body), "Content-Type", "application/json")
	}
	for range 3 {
		assertProblem(t, post(`{}`), http.StatusUnprocessableEntity)
	}
	for i := range 2 {
		if r := post(`{"name":"ok"}`); r.status != http.StatusOK {
			t.Fatalf("valid request %d after three rejected ones: %d %s; want 200", i+1, r.status, r.body)
		}
	}
	assertProblem(t, post(`{"name":"ok"}`), http.StatusTooManyRequests)
}
