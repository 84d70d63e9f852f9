package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/serve"
	"github.com/gatehouse/gatehouse/internal/testupstream"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// namedUpstream answers every request with its name, in the body and in
// X-Upstream.
func namedUpstream(t *testing.T, name string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Upstream", name)
		io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// splitFixture is services stable (route r's), canary and beta, each an
// upstream that says its name, and the policies added with policy.
func splitFixture(t *testing.T) *policyFixture {
	t.Helper()
	f := newPolicyFixture(t, namedUpstream(t, "stable"))
	f.rev.Services[0].ID, f.rev.Services[0].Name = "stable", "stable"
	f.rev.Routes[0].ServiceID = "stable"
	f.withService("canary", namedUpstream(t, "canary"))
	f.withService("beta", namedUpstream(t, "beta"))
	return f
}

// service adds a service at url.
func (f *policyFixture) withService(id, url string, fields ...string) *policyFixture {
	f.t.Helper()
	s := gatehouse.NewService()
	if err := json.Unmarshal([]byte(fmt.Sprintf(`{"id":%q,"name":%q,"url":%q%s}`, id, id, url, strings.Join(fields, ""))), s); err != nil {
		f.t.Fatal(err)
	}
	s.Version = 1
	f.rev.Services = append(f.rev.Services, s)
	return f
}

// trustingGateway believes the X-Forwarded-For of loopback peers, so
// that a test can be many clients.
func trustingGateway(t *testing.T, o Options) *gateway {
	o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	return newGatewayWithOptions(t, o)
}

// manyClients is the i-th of the test's many clients.
func manyClients(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255) }

// Sticky draws are a hash, so shares over thousands of clients are
// deterministic: each client goes where the hash of its address says,
// and the counts come within a few points of the shares.
func TestTrafficSplitSendsEachServiceItsShare(t *testing.T) {
	f := splitFixture(t).policy(`{"name":"split","type":"traffic-split","config":{"services":[
		{"service_id":"canary","percent":5},{"service_id":"beta","percent":20}],"sticky":"client"}}`)
	g := trustingGateway(t, Options{})
	g.apply(f.rev)
	const n = 3000
	counts := map[string]int{}
	for i := range n {
		addr := manyClients(i)
		r := g.get("/", "X-Forwarded-For", addr)
		got := string(r.body)
		counts[got]++
		draw := policy.DrawAddr(netip.MustParseAddr(addr))
		want := "stable"
		switch {
		case draw < 500:
			want = "canary"
		case draw < 2500:
			want = "beta"
		}
		if got != want {
			t.Fatalf("client %s (draw %d) went to %q; want %q", addr, draw, got, want)
		}
	}
	for _, tc := range []struct {
		service string
		share   float64
	}{{"canary", .05}, {"beta", .20}, {"stable", .75}} {
		if got := float64(counts[tc.service]) / n; got < tc.share-.02 || got > tc.share+.02 {
			t.Errorf("%s took %.3f of the requests; want %.2f ± .02", tc.service, got, tc.share)
		}
	}
}

// Without stickiness each request draws anew: over 2000 requests a 50%
// share lands within 7 standard deviations (±160), which chance does not
// miss.
func TestTrafficSplitWithoutStickinessDrawsPerRequest(t *testing.T) {
	f := splitFixture(t).policy(`{"name":"split","type":"traffic-split","config":{"services":[{"service_id":"canary","percent":50}]}}`)
	g := newGateway(t)
	g.apply(f.rev)
	counts := map[string]int{}
	for range 2000 {
		counts[string(g.get("/").body)]++
	}
	if c := counts["canary"]; c < 840 || c > 1160 || counts["stable"]+c != 2000 {
		t.Fatalf("counts %v; want about 1000 each", counts)
	}
}

