package proxy

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/testupstream"
	"github.com/prometheus/client_golang/prometheus"
)

// statsGateway is a gateway whose figures hold at most maxRoutes routes,
// with an upstream; services up (the upstream).
func statsGateway(t *testing.T, maxRoutes int) (*gateway, string) {
	t.Helper()
	up := testupstream.Start(t)
	g := newGatewayWithOptions(t, Options{Metrics: NewMetrics(prometheus.NewRegistry()), StatsMaxRoutes: maxRoutes})
	return g, fmt.Sprintf(`{"id":"up","name":"up","url":%q,"retries":0}`, up.URL)
}

func routeOf(s gatehouse.NodeStats, id string) *gatehouse.RouteCounters {
	for i := range s.Routes {
		if s.Routes[i].RouteID == id {
			return &s.Routes[i]
		}
	}
	return nil
}

// TestStatsCountEachRoutesResponsesByCodeClassAndLatency: requests
// through the proxy show in its figures under their route, by status code
// and class, with one latency observation each; those no route took are
// unmatched.
func TestStatsCountEachRoutesResponsesByCodeClassAndLatency(t *testing.T) {
	g, up := statsGateway(t, 0)
	g.apply(revision(t, 3, []string{up}, []string{`{"id":"a","service_id":"up","paths":["/a/*"],"strip_path":true}`,
		`{"id":"b","service_id":"up","paths":["/b/*"],"strip_path":true}`}))
	for _, path := range []string{"/a/status/200", "/a/status/200", "/a/status/404", "/a/status/503", "/b/status/201", "/nowhere"} {
		g.get(path)
	}
	s := g.handler.Stats()
	if s.Revision != 3 || len(s.Routes) != 2 {
		t.Fatalf("figures of revision %d with %d routes; want revision 3, routes a and b", s.Revision, len(s.Routes))
	}
	for _, tc := range []struct {
		desc    string
		got     *gatehouse.RouteCounters
		codes   map[int]uint64
		classes [5]uint64
	}{
		{"route a", routeOf(s, "a"), map[int]uint64{200: 2, 404: 1, 503: 1}, [5]uint64{0, 2, 0, 1, 1}},
		{"route b", routeOf(s, "b"), map[int]uint64{201: 1}, [5]uint64{0, 1, 0, 0, 0}},
		{"unmatched", &s.Unmatched, map[int]uint64{404: 1}, [5]uint64{0, 0, 0, 1, 0}},
	} {
		var want uint64
		for _, n := range tc.codes {
			want += n
		}
		got := tc.got
		if got == nil {
			t.Errorf("%s: no figures", tc.desc)
			continue
		}
		if !maps.Equal(got.Codes, tc.codes) || got.Classes != tc.classes || got.Requests != want {
			t.Errorf("%s: got codes %v, classes %v, %d requests; want %v, %v, %d", tc.desc, got.Codes, got.Classes, got.Requests, tc.codes, tc.classes, want)
		}
		if n := len(got.LatencyBuckets); n != len(gatehouse.StatsLatencyBounds) || got.LatencyBuckets[n-1] > want || got.LatencySum <= 0 {
			t.Errorf("%s: latency buckets %v, sum %v; want %d cumulative buckets up to %d and a positive sum",
				tc.desc, got.LatencyBuckets, got.LatencySum, len(gatehouse.StatsLatencyBounds), want)
		}
	}
}

// TestStatsOfARouteRemovedByADeployGoAndAKeptRouteKeepsItsCounts: the
// figures follow the revision served, and a redeploy keeping a route
// keeps its counts (its series are kept too).
func TestStatsOfARouteRemovedByADeployGoAndAKeptRouteKeepsItsCounts(t *testing.T) {
	g, up := statsGateway(t, 0)
	g.apply(revision(t, 1, []string{up}, []string{`{"id":"old","service_id":"up","paths":["/old/*"],"strip_path":true}`,
		`{"id":"kept","service_id":"up","paths":["/kept/*"],"strip_path":true}`}))
	g.get("/old/status/200")
	g.get("/kept/status/418")
	g.apply(revision(t, 2, []string{up}, []string{`{"id":"kept","service_id":"up","paths":["/kept/*"],"strip_path":true}`}))
	s := g.handler.Stats()
	if routeOf(s, "old") != nil {
		t.Fatalf("route old, removed by revision 2, still has figures: %+v", s.Routes)
	}
	if kept := routeOf(s, "kept"); kept == nil || kept.Codes[418] != 1 {
		t.Fatalf("route kept: got %+v; want its 418 counted before the redeploy", kept)
	}
	// Added again, the route starts from nothing.
	g.apply(revision(t, 3, []string{up}, []string{`{"id":"old","service_id":"up","paths":["/old/*"],"strip_path":true}`}))
	if old := routeOf(g.handler.Stats(), "old"); old == nil || old.Requests != 0 || old.Codes != nil {
		t.Fatalf("route old added again: got %+v; want no requests", old)
	}
}

