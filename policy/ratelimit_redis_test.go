package policy

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/redistest"
)

// rlLog records what the data plane logs.
type rlLog struct {
	mu      sync.Mutex
	records []string
}

func (l *rlLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *rlLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *rlLog) WithGroup(string) slog.Handler            { return l }
func (l *rlLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r.Level.String()+" "+r.Message)
	return nil
}

// count returns how many records were logged at level with message
// starting with prefix.
func (l *rlLog) count(level slog.Level, prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.records {
		if strings.HasPrefix(r, level.String()+" "+prefix) {
			n++
		}
	}
	return n
}

// rlCalls counts the scripts a Redis client was asked to run: the
// requests' calls (not the background's SCRIPT LOAD).
type rlCalls struct{ n atomic.Int64 }

func (c *rlCalls) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *rlCalls) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); name == "evalsha" || name == "eval" {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (c *rlCalls) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// rlNode is one data node's policies over a shared Redis.
type rlNode struct {
	env   *Env
	calls *rlCalls
	log   *rlLog
}

func newRLNode(t testing.TB, srv *redistest.Server, clock *testClock, opts ...func(*redis.Options)) *rlNode {
	t.Helper()
	o := &redis.Options{Addr: srv.Addr()}
	for _, f := range opts {
		f(o)
	}
	client := redis.NewClient(o)
	t.Cleanup(func() { client.Close() })
	// Connected, and the script loaded, before the test's first request
	// has RedisTimeout to run it.
	if err := LoadRedisScript(context.Background(), client); err != nil {
		t.Fatal(err)
	}
	n := &rlNode{calls: &rlCalls{}, log: &rlLog{}}
	client.AddHook(n.calls)
	n.env = &Env{State: NewState(), Redis: client, Log: slog.New(n.log)}
	if clock != nil {
		n.env.Now = clock.Now
	}
	return n
}

func (n *rlNode) compile(t testing.TB, policies ...string) *Set {
	t.Helper()
	return rlCompile(t, rlRevision(t, policies...), n.env)
}

func TestRedisRateLimitIsSharedByNodes(t *testing.T) {
	srv := redistest.Start(t)
	policy := `{"id":"p","name":"shared","type":"rate-limit","config":{"requests":4,"per":"hour","by":"route","store":"redis"}}`
	sets := []*Set{newRLNode(t, srv, nil).compile(t, policy), newRLNode(t, srv, nil).compile(t, policy)}
	admitted := 0
	for i := range 10 {
		a := rlSend(t, sets[i%2], "r1", rlAlice)
		if a.admitted() {
			// Cluster-wide, the remaining requests count down whichever
			// node asks.
			if want := fmt.Sprintf(`"shared";r=%d;t=`, 3-admitted); !strings.HasPrefix(a.header.Get("RateLimit"), want) {
				t.Fatalf("request %d: RateLimit %q; want %s...", i+1, a.header.Get("RateLimit"), want)
			}
			admitted++
			continue
		}
		// T = 900 s; what Redis's clock moved since is all the
		// difference.
		if ra, _ := strconv.Atoi(a.header.Get("Retry-After")); ra < 1 || ra > 900 {
			t.Fatalf("request %d: %s; want Retry-After up to 900", i+1, a)
		}
	}
	if admitted != 4 {
		t.Fatalf("two nodes admitted %d requests together; want exactly 4", admitted)
	}
	// Each route counts apart, in Redis too.
	if a := rlSend(t, sets[0], "r2", rlAlice); !a.admitted() {
		t.Fatalf("r2: %s; want admitted", a)
	}
}

func TestRedisRateLimitMatchesLocalCounting(t *testing.T) {
	srv := redistest.Start(t)
	for _, burst := range []int{1, 2, 5} {
		t.Run(fmt.Sprintf("burst %d", burst), func(t *testing.T) {
			policy := func(store string) string {
				return fmt.Sprintf(`{"id":"p%d","name":"api","type":"rate-limit","config":{"requests":3,"per":"hour","burst":%d,"by":"ip","store":%q}}`,
					burst, burst, store)
			}
			local := rlCompile(t, rlRevision(t, policy("local")), &Env{State: NewState()})
			inRedis := newRLNode(t, srv, nil).compile(t, policy("redis"))
			for i := range burst + 2 {
				l, r := rlSend(t, local, "r1", rlBob), rlSend(t, inRedis, "r1", rlBob)
				if l.admitted() != r.admitted() || l.header.Get("RateLimit-Policy") != r.header.Get("RateLimit-Policy") ||
					// The remaining requests; t may differ by Redis's
					// clock having moved.
					strings.Split(l.header.Get("RateLimit"), ";t=")[0] != strings.Split(r.header.Get("RateLimit"), ";t=")[0] {
					t.Fatalf("request %d:\nlocal %s\nredis %s", i+1, l, r)
				}
			}
		})
	}
}

func TestRedisRateLimitsOfARouteAreAllOrNothing(t *testing.T) {
	srv := redistest.Start(t)
	carol, dave := rlClient{addr: "192.0.2.3"}, rlClient{addr: "192.0.2.4"}
	t.Run("redis and redis", func(t *testing.T) {
		set := newRLNode(t, srv, nil).compile(t,
			`{"id":"rw","name":"route-wide","type":"rate-limit","config":{"requests":3,"per":"hour","by":"route","store":"redis"}}`,
			`{"id":"pi","name":"per-ip","type":"rate-limit","config":{"requests":1,"per":"hour","by":"ip","store":"redis"}}`)
		for i, step := range []struct {
			c    rlClient
			want bool
		}{{rlAlice, true}, {rlAlice, false}, {rlAlice, false}, {rlBob, true}, {carol, true}, {dave, false}} {
			if a := rlSend(t, set, "r1", step.c); a.admitted() != step.want {
				t.Fatalf("request %d (%s): %s; want admitted=%v (a refused request consumes no limit)", i+1, step.c.addr, a, step.want)
			}
		}
	})
	t.Run("local and redis", func(t *testing.T) {
		node := newRLNode(t, srv, nil)
		set := node.compile(t,
			`{"id":"lr","name":"local-route","type":"rate-limit","config":{"requests":2,"per":"hour","by":"route"}}`,
			`{"id":"ri","name":"redis-ip","type":"rate-limit","config":{"requests":1,"per":"hour","by":"ip","store":"redis"}}`)
		// alice: both count. alice again: Redis refuses, and the local
		// unit is given back, so bob still gets the last one.
		for i, step := range []struct {
			c    rlClient
			want bool
		}{{rlAlice, true}, {rlAlice, false}, {rlBob, true}} {
			if a := rlSend(t, set, "r1", step.c); a.admitted() != step.want {
				t.Fatalf("request %d (%s): %s; want admitted=%v", i+1, step.c.addr, a, step.want)
			}
		}
		// The local limit refuses carol before Redis is asked.
		before := node.calls.n.Load()
		if a := rlSend(t, set, "r1", carol); a.admitted() || a.header.Get("RateLimit-Policy") != `"local-route";q=2;w=3600` {
			t.Fatalf("carol: %s; want refused by local-route", a)
		}
		if n := node.calls.n.Load() - before; n != 0 {
			t.Fatalf("a request the local limit refused made %d Redis calls; want 0", n)
		}
	})
}

func TestRedisOutageFallsBackAndRecovers(t *testing.T) {
	for _, tc := range []struct {
		fallback string
		// during is what each of four requests during the outage gets.
		during []string
	}{
		// Counted on the node with the same limit, from a fresh counter.
		{"local", []string{`"api";r=1;t=1800`, `"api";r=0;t=1800`, "429", "429"}},
		// Not counted: admitted, and no RateLimit can be told.
		{"allow", []string{"", "", "", ""}},
	} {
		t.Run(tc.fallback, func(t *testing.T) {
			srv := redistest.Start(t)
			clock := newRLClock()
			node := newRLNode(t, srv, clock)
			set := node.compile(t, fmt.Sprintf(
				`{"id":"p","name":"api","type":"rate-limit","config":{"requests":2,"per":"hour","by":"route","store":"redis","fallback":%q}}`, tc.fallback))
			expect := func(step, want string) {
				t.Helper()
				a := rlSend(t, set, "r1", rlAlice)
				got := a.header.Get("RateLimit")
				if !a.admitted() {
					got = "429"
				}
				if got != want && !(strings.HasSuffix(want, "t=") && strings.HasPrefix(got, want)) {
					t.Fatalf("%s: %s; want %s", step, a, want)
				}
			}
			expect("before the outage", `"api";r=1;t=`)

			srv.Stop()
			before := node.calls.n.Load()
			expect("request 1 of the outage", tc.during[0])
			if node.calls.n.Load() == before {
				t.Fatal("the first request of the outage did not ask Redis")
			}
			// The back-off: nobody asks Redis.
			before = node.calls.n.Load()
			for i, want := range tc.during[1:] {
				expect(fmt.Sprintf("request %d of the outage", i+2), want)
			}
			if n := node.calls.n.Load() - before; n != 0 {
				t.Fatalf("%d requests asked Redis during the back-off; want none", n)
			}
			if n := node.log.count(slog.LevelWarn, "rate limits: Redis failed"); n != 1 {
				t.Fatalf("%d warnings in one back-off period; want 1", n)
			}

			// Back-off over, Redis still down: the next request starts a
			// trial in the background, which fails: one more warning.
			clock.Advance(RedisBackoff)
			rlSend(t, set, "r1", rlBob)
			rlWaitFor(t, "a second warning", func() bool { return node.log.count(slog.LevelWarn, "rate limits: Redis failed") == 2 })
			if n := node.calls.n.Load() - before; n != 0 {
				t.Fatalf("%d requests asked Redis while it was known down; want none", n)
			}

			// Redis back (empty: nothing was kept): the next trial finds
			// it, and counting there resumes.
			if err := srv.Restart(); err != nil {
				t.Fatal(err)
			}
			clock.Advance(RedisBackoff)
			rlSend(t, set, "r1", rlBob)
			rlWaitFor(t, "Redis's return noted", func() bool {
				return node.log.count(slog.LevelInfo, "rate limits: Redis answers again") == 1
			})
			expect("after Redis returned", `"api";r=1;t=`)
			expect("after Redis returned", `"api";r=0;t=`)
			expect("after Redis returned", "429")
			if n := node.log.count(slog.LevelWarn, "rate limits: Redis failed"); n != 2 {
				t.Fatalf("%d warnings in all; want 2", n)
			}
		})
	}
}

// rlWaitFor waits until cond holds, for what happens in the background.
func rlWaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
	}
}