func TestTrafficSplitPinByHeaderOrCookieWinsOverTheShares(t *testing.T) {
	f := splitFixture(t).policy(`{"name":"split","type":"traffic-split","config":{"services":[
		{"service_id":"canary","percent":0.01,"pin":"canary"},{"service_id":"stable","percent":99.99,"pin":"stable"}],
		"pin_header":"X-Gatehouse-Pin","pin_cookie":"gh_pin","sticky":"client"}}`)
	g := trustingGateway(t, Options{})
	g.apply(f.rev)
	for _, tc := range []struct {
		desc    string
		headers []string
		want    string
	}{
		{"no pin: the shares", nil, "stable"},
		{"pinned by header", []string{"X-Gatehouse-Pin", "canary"}, "canary"},
		{"pinned by cookie", []string{"Cookie", "theme=dark; gh_pin=canary"}, "canary"},
		{"pinned back to stable", []string{"X-Gatehouse-Pin", "stable", "Cookie", "gh_pin=canary"}, "stable"},
		{"an unknown pin: the shares", []string{"X-Gatehouse-Pin", "nightly"}, "stable"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			for i := range 20 {
				addr := manyClients(i)
				if policy.DrawAddr(netip.MustParseAddr(addr)) == 0 {
					continue // the one draw the canary's 0.01% takes
				}
				if got := string(g.get("/", append([]string{"X-Forwarded-For", addr}, tc.headers...)...).body); got != tc.want {
					t.Fatalf("client %s: answered by %q; want %q", addr, got, tc.want)
				}
			}
		})
	}
}

// A sticky split keeps each consumer (or client) on one service across
// requests, and raising the canary from 5% to 10% keeps on it everyone
// the 5% held, as the shares grow from 0 upwards.
func TestTrafficSplitStickyKeepsOneServiceAndARaiseKeepsTheFirst(t *testing.T) {
	const n = 400
	for _, sticky := range []string{"consumer", "client"} {
		t.Run(sticky, func(t *testing.T) {
			f := splitFixture(t)
			if sticky == "consumer" {
				f.policy(`{"name":"auth","type":"auth","config":{"key_auth":{}}}`)
				for i := range n {
					f.consumer(fmt.Sprintf("c-%d", i), fmt.Sprintf("c%d", i)).key(fmt.Sprintf("c-%d", i), fmt.Sprintf("key-%d-0123456789abcdef", i))
				}
			}
			split := func(percent int) string {
				return fmt.Sprintf(`{"id":"split","name":"split","type":"traffic-split","config":{"services":[{"service_id":"canary","percent":%d}],"sticky":%q}}`, percent, sticky)
			}
			f.policy(split(5))
			g := trustingGateway(t, Options{})
			g.apply(f.rev)
			ask := func(i int) string {
				if sticky == "consumer" {
					// Every consumer behind one address: the consumer decides.
					return string(g.get("/", "X-API-Key", fmt.Sprintf("key-%d-0123456789abcdef", i), "X-Forwarded-For", "10.9.9.9").body)
				}
				return string(g.get("/", "X-Forwarded-For", manyClients(i)).body)
			}
			first := map[int]bool{}
			for i := range n {
				svc := ask(i)
				for range 3 {
					if again := ask(i); again != svc {
						t.Fatalf("key %d went to %q, then %q", i, svc, again)
					}
				}
				if svc == "canary" {
					first[i] = true
				}
			}
			// Raised: a new version of the policy, deployed.
			raised := f.policyFrom(split(10), 2)
			f.rev.Policies[len(f.rev.Policies)-1] = raised
			f.rev.Number = 2
			g.apply(f.rev)
			var second int
			for i := range n {
				svc := ask(i)
				if first[i] && svc != "canary" {
					t.Fatalf("key %d was on the canary at 5%% and left it at 10%% for %q", i, svc)
				}
				if svc == "canary" {
					second++
				}
			}
			if len(first) == 0 || second <= len(first) {
				t.Fatalf("canary held %d keys at 5%% and %d at 10%%; want some, then more", len(first), second)
			}
		})
	}
}

// policyFrom is a policy from JSON at version, checked and normalised as
// the admin API stores it.
func (f *policyFixture) policyFrom(js string, version int64) *gatehouse.Policy {
	f.t.Helper()
	p := gatehouse.NewPolicy()
	if err := json.Unmarshal([]byte(js), p); err != nil {
		f.t.Fatal(err)
	}
	p.Normalize()
	if bad, semantic := p.Check(); len(bad)+len(semantic) > 0 {
		f.t.Fatalf("policy %s: %v %v", js, bad, semantic)
	}
	p.Version = version
	return p
}

