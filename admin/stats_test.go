package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/deploy"
)

// liveFigures is a data plane's Stats, fixed by the test.
type liveFigures gatehouse.NodeStats

func (f *liveFigures) Stats() gatehouse.NodeStats { return gatehouse.NodeStats(*f) }

// statsNode stores a node's record as its Agent would, heartbeating
// now (or stopped).
func (a *testAPI) statsNode(name, role string, stopped bool) {
	a.t.Helper()
	rec, err := gatehouse.Encode(&gatehouse.Node{Meta: gatehouse.Meta{ID: name}, Role: role, LastSeen: time.Now().UTC(),
		HeartbeatMS: time.Hour.Milliseconds(), Stopped: stopped}, nil)
	if err != nil {
		a.t.Fatal(err)
	}
	if err := a.store.Create(context.Background(), rec); err != nil {
		a.t.Fatal(err)
	}
}

// publishStats stores node's figures as its Agent would.
func (a *testAPI) publishStats(node string, s gatehouse.NodeStats) {
	a.t.Helper()
	body, err := json.Marshal(s)
	if err != nil {
		a.t.Fatal(err)
	}
	if err := a.store.Create(context.Background(), &gatehouse.Record{Kind: gatehouse.KindStats, ID: node, Body: body}); err != nil {
		a.t.Fatal(err)
	}
}

func (a *testAPI) stats(path string, token string) gatehouse.ClusterStats {
	a.t.Helper()
	r := a.do("GET", path, "", h("Authorization", "Bearer "+token))
	if r.status != http.StatusOK {
		a.t.Fatalf("GET %s: got %d %s; want 200", path, r.status, r.body)
	}
	var cs gatehouse.ClusterStats
	if err := json.Unmarshal(r.body, &cs); err != nil {
		a.t.Fatal(err)
	}
	return cs
}

// counters are a route's figures with n requests of code, each of them
// within the first latency bucket, at rate.
func counters(route string, code int, n uint64, rate float64) gatehouse.RouteCounters {
	c := gatehouse.RouteCounters{RouteID: route, Requests: n, Rate: rate, Codes: map[int]uint64{code: n},
		LatencySum: float64(n) * .0001, LatencyBuckets: make([]uint64, len(gatehouse.StatsLatencyBounds))}
	c.Classes[code/100-1] = n
	for i := range c.LatencyBuckets {
		c.LatencyBuckets[i] = n
	}
	return c
}