func TestRedisThatHangsIsGivenUpWithinTheTimeout(t *testing.T) {
	// Whether or not the client itself honours context deadlines.
	for _, honours := range []bool{false, true} {
		t.Run(fmt.Sprintf("ContextTimeoutEnabled=%v", honours), func(t *testing.T) {
			srv := redistest.Start(t)
			node := newRLNode(t, srv, nil, func(o *redis.Options) { o.ContextTimeoutEnabled = honours })
			set := node.compile(t, `{"id":"p","name":"api","type":"rate-limit","config":{"requests":5,"per":"hour","by":"ip","store":"redis"}}`)
			if a := rlSend(t, set, "r1", rlAlice); !a.admitted() {
				t.Fatalf("before: %s", a)
			}
			if err := srv.Pause(); err != nil {
				t.Fatal(err)
			}
			defer srv.Resume()
			done := make(chan rlAnswer, 1)
			go func() { done <- rlSend(t, set, "r1", rlAlice) }()
			select {
			case a := <-done:
				// Counted by the local fallback, from a fresh counter.
				if !a.admitted() || a.header.Get("RateLimit") != `"api";r=4;t=720` {
					t.Fatalf("while Redis hangs: %s; want admitted by the local fallback", a)
				}
			case <-time.After(10 * time.Second):
				// Far beyond RedisTimeout: the request hangs on Redis.
				t.Fatal("the request is still waiting on a hung Redis after 10 s")
			}
			if n := node.log.count(slog.LevelWarn, "rate limits: Redis failed"); n != 1 {
				t.Fatalf("%d warnings; want 1", n)
			}
		})
	}
}

