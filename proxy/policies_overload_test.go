package proxy

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// useClock makes the gateway's policies read time from a clock the test
// moves; it must come before the first apply, which hands it to them.
func useClock(g *gateway, start time.Time) *testClock {
	c := testenv.NewClock(start)
	g.handler.opts.Now = c.Now
	return c
}

// onTwoHosts makes the fixture's route "r" answer host a.test and adds
// route "r2" for host b.test on the same service.
func onTwoHosts(f *policyFixture) *policyFixture {
	f.t.Helper()
	f.rev.Routes[0].Hosts = []string{"a.test"}
	r2 := gatehouse.NewRoute()
	if err := json.Unmarshal([]byte(`{"id":"r2","service_id":"s","hosts":["b.test"],"paths":["/*"]}`), r2); err != nil {
		f.t.Fatal(err)
	}
	r2.Normalize()
	f.rev.Routes = append(f.rev.Routes, r2)
	return f
}

// onService moves the policies the fixture's route lists to its service,
// so that every route of the service inherits them.
func onService(f *policyFixture) *policyFixture {
	f.rev.Services[0].Policies = append(f.rev.Services[0].Policies, f.rev.Routes[0].Policies...)
	f.rev.Routes[0].Policies = nil
	return f
}

// hold sends a request that the upstream stalls on, so that it stays in
// flight, and returns what abandons it: the client goes away.
func hold(t *testing.T, g *gateway, host string) (abandon func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", g.base+"/fault/stall", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := g.client.Do(req); err == nil {
			resp.Body.Close() // answered, not held: waitRequests says so
		}
	}()
	abandon = func() { cancel(); <-done }
	t.Cleanup(abandon)
	return abandon
}

// waitRequests waits until the upstream has received n requests.
func waitRequests(t *testing.T, up *testupstream.Upstream, n int64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); up.Requests() < n; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the upstream received %d requests; want %d", up.Requests(), n)
		}
	}
}

// eventually repeats a request while the gateway refuses it with 503 (it
// learns of an abandoned request when it notices the client went away)
// and fails unless it is answered want in the end.
func eventually(t *testing.T, g *gateway, want int, path string, headers ...string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		r := g.get(path, headers...)
		if r.status == want {
			return
		}
		if r.status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("%s: status %d: %s; want %d once the abandoned requests are released", path, r.status, r.body, want)
		}
	}
}

// wantRefusal checks a 503 the policies answered with.
func wantRefusal(t *testing.T, r *response, detail, retryAfter string) {
	t.Helper()
	doc := assertProblem(t, r, http.StatusServiceUnavailable)
	if doc["detail"] != detail || r.header.Get("Retry-After") != retryAfter {
		t.Fatalf("detail %q, Retry-After %q; want %q, %q", doc["detail"], r.header.Get("Retry-After"), detail, retryAfter)
	}
}

func TestConcurrencyLimitExceededReturns503WithRetryAfter(t *testing.T) {
	up := testupstream.Start(t)
	g := newGateway(t)
	g.apply(newPolicyFixture(t, up.URL).
		policy(`{"name":"cap","type":"concurrency-limit","config":{"max":2,"retry_after_seconds":7}}`).rev)

	abandonFirst, abandonSecond := hold(t, g, ""), hold(t, g, "")
	waitRequests(t, up, 2)
	wantRefusal(t, g.get("/echo"), "Too many requests in flight on this route.", "7")
	if n := up.Requests(); n != 2 {
		t.Fatalf("the upstream received %d requests; want the refused one kept from it", n)
	}

	// The clients give up: their slots are released.
	abandonFirst()
	abandonSecond()
	eventually(t, g, http.StatusOK, "/echo")
	// Completed exchanges release theirs: with max 2, these would be
	// refused from the third on otherwise.
	for range 5 {
		if r := g.get("/echo"); r.status != http.StatusOK {
			t.Fatalf("status %d: %s; want 200", r.status, r.body)
		}
	}
}

func TestConcurrencySlotReleasedOnUpstreamFailure(t *testing.T) {
	up := testupstream.Start(t)
	g := newGateway(t)
	g.apply(newPolicyFixture(t, up.URL).
		policy(`{"name":"cap","type":"concurrency-limit","config":{"max":1}}`).rev)
	for _, path := range []string{"/fault/reset", "/fault/garbage", "/status/500", "/fault/reset", "/echo"} {
		r := g.get(path)
		if r.status == http.StatusServiceUnavailable {
			t.Fatalf("%s: 503 %s; a failed exchange kept its slot", path, r.body)
		}
	}
}