// TestStatsSumThisNodesFiguresAndThoseOfTheLiveNodesThatPublished: the
// figures are this node's data plane's, read live, plus those every other
// live data node published; a node that is down, or live with none
// published, is listed and left out, with why; a control node is not
// listed, this node's own published record not counted twice; a
// read-only token reads them.
func TestStatsSumThisNodesFiguresAndThoseOfTheLiveNodesThatPublished(t *testing.T) {
	at := time.Date(2026, 12, 5, 1, 0, 0, 0, time.UTC)
	own := &liveFigures{At: at, Revision: 4, Routes: []gatehouse.RouteCounters{counters("pets", 200, 6, 2)},
		Unmatched: counters("", 404, 1, 0)}
	api := newTestAPI(t, func(c *apiConfig) { c.admin.Stats, c.admin.NodeName = own, "test-node" })
	api.statsNode("edge-1", gatehouse.RoleData, false)
	api.statsNode("edge-2", gatehouse.RoleData, true)
	api.statsNode("edge-3", gatehouse.RoleData, false) // live, nothing published yet
	api.statsNode("ctl", gatehouse.RoleControl, false)
	api.publishStats("test-node", gatehouse.NodeStats{Routes: []gatehouse.RouteCounters{counters("pets", 200, 1000, 0)}})
	api.publishStats("edge-1", gatehouse.NodeStats{At: at.Add(-time.Second), Revision: 4, WindowSeconds: 5,
		Routes: []gatehouse.RouteCounters{counters("pets", 503, 2, 0.4), counters("users", 201, 1, 0.2)},
		Other:  &gatehouse.RouteCounters{Requests: 1, Classes: [5]uint64{0, 1}}, DroppedRoutes: 1})
	api.publishStats("edge-2", gatehouse.NodeStats{Routes: []gatehouse.RouteCounters{counters("pets", 200, 500, 9)}})

	cs := api.stats(Prefix+"/stats", api.makeToken(gatehouse.RoleReadOnly, ""))
	if cs.Total.Requests != 7+3+1 || cs.Total.Rate != 2.6 || cs.DroppedRoutes != 1 {
		t.Fatalf("total %d requests at %v/s, %d routes dropped; want 11 (7 here, 4 on edge-1) at 2.6/s, 1 dropped",
			cs.Total.Requests, cs.Total.Rate, cs.DroppedRoutes)
	}
	if want := map[string]uint64{"2xx": 8, "4xx": 1, "5xx": 2}; !maps.Equal(cs.Total.Classes, want) {
		t.Errorf("total classes %v; want %v", cs.Total.Classes, want)
	}
	if want := map[string]uint64{"404": 1}; cs.Unmatched.Requests != 1 || !maps.Equal(cs.Unmatched.Codes, want) {
		t.Errorf("unmatched %+v; want this node's one 404", cs.Unmatched)
	}
	var routes []string
	for _, r := range cs.Routes {
		routes = append(routes, r.RouteID)
	}
	if !slices.Equal(routes, []string{"pets", "users"}) {
		t.Fatalf("routes %v; want pets and users", routes)
	}
	pets := cs.Routes[0]
	if want := map[string]uint64{"200": 6, "503": 2}; pets.Requests != 8 || !maps.Equal(pets.Codes, want) || pets.Rate != 2.4 {
		t.Errorf("pets: %d requests, codes %v, %v/s; want 8, %v, 2.4/s", pets.Requests, pets.Codes, pets.Rate, want)
	}
	if l := pets.Latency; l.Count != 8 || l.Buckets[0].Count != 8 || l.Buckets[0].LE != gatehouse.StatsLatencyBounds[0] || l.P99 > gatehouse.StatsLatencyBounds[0] {
		t.Errorf("pets latency %+v; want 8 in the first bucket, the quantiles within it", l)
	}
	if n := pets.Nodes; len(n) != 2 || n[0].Node != "edge-1" || n[0].Share != 0.25 || n[1].Node != "test-node" || n[1].Share != 0.75 {
		t.Errorf("pets by node %+v; want edge-1 a quarter, test-node three quarters", n)
	}
	type node struct {
		name     string
		state    string
		included bool
		excluded string
		requests uint64
	}
	var nodes []node
	for _, n := range cs.Nodes {
		nodes = append(nodes, node{n.Node, n.State, n.Included, n.Excluded, n.Requests})
	}
	if want := []node{{"edge-1", "live", true, "", 4}, {"edge-2", "down", false, gatehouse.ExcludedDown, 0},
		{"edge-3", "live", false, gatehouse.ExcludedNone, 0}, {"test-node", "live", true, "", 7}}; !slices.Equal(nodes, want) {
		t.Errorf("nodes %+v; want %+v", nodes, want)
	}
	if e := cs.Nodes[0]; !e.SnapshotAt.Equal(at.Add(-time.Second)) || e.Revision != 4 || e.DroppedRoutes != 1 {
		t.Errorf("edge-1 %+v; want its snapshot's time, revision and dropped routes", e)
	}

	users := api.stats(Prefix+"/stats?route_id=users", api.token)
	if len(users.Routes) != 1 || users.Routes[0].RouteID != "users" || users.Total.Requests != cs.Total.Requests {
		t.Fatalf("route_id=users: routes %+v, total %d; want users only and the cluster's total", users.Routes, users.Total.Requests)
	}
}

// TestStatsOfAControlNodeSumTheDataNodesFigures: a node without a data
// plane answers with what the others published.
func TestStatsOfAControlNodeSumTheDataNodesFigures(t *testing.T) {
	api := newTestAPI(t, func(c *apiConfig) { c.admin.NodeName = "ctl" })
	api.statsNode("edge-1", gatehouse.RoleData, false)
	api.publishStats("edge-1", gatehouse.NodeStats{Routes: []gatehouse.RouteCounters{counters("pets", 200, 3, 1)}})
	cs := api.stats(Prefix+"/stats", api.token)
	if cs.Total.Requests != 3 || len(cs.Routes) != 1 || cs.Routes[0].Requests != 3 {
		t.Fatalf("got %+v; want edge-1's 3 requests of pets", cs)
	}
}