// A split on a service applies to each of its routes; the route's own
// policies stand whichever service answers, and the chosen service's own
// do not apply.
func TestTrafficSplitOnAServiceSendsEveryRouteOfIt(t *testing.T) {
	f := splitFixture(t)
	split := f.policyFrom(`{"id":"split","name":"split","type":"traffic-split","config":{"services":[{"service_id":"canary","percent":100}]}}`, 1)
	down := f.policyFrom(`{"id":"down","name":"down","type":"maintenance","config":{}}`, 1)
	f.rev.Policies = append(f.rev.Policies, split, down)
	f.rev.Services[0].Policies = []string{"split"}
	f.rev.Services[1].Policies = []string{"down"} // the canary's own: not the route's
	second := gatehouse.NewRoute()
	second.ID, second.ServiceID, second.Paths = "r2", "stable", []string{"/other"}
	second.Normalize()
	f.rev.Routes = append(f.rev.Routes, second)
	g := newGateway(t)
	g.apply(f.rev)
	for _, path := range []string{"/", "/other"} {
		if r := g.get(path); r.status != http.StatusOK || string(r.body) != "canary" {
			t.Errorf("%s: %d %q; want 200 from the canary", path, r.status, r.body)
		}
	}
}

// Metrics, the upstream failure counters and the access log name the
// service that answered, not the route's.
func TestTrafficSplitMetricsAndAccessLogNameTheServiceThatAnswered(t *testing.T) {
	f := splitFixture(t).policy(`{"name":"split","type":"traffic-split","config":{"services":[
		{"service_id":"canary","percent":0.01,"pin":"canary"},{"service_id":"beta","percent":0.01,"pin":"beta"}],"pin_header":"X-Pin"}}`)
	f.rev.Services[2].URL = "http://" + closedPort(t) // beta is down
	f.rev.Services[2].Retries = 0
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	records := make(chan map[string]any, 16)
	g := newGatewayWithOptions(t, Options{Metrics: m}, func(o *serve.Options) {
		o.Logger = slog.New(accessLogRecords{slog.DiscardHandler, records})
	})
	g.apply(f.rev)
	for _, tc := range []struct {
		pin, service string
		status       int
	}{{"canary", "canary", 200}, {"canary", "canary", 200}, {"beta", "beta", 502}, {"", "stable", 200}} {
		r := g.get("/", "X-Pin", tc.pin)
		if r.status != tc.status {
			t.Fatalf("pin %q: status %d; want %d", tc.pin, r.status, tc.status)
		}
		select {
		case rec := <-records:
			if rec["route"] != "r" || rec["service"] != tc.service {
				t.Errorf("pin %q: access log route %v service %v; want r %s", tc.pin, rec["route"], rec["service"], tc.service)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no access log record")
		}
	}
	for _, tc := range []struct {
		desc string
		c    prometheus.Collector
		want float64
	}{
		{"canary's 2xx", m.served.WithLabelValues("r", "canary", "2xx"), 2},
		{"stable's 2xx", m.served.WithLabelValues("r", "stable", "2xx"), 1},
		{"beta's 5xx", m.served.WithLabelValues("r", "beta", "5xx"), 1},
		{"beta's upstream failure", m.failures.WithLabelValues("beta", "502"), 1},
		{"none on the route's service", m.failures.WithLabelValues("stable", "502"), 0},
	} {
		if got := testutil.ToFloat64(tc.c); got != tc.want {
			t.Errorf("%s: got %v; want %v", tc.desc, got, tc.want)
		}
	}
}

// A canary that switches to a protocol the request did not offer is the
// canary's failure, not the route's service's: the 502 is counted where
// every other failure of the answering service is.
func TestTrafficSplitCountsACanarysBadUpgradeAgainstTheCanary(t *testing.T) {
	f := splitFixture(t).policy(`{"name":"split","type":"traffic-split","config":{"services":[
		{"service_id":"canary","percent":0.01,"pin":"canary"}],"pin_header":"X-Pin"}}`)
	f.rev.Services[1].URL = testupstream.Canned(t, []byte("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"))
	m := NewMetrics(prometheus.NewRegistry())
	g := newGatewayWithOptions(t, Options{Metrics: m})
	g.apply(f.rev)
	assertProblem(t, g.get("/", "X-Pin", "canary", "Connection", "Upgrade", "Upgrade", "websocket"), http.StatusBadGateway)
	for _, tc := range []struct {
		service string
		want    float64
	}{{"canary", 1}, {"stable", 0}} {
		if got := testutil.ToFloat64(m.failures.WithLabelValues(tc.service, "502")); got != tc.want {
			t.Errorf("%s's upstream failures: %v; want %v", tc.service, got, tc.want)
		}
	}
}

// The circuit breaker judges the service that answers: a canary's
// failures, which any client can cause with the pin, open the canary's
// circuit, and its 503 falls on the canary's share alone while the
// stable service keeps serving.
func TestCircuitBreakerOpensTheCircuitOfTheServiceThatFailed(t *testing.T) {
	for _, level := range []string{"route", "service"} {
		t.Run(level, func(t *testing.T) {
			f := splitFixture(t).
				policy(`{"name":"cb","type":"circuit-breaker","config":{"failures":3,"open_seconds":60}}`).
				policy(`{"name":"split","type":"traffic-split","config":{"services":[
					{"service_id":"canary","percent":5,"pin":"canary"},{"service_id":"stable","percent":0.01,"pin":"stable"}],
					"pin_header":"X-Pin"}}`)
			if level == "service" {
				f.rev.Services[0].Policies, f.rev.Routes[0].Policies = f.rev.Routes[0].Policies, nil
			}
			f.rev.Services[1].URL = "http://" + closedPort(t) // canary is down
			f.rev.Services[1].Retries = 0
			g := newGateway(t)
			g.apply(f.rev)
			for i, tc := range []struct {
				pin    string
				status int
			}{
				{"canary", 502}, {"canary", 502}, {"canary", 502},
				{"stable", 200}, {"stable", 200}, {"stable", 200}, {"stable", 200}, {"stable", 200},
				{"canary", 503},
				{"stable", 200},
			} {
				r := g.get("/", "X-Pin", tc.pin)
				if r.status != tc.status {
					t.Fatalf("request %d, pinned to %s: status %d; want %d", i, tc.pin, r.status, tc.status)
				}
				if tc.status == 503 && r.header.Get("Retry-After") == "" {
					t.Fatalf("request %d: the open circuit's 503 has no Retry-After", i)
				}
			}
		})
	}
}

// accessLogRecords passes the access log's records to a channel.
type accessLogRecords struct {
	slog.Handler
	records chan map[string]any
}

func (h accessLogRecords) Enabled(context.Context, slog.Level) bool { return true }

func (h accessLogRecords) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "request" {
		return nil
	}
	m := map[string]any{}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.Any(); return true })
	h.records <- m
	return nil
}