func TestAdaptiveConcurrencyShedsWith503OnEveryRouteItCovers(t *testing.T) {
	up := testupstream.Start(t)
	g := newGateway(t)
	// A limit pinned at 1, applied globally: both routes share it.
	g.apply(onTwoHosts(newPolicyFixture(t, up.URL)).
		policy(`{"name":"shed","type":"adaptive-concurrency","global":true,
			"config":{"min_limit":1,"max_limit":1,"initial_limit":1,"retry_after_seconds":2}}`).rev)

	abandon := hold(t, g, "a.test")
	waitRequests(t, up, 1)
	wantRefusal(t, g.get("/echo", "Host", "b.test"), "The gateway is shedding load; retry later.", "2")
	wantRefusal(t, g.get("/echo", "Host", "a.test"), "The gateway is shedding load; retry later.", "2")
	abandon()
	eventually(t, g, http.StatusOK, "/echo", "Host", "b.test")
}

func TestOpenCircuitReturns503UntilHalfOpenTrialSucceeds(t *testing.T) {
	up := testupstream.Start(t)
	g := newGateway(t)
	clock := useClock(g, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	g.apply(onService(onTwoHosts(newPolicyFixture(t, up.URL)).
		policy(`{"name":"cb","type":"circuit-breaker","config":{"failures":3,"open_seconds":30}}`)).rev)

	// The upstream's own 502s pass through, and count.
	for range 3 {
		if r := g.get("/status/502", "Host", "a.test"); r.status != http.StatusBadGateway || string(r.body) != "502 Bad Gateway\n" {
			t.Fatalf("status %d: %s; want the upstream's 502", r.status, r.body)
		}
	}
	seen := up.Requests()
	// The circuit is the service's: the other route is refused too, and
	// the upstream is not contacted.
	const open = "The circuit for this service is open after repeated upstream failures."
	wantRefusal(t, g.get("/echo", "Host", "b.test"), open, "30")
	clock.Advance(20 * time.Second)
	wantRefusal(t, g.get("/echo", "Host", "a.test"), open, "10")
	if n := up.Requests(); n != seen {
		t.Fatalf("the upstream received %d requests while the circuit was open; want none", n-seen)
	}

	// Half-open: one trial goes on; while it is out, the rest are refused.
	clock.Advance(10 * time.Second)
	abandonTrial := hold(t, g, "a.test")
	waitRequests(t, up, seen+1)
	wantRefusal(t, g.get("/echo", "Host", "b.test"), open, "1")
	// A trial the client gives up decides nothing: the next request is
	// the trial, and its failure opens the circuit again.
	abandonTrial()
	eventually(t, g, http.StatusBadGateway, "/status/502", "Host", "b.test")
	wantRefusal(t, g.get("/echo", "Host", "a.test"), open, "30")
	// A trial's success closes it.
	clock.Advance(30 * time.Second)
	for range 3 {
		if r := g.get("/echo", "Host", "a.test"); r.status != http.StatusOK {
			t.Fatalf("status %d once half-open: %s; want 200", r.status, r.body)
		}
	}
}

func TestHalfOpenTrialFailureReopensTheCircuit(t *testing.T) {
	g := newGateway(t)
	clock := useClock(g, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	// Nothing listens: the gateway's own 502s are upstream failures too.
	g.apply(newPolicyFixture(t, "http://"+closedPort(t)).
		policy(`{"name":"cb","type":"circuit-breaker","config":{"failures":2,"open_seconds":60}}`).rev)
	const open = "The circuit for this service is open after repeated upstream failures."
	for range 2 {
		assertProblem(t, g.get("/"), http.StatusBadGateway)
	}
	wantRefusal(t, g.get("/"), open, "60")
	clock.Advance(time.Minute)
	assertProblem(t, g.get("/"), http.StatusBadGateway) // the trial
	wantRefusal(t, g.get("/"), open, "60")
}

func TestDeprecatedRouteCarriesDeprecationSunsetAndLink(t *testing.T) {
	up := testupstream.Start(t)
	g := newGateway(t)
	g.apply(newPolicyFixture(t, up.URL).
		policy(`{"name":"v1","type":"deprecation","config":{"deprecated_at":"2024-06-30T00:00:00Z",
			"sunset_at":"2999-01-01T00:00:00Z","successor":"https://api.example.com/v2/"}}`).rev)
	for _, path := range []string{"/echo", "/status/404"} {
		r := g.get(path)
		if want := map[string]int{"/echo": 200, "/status/404": 404}[path]; r.status != want {
			t.Fatalf("%s: status %d; want the upstream's %d", path, r.status, want)
		}
		for k, want := range map[string]string{
			"Deprecation": "@1719705600",
			"Sunset":      "Tue, 01 Jan 2999 00:00:00 GMT",
			"Link":        `<https://api.example.com/v2/>; rel="successor-version"`,
		} {
			if got := r.header.Values(k); len(got) != 1 || got[0] != want {
				t.Errorf("%s: %s %q; want %q", path, k, got, want)
			}
		}
	}
}

func TestRoutePastSunsetReturns410WithSuccessor(t *testing.T) {
	up := testupstream.Start(t)
	g := newGateway(t)
	clock := useClock(g, time.Date(2029, 12, 31, 23, 59, 59, 0, time.UTC))
	g.apply(newPolicyFixture(t, up.URL).
		policy(`{"name":"v1","type":"deprecation","config":{"sunset_at":"2030-01-01T00:00:00Z",
			"successor":"https://api.example.com/v2/"}}`).rev)
	if r := g.get("/echo"); r.status != http.StatusOK {
		t.Fatalf("before the sunset: status %d: %s; want 200", r.status, r.body)
	}
	seen := up.Requests()

	// The sunset comes without a redeploy.
	clock.Advance(time.Second)
	for _, method := range []string{"GET", "POST", "DELETE"} {
		r := g.do(method, "/echo", nil)
		doc := assertProblem(t, r, http.StatusGone)
		if doc["detail"] != "This API was retired on Tue, 01 Jan 2030 00:00:00 GMT." || doc["successor"] != "https://api.example.com/v2/" {
			t.Fatalf("%s: detail %q, successor %q", method, doc["detail"], doc["successor"])
		}
		if r.header.Get("Sunset") != "Tue, 01 Jan 2030 00:00:00 GMT" || r.header.Get("Link") != `<https://api.example.com/v2/>; rel="successor-version"` {
			t.Fatalf("%s: Sunset %q, Link %q", method, r.header.Get("Sunset"), r.header.Get("Link"))
		}
	}
	if n := up.Requests(); n != seen {
		t.Fatalf("the upstream received %d requests after the sunset; want none", n-seen)
	}
}

func TestDeprecationLinkJoinsTheUpstreamsOwnLinks(t *testing.T) {
	up := testupstream.Start(t)
	g := newGateway(t)
	g.apply(newPolicyFixture(t, up.URL).
		policy(`{"name":"v1","type":"deprecation","config":{"successor":"https://api.example.com/v2/"}}`).rev)
	r := g.get("/headers?set=Link:%3C/items%3Fpage=2%3E%3B%20rel=%22next%22")
	got := r.header.Values("Link")
	want := []string{`</items?page=2>; rel="next"`, `<https://api.example.com/v2/>; rel="successor-version"`}
	if !slices.Equal(got, want) {
		t.Fatalf("Link %q; want the upstream's then the successor: %q", got, want)
	}
}

func TestUpstreamBreakingOffMidResponseCountsAgainstTheCircuit(t *testing.T) {
	up := testupstream.Start(t)
	g := newGateway(t)
	g.apply(newPolicyFixture(t, up.URL).
		policy(`{"name":"cb","type":"circuit-breaker","config":{"failures":2,"open_seconds":30}}`).rev)
	for range 2 {
		// The status is sent, then the body breaks off: the client sees
		// a cut connection, the circuit a failure.
		req, _ := http.NewRequest("GET", g.base+"/fault/reset-mid-response?length=100000&sent=100", nil)
		if resp, err := g.client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	r := g.get("/echo")
	if doc := assertProblem(t, r, http.StatusServiceUnavailable); doc["detail"] != "The circuit for this service is open after repeated upstream failures." {
		t.Fatalf("after two responses broken off: %v; want the circuit open", doc)
	}
}