// TestAnUnreadableNodeSnapshotCostsOnlyThatNodesFigures: a figures
// record that does not decode leaves GET /stats and a service's health
// 200 with the other nodes' figures; the node is listed, left out, and
// said to be unreadable.
func TestAnUnreadableNodeSnapshotCostsOnlyThatNodesFigures(t *testing.T) {
	for _, tc := range []struct{ desc, body string }{
		{"a field of the wrong type", `{"routes":7}`},
		{"cut short", `{"routes":[{"route_id":"pets"`},
		{"not JSON", `figures`},
		{"empty", ``},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			api := newTestAPI(t, func(c *apiConfig) { c.admin.NodeName = "ctl" })
			api.must(201, "POST", Prefix+"/services", `{"id":"billing","name":"billing","url":"http://127.0.0.1:9999"}`)
			api.statsNode("edge-1", gatehouse.RoleData, false)
			api.statsNode("edge-2", gatehouse.RoleData, false)
			api.publishStats("edge-1", gatehouse.NodeStats{Routes: []gatehouse.RouteCounters{counters("pets", 200, 3, 1)},
				Services: []gatehouse.ServiceHealth{{ServiceID: "billing", Targets: []gatehouse.TargetHealth{
					targetOn("http://a", gatehouse.TargetHealthy, time.Now(), nil)}}}})
			if err := api.store.Create(context.Background(), &gatehouse.Record{Kind: gatehouse.KindStats, ID: "edge-2", Body: []byte(tc.body)}); err != nil {
				t.Fatal(err)
			}

			cs := api.stats(Prefix+"/stats", api.token)
			if cs.Total.Requests != 3 || len(cs.Routes) != 1 || cs.Routes[0].Requests != 3 {
				t.Errorf("got total %d, routes %+v; want edge-1's 3 requests of pets", cs.Total.Requests, cs.Routes)
			}
			type node struct{ name, excluded string }
			var nodes []node
			for _, n := range cs.Nodes {
				nodes = append(nodes, node{n.Node, n.Excluded})
			}
			// test-node is the test API's own node, which publishes nothing.
			want := []node{{"edge-1", ""}, {"edge-2", gatehouse.ExcludedUnreadable}, {"test-node", gatehouse.ExcludedNone}}
			if !slices.Equal(nodes, want) || cs.Nodes[1].Included {
				t.Errorf("nodes %+v; want %+v, edge-2 not included", cs.Nodes, want)
			}

			r := api.must(200, "GET", Prefix+"/services/billing/health", "")
			var v gatehouse.ServiceHealthView
			if err := json.Unmarshal(r.body, &v); err != nil {
				t.Fatal(err)
			}
			if v.State != gatehouse.ServiceHealthy || !slices.Equal(v.Nodes, []string{"edge-1"}) {
				t.Errorf("billing's health %+v; want healthy as edge-1 sees it", v)
			}
		})
	}
}

// TestStatsRefuseAQueryTheyDoNotTake: the query is checked as every
// list's is.
func TestStatsRefuseAQueryTheyDoNotTake(t *testing.T) {
	api := newTestAPI(t)
	for _, q := range []string{"?route=pets", "?route_id="} {
		assertProblem(t, api.do("GET", Prefix+"/stats"+q, ""), http.StatusBadRequest)
	}
}

// TestStatsDocumentStatesTheBoundsOfPublishedFigures: the numbers the
// admin API's document gives are the code's.
func TestStatsDocumentStatesTheBoundsOfPublishedFigures(t *testing.T) {
	var doc struct {
		Paths map[string]struct {
			Get struct {
				Description string `json:"description"`
			} `json:"get"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatal(err)
	}
	desc := doc.Paths[Prefix+"/stats"].Get.Description
	for _, want := range []string{
		fmt.Sprintf("every %d seconds", int(deploy.DefaultStatsInterval/time.Second)),
		fmt.Sprintf("at most %d routes", gatehouse.StatsMaxRoutes),
		fmt.Sprintf("at most %d distinct status codes", gatehouse.StatsMaxCodes),
	} {
		if !strings.Contains(desc, want) {
			t.Errorf("GET /stats's description lacks %q", want)
		}
	}
}