// TestStatsHoldTheBusiestRoutesUpToTheCapAndSumTheOthers: over the cap
// on routes, the busiest are kept and the rest summed, so the totals stay
// whole; a route's codes are capped at gatehouse.StatsMaxCodes, the
// others counted in their class.
func TestStatsHoldTheBusiestRoutesUpToTheCapAndSumTheOthers(t *testing.T) {
	g, up := statsGateway(t, 2)
	var routes []string
	for _, id := range []string{"r1", "r2", "r3", "r4"} {
		routes = append(routes, fmt.Sprintf(`{"id":%q,"service_id":"up","paths":["/%[1]s/*"],"strip_path":true}`, id))
	}
	g.apply(revision(t, 1, []string{up}, routes))
	for id, n := range map[string]int{"r1": 1, "r2": 3, "r3": 2, "r4": 1} {
		for range n {
			g.get("/" + id + "/status/200")
		}
	}
	codes := gatehouse.StatsMaxCodes + 4
	for i := range codes {
		g.get(fmt.Sprintf("/r2/status/%d", 400+i))
	}
	s := g.handler.Stats()
	var kept []string
	for _, r := range s.Routes {
		kept = append(kept, r.RouteID)
	}
	if !slices.Equal(kept, []string{"r2", "r3"}) || s.DroppedRoutes != 2 || s.Other == nil || s.Other.Requests != 2 || s.Other.Classes[1] != 2 {
		t.Fatalf("kept %v, dropped %d, other %+v; want r2 and r3, the others' 2 requests summed", kept, s.DroppedRoutes, s.Other)
	}
	r2 := routeOf(s, "r2")
	if len(r2.Codes) != gatehouse.StatsMaxCodes || r2.Classes[3] != uint64(codes) || r2.Requests != uint64(3+codes) {
		t.Fatalf("r2: %d codes, %d 4xx, %d requests; want %d codes, %d 4xx (every one in its class), %d requests",
			len(r2.Codes), r2.Classes[3], r2.Requests, gatehouse.StatsMaxCodes, codes, 3+codes)
	}
}

// TestSampleStatsMeasuresRatesBetweenTwoSamplesAndKeepsAnIdleSnapshot:
// the rate is the requests between two samples per second of the time
// between them; with nothing new, the next sample is what the last one
// was, its time included, so that it is not published again.
func TestSampleStatsMeasuresRatesBetweenTwoSamplesAndKeepsAnIdleSnapshot(t *testing.T) {
	g, up := statsGateway(t, 0)
	g.apply(revision(t, 1, []string{up}, []string{`{"id":"a","service_id":"up","paths":["/a/*"],"strip_path":true}`}))
	g.get("/a/status/200")
	first := g.handler.SampleStats()
	if first.WindowSeconds != 0 || routeOf(first, "a").Rate != 0 {
		t.Fatalf("first sample: window %v, rate %v; want no rate yet", first.WindowSeconds, routeOf(first, "a").Rate)
	}
	for range 4 {
		g.get("/a/status/200")
	}
	second := g.handler.SampleStats()
	a := routeOf(second, "a")
	if want := 4 / second.WindowSeconds; second.WindowSeconds <= 0 || a.Rate != want || a.Requests != 5 {
		t.Fatalf("second sample: %d requests, rate %v over %vs; want 5 and %v (4 requests over the window)", a.Requests, a.Rate, second.WindowSeconds, want)
	}
	if live := g.handler.Stats(); routeOf(live, "a").Rate != a.Rate {
		t.Fatalf("live figures' rate %v; want the last sample's %v", routeOf(live, "a").Rate, a.Rate)
	}
	third := g.handler.SampleStats() // the rate falls to 0: a change
	fourth := g.handler.SampleStats()
	if routeOf(third, "a").Rate != 0 || !fourth.At.Equal(third.At) {
		t.Fatalf("idle samples: rate %v, at %v then %v; want rate 0 and the same time", routeOf(third, "a").Rate, third.At, fourth.At)
	}
}

// TestRecordingARequestAllocatesNothing: once a route's collectors are
// resolved and a code was answered once, counting a request (its class,
// code and duration) allocates nothing; a new code claims a slot without
// allocating either.
func TestRecordingARequestAllocatesNothing(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	rm := m.forRoute("r")
	start := time.Now()
	m.observe(rm, 200, start)
	m.observe(rm, 404, start)
	code := 200
	if n := testing.AllocsPerRun(1000, func() {
		m.observe(rm, code, start)
		code ^= 200 ^ 404
	}); n != 0 {
		t.Fatalf("observe allocates %v times per request; want 0", n)
	}
	var c codeCounts
	next := 100
	if n := testing.AllocsPerRun(100, func() { c.add(next); next++ }); n != 0 {
		t.Fatalf("a new code allocates %v times; want 0", n)
	}
}