// TestRedisUnitsOfARequestRefusedLaterAreGivenBack proves that a request
// a later step refuses gets back what it counted in Redis, as it gets
// back what it counted locally: a refused request changes nothing.
func TestRedisUnitsOfARequestRefusedLaterAreGivenBack(t *testing.T) {
	srv := redistest.Start(t)
	node := newRLNode(t, srv, nil)
	set := node.compile(t,
		`{"id":"rr","name":"redis-route","type":"rate-limit","config":{"requests":1,"per":"hour","by":"route","store":"redis"}}`,
		`{"id":"ri","name":"redis-ip","type":"rate-limit","config":{"requests":2,"per":"hour","by":"ip","store":"redis"}}`)
	keys := func() []string {
		t.Helper()
		ks, err := node.env.Redis.Keys(context.Background(), redisKeyPrefix+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		return ks
	}
	chain := set.Chain("r1")
	for i := range 3 {
		r := NewRequest()
		r.W, r.R, r.RouteID = httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil), "r1"
		r.Client = netip.MustParseAddr(rlAlice.addr)
		if err := chain.RunHead(r); err != nil {
			t.Fatalf("request %d: %v; want admitted (each earlier one was given back)", i+1, err)
		}
		if n := len(keys()); n != 2 {
			t.Fatalf("request %d: %d keys in Redis; want 2 (both limits counted)", i+1, n)
		}
		// As the data plane does when a later check refuses the request.
		r.Finish(Outcome{Refused: true})
		r.Release()
		// Both counters are back where they were: at nothing, so gone.
		rlWaitFor(t, "the units given back", func() bool { return len(keys()) == 0 })
	}
}