// shadowUpstream records what a mirror sends it: each request, with its
// body, on got; it answers as answer says, after release is closed if
// block is set.
type shadowUpstream struct {
	url     string
	got     chan shadowRequest
	release chan struct{}
	once    sync.Once
}

// unblock lets the blocked copies answer.
func (s *shadowUpstream) unblock() { s.once.Do(func() { close(s.release) }) }

type shadowRequest struct {
	method, uri string
	header      http.Header
	body        string
}

func startShadow(t *testing.T, block bool, answer func(w http.ResponseWriter)) *shadowUpstream {
	t.Helper()
	s := &shadowUpstream{got: make(chan shadowRequest, 64), release: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.got <- shadowRequest{r.Method, r.RequestURI, r.Header, string(b)}
		if block {
			<-s.release
		}
		answer(w)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(s.unblock) // first: Close waits for the blocked copies
	s.url = srv.URL
	return s
}

func (s *shadowUpstream) next(t *testing.T) shadowRequest {
	t.Helper()
	select {
	case r := <-s.got:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("the shadow got no copy")
	}
	return shadowRequest{}
}

// mirrorGateway serves route r on stable with the mirror policy cfg to
// service shadow at url, and a transform, counting into m.
func mirrorGateway(t *testing.T, url, cfg string) (*gateway, *Metrics) {
	t.Helper()
	f := splitFixture(t).withService("shadow", url, `,"retries":0`).
		policy(`{"name":"mirror","type":"mirror","config":` + cfg + `}`).
		policy(`{"name":"transform","type":"transform","config":{"request":{"path":"/v2/items","headers":{"set":{"X-Transformed":"yes"}}}}}`)
	m := NewMetrics(prometheus.NewRegistry())
	g := newGatewayWithOptions(t, Options{Metrics: m})
	g.apply(f.rev)
	return g, m
}

// waitCount waits for a counter to reach want: a shadow's result is
// counted on its own goroutine, after the client's answer.
func waitCount(t *testing.T, c prometheus.Collector, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(c) != want {
		if time.Now().After(deadline) {
			t.Fatalf("counter at %v; want %v", testutil.ToFloat64(c), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The shadow gets the request as the upstream gets it: method, the path
// and query after a transform, the header with the transform's field, the
// body.
func TestMirrorCopiesTheUpstreamsRequestWithItsBody(t *testing.T) {
	shadow := startShadow(t, false, func(w http.ResponseWriter) { w.WriteHeader(http.StatusAccepted) })
	g, m := mirrorGateway(t, shadow.url, `{"service_id":"shadow"}`)
	for _, tc := range []struct {
		desc    string
		body    io.Reader
		chunked bool
	}{
		{"a body of known length", strings.NewReader(`{"n":1}`), false},
		{"a chunked body", io.MultiReader(strings.NewReader(`{"n":`), strings.NewReader(`1}`)), true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			r := g.do("POST", "/items?x=1", tc.body, "Content-Type", "application/json", "X-Trace", "t-1")
			if r.status != http.StatusOK || string(r.body) != "stable" {
				t.Fatalf("client got %d %q; want stable's 200", r.status, r.body)
			}
			got := shadow.next(t)
			if got.method != "POST" || got.uri != "/v2/items?x=1" || got.body != `{"n":1}` ||
				got.header.Get("X-Trace") != "t-1" || got.header.Get("X-Transformed") != "yes" || got.header.Get("X-Request-Id") == "" {
				t.Fatalf("shadow got %s %s %q, header %v", got.method, got.uri, got.body, got.header)
			}
		})
	}
	waitCount(t, m.mirrored.WithLabelValues("r", "shadow", "2xx"), 2)
}

// Whatever the shadow does (hangs, drops the connection, fails), the
// client gets the primary's answer, and gets it while the shadow is
// still at work: it never waits for the copy.
func TestMirrorShadowNeverTouchesTheClientsAnswer(t *testing.T) {
	for _, tc := range []struct {
		desc   string
		block  bool
		answer func(w http.ResponseWriter)
		result string
	}{
		{"a slow shadow", true, func(w http.ResponseWriter) { w.WriteHeader(200) }, "2xx"},
		{"a shadow that drops the connection", true, func(w http.ResponseWriter) {
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				c.Close()
			}
		}, "failed"},
		{"a shadow that fails", true, func(w http.ResponseWriter) { w.WriteHeader(500) }, "5xx"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			shadow := startShadow(t, tc.block, tc.answer)
			g, m := mirrorGateway(t, shadow.url, `{"service_id":"shadow"}`)
			r := g.do("PUT", "/items", strings.NewReader("data"))
			if r.status != http.StatusOK || string(r.body) != "stable" {
				t.Fatalf("client got %d %q; want stable's 200", r.status, r.body)
			}
			// The client has its answer; the shadow holds the copy and is
			// blocked until released.
			if got := shadow.next(t); got.body != "data" {
				t.Fatalf("shadow got body %q", got.body)
			}
			shadow.unblock()
			waitCount(t, m.mirrored.WithLabelValues("r", "shadow", tc.result), 1)
		})
	}
}

// A body over max_body_bytes is not copied, whether its length is
// declared or turns out so; it is counted.
func TestMirrorSkipsABodyOverItsLimit(t *testing.T) {
	shadow := startShadow(t, false, func(w http.ResponseWriter) {})
	g, m := mirrorGateway(t, shadow.url, `{"service_id":"shadow","max_body_bytes":8}`)
	big := strings.Repeat("x", 9)
	for _, body := range []io.Reader{strings.NewReader(big), io.MultiReader(strings.NewReader(big[:4]), strings.NewReader(big[4:]))} {
		if r := g.do("POST", "/", body); r.status != http.StatusOK {
			t.Fatalf("client got %d; want 200", r.status)
		}
	}
	waitCount(t, m.mirrored.WithLabelValues("r", "shadow", "skipped_body"), 2)
	g.do("POST", "/", strings.NewReader(big[:8])) // at the limit: copied
	if got := shadow.next(t); got.body != big[:8] {
		t.Fatalf("shadow got %q; want the body at the limit (and nothing before it)", got.body)
	}
}

// At most max_concurrent copies are in flight; more are dropped and
// counted, and the client never waits for a slot.
func TestMirrorDropsCopiesBeyondItsConcurrency(t *testing.T) {
	shadow := startShadow(t, true, func(w http.ResponseWriter) {})
	g, m := mirrorGateway(t, shadow.url, `{"service_id":"shadow","max_concurrent":2}`)
	for range 5 {
		if r := g.get("/"); r.status != http.StatusOK {
			t.Fatalf("client got %d; want 200", r.status)
		}
	}
	shadow.next(t)
	shadow.next(t)
	if got := testutil.ToFloat64(m.mirrored.WithLabelValues("r", "shadow", "skipped_busy")); got != 3 {
		t.Fatalf("skipped_busy %v; want 3", got)
	}
	shadow.unblock()
	waitCount(t, m.mirrored.WithLabelValues("r", "shadow", "2xx"), 2)
	if r := g.get("/"); r.status != http.StatusOK { // slots given back
		t.Fatalf("client got %d; want 200", r.status)
	}
	shadow.next(t)
}

// A global mirror copies every route's requests.
func TestGlobalMirrorCopiesEveryRoute(t *testing.T) {
	shadow := startShadow(t, false, func(w http.ResponseWriter) {})
	f := splitFixture(t).withService("recorder", shadow.url).
		policy(`{"name":"mirror","type":"mirror","global":true,"config":{"service_id":"recorder"}}`)
	g := newGateway(t)
	g.apply(f.rev)
	g.get("/a")
	if got := shadow.next(t); got.uri != "/a" {
		t.Fatalf("recorder got %q; want /a", got.uri)
	}
}

// streamingPost posts to the gateway a body the test writes as it goes:
// it returns the body's writer and the status the client gets (0 if the
// request failed), once the body is closed.
func streamingPost(g *gateway) (*io.PipeWriter, <-chan int) {
	pr, pw := io.Pipe()
	status := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", g.base+"/", pr)
		resp, err := g.client.Do(req)
		if err != nil {
			pr.CloseWithError(err)
			status <- 0
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	return pw, status
}

// mirrorTarget is the route's one mirror target as the gateway serves it.
func mirrorTarget(t *testing.T, g *gateway) *policy.MirrorTarget {
	t.Helper()
	targets := g.handler.state.Load().policies.Chain("r").Mirrors()
	if len(targets) != 1 {
		t.Fatalf("route r has %d mirror targets; want 1", len(targets))
	}
	return targets[0]
}

// A copy takes its slot before any of the body is kept: with every slot
// taken, requests streaming their bodies are skipped at once, and no body
// is kept for them, so the memory mirrors hold is bounded by the slots
// (max_concurrent × max_body_bytes), not by the requests in flight.
func TestMirrorTakesItsSlotBeforeKeepingAnyOfTheBody(t *testing.T) {
	shadow := startShadow(t, true, func(w http.ResponseWriter) {})
	g, m := mirrorGateway(t, shadow.url, `{"service_id":"shadow","max_concurrent":1,"max_body_bytes":1048576}`)
	if r := g.do("POST", "/", strings.NewReader("first")); r.status != http.StatusOK {
		t.Fatalf("client got %d; want 200", r.status)
	}
	shadow.next(t) // its copy holds the one slot
	const uploads = 8
	var writers []*io.PipeWriter
	var statuses []<-chan int
	for range uploads {
		w, status := streamingPost(g)
		if _, err := w.Write(make([]byte, 64<<10)); err != nil {
			t.Fatal(err)
		}
		writers, statuses = append(writers, w), append(statuses, status)
	}
	// Every upload is still streaming: each was refused a slot before its
	// body ended, and none holds one.
	waitCount(t, m.mirrored.WithLabelValues("r", "shadow", "skipped_busy"), uploads)
	if got := mirrorTarget(t, g).InFlight(); got != 1 {
		t.Fatalf("%d slots taken while the uploads stream; want 1, the first copy's", got)
	}
	for i, w := range writers {
		w.Write([]byte("end"))
		w.Close()
		if got := <-statuses[i]; got != http.StatusOK {
			t.Fatalf("upload %d: client got %d; want 200", i, got)
		}
	}
	shadow.unblock()
	waitCount(t, m.mirrored.WithLabelValues("r", "shadow", "2xx"), 1)
	if got := mirrorTarget(t, g).InFlight(); got != 0 {
		t.Fatalf("%d slots taken once every copy is done; want 0", got)
	}
	select {
	case got := <-shadow.got:
		t.Fatalf("the shadow got a copy of a skipped upload (%d bytes)", len(got.body))
	default:
	}
}

// A body that streams past max_body_bytes is given up as soon as it
// does: nothing more of it is kept, and its slot is given back at once,
// so that another request's copy can go while it still streams.
func TestMirrorGivesUpABodyPastItsLimitAsItStreams(t *testing.T) {
	shadow := startShadow(t, false, func(w http.ResponseWriter) {})
	g, m := mirrorGateway(t, shadow.url, `{"service_id":"shadow","max_concurrent":1,"max_body_bytes":1024}`)
	w, status := streamingPost(g)
	if _, err := w.Write(make([]byte, 2048)); err != nil {
		t.Fatal(err)
	}
	waitCount(t, m.mirrored.WithLabelValues("r", "shadow", "skipped_body"), 1)
	if got := mirrorTarget(t, g).InFlight(); got != 0 {
		t.Fatalf("%d slots taken by a body past its limit; want 0", got)
	}
	if r := g.do("POST", "/", strings.NewReader("small")); r.status != http.StatusOK {
		t.Fatalf("client got %d; want 200", r.status)
	}
	if got := shadow.next(t); got.body != "small" {
		t.Fatalf("shadow got %q; want the small body", got.body)
	}
	w.Write(make([]byte, 2048))
	w.Close()
	if got := <-status; got != http.StatusOK {
		t.Fatalf("the long upload got %d; want 200", got)
	}
	waitCount(t, m.mirrored.WithLabelValues("r", "shadow", "2xx"), 1)
	if got := testutil.ToFloat64(m.mirrored.WithLabelValues("r", "shadow", "skipped_body")); got != 1 {
		t.Fatalf("skipped_body %v; want 1", got)
	}
}

// BenchmarkServeHTTPWithSplit is BenchmarkServeHTTP with a traffic split
// on the route: half the requests, by a sticky draw of the client's
// address, to a second service. The difference is the policy's cost.
//
//	go test -run '^$' -bench 'ServeHTTP' -benchmem ./proxy/
func BenchmarkServeHTTPWithSplit(b *testing.B) {
	g := &gateway{t: b, handler: New(Options{})}
	b.Cleanup(g.handler.Close)
	up := testupstream.Canned(b, okKiB)
	f := newPolicyFixture(b, up).withService("canary", up).
		policy(`{"name":"split","type":"traffic-split","config":{"services":[{"service_id":"canary","percent":50}],"sticky":"client"}}`)
	g.apply(f.rev)
	benchServeHTTP(b, g.handler, nil)
}

// BenchmarkServeHTTPWithMirror is BenchmarkServeHTTP with a mirror
// policy on the route, untraced: each request is copied to a second
// service on a goroutine of its own, whose allocations count too.
//
//	go test -run '^$' -bench 'ServeHTTPWithMirror' -benchtime 2000x -benchmem ./proxy/
func BenchmarkServeHTTPWithMirror(b *testing.B) {
	g := &gateway{t: b, handler: New(Options{})}
	b.Cleanup(g.handler.Close)
	up := testupstream.Canned(b, okKiB)
	f := newPolicyFixture(b, up).withService("shadow", up).
		policy(`{"name":"mirror","type":"mirror","config":{"service_id":"shadow"}}`)
	g.apply(f.rev)
	benchServeHTTP(b, g.handler, nil)
}
