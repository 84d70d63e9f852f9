//go:build unix

package main

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/testupstream"
)

const statsToken = "stats-token-0123456789abcdef012345"

// waitStats polls p's GET /admin/v1/stats until done accepts the answer,
// failing the test after 20s.
func waitStats(t *testing.T, p *proc, done func(*gatehouse.ClusterStats) bool) *gatehouse.ClusterStats {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := p.do("GET", "/admin/v1/stats", statsToken, "")
		cs := &gatehouse.ClusterStats{}
		if r.status != http.StatusOK || json.Unmarshal(r.body, cs) != nil {
			t.Fatalf("stats: %d %s", r.status, r.body)
		}
		if done(cs) {
			return cs
		}
		if time.Now().After(deadline) {
			t.Fatalf("the figures are still %.3000s", r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func routeStats(cs *gatehouse.ClusterStats, id string) *gatehouse.RouteStats {
	for i := range cs.Routes {
		if cs.Routes[i].RouteID == id {
			return &cs.Routes[i]
		}
	}
	return nil
}

// hasCodes reports whether route id's figures count exactly codes.
func hasCodes(cs *gatehouse.ClusterStats, id string, codes map[string]uint64) bool {
	r := routeStats(cs, id)
	return r != nil && maps.Equal(r.Codes, codes)
}

// statsRoutes creates service up at upstreamURL and a route per id, /id/*
// stripped before the upstream, through p.
func statsRoutes(t *testing.T, p *proc, upstreamURL string, ids ...string) {
	t.Helper()
	wantStatus(t, "create service", p.do("POST", "/admin/v1/services", statsToken, `{"id":"up","name":"up","url":"`+upstreamURL+`"}`), http.StatusCreated)
	for _, id := range ids {
		wantStatus(t, "create route "+id, p.do("POST", "/admin/v1/routes", statsToken,
			`{"id":"`+id+`","name":"`+id+`","paths":["/`+id+`/*"],"strip_path":true,"service_id":"up"}`), http.StatusCreated)
	}
}

// TestStatsOfOneProcessCountTheRequestsItProxiedByRouteAndCode: requests
// through the proxy of a --role all process show in its GET /stats under
// their route and code (those no route took as unmatched), read from its
// data plane at once, not from the figures it publishes; a route a deploy
// removed leaves them.
func TestStatsOfOneProcessCountTheRequestsItProxiedByRouteAndCode(t *testing.T) {
	up := testupstream.Start(t)
	// An interval longer than the test: the figures are read live.
	p := launch(t, t.TempDir(), []string{"--node-name", "solo", "--stats-interval", "1h"}, "GATEHOUSE_ADMIN_TOKEN="+statsToken)
	statsRoutes(t, p, up.URL, "a", "b")
	wantSucceeded(t, "deployment", p.deployAndWait(statsToken, `{}`))
	proxy := "http://" + p.proxyAddr
	for _, tc := range []struct {
		path   string
		status int
		times  int
	}{
		{"/a/status/200", 200, 3},
		{"/a/status/503", 503, 1},
		{"/b/status/404", 404, 2},
		{"/nowhere", 404, 1},
	} {
		for range tc.times {
			wantStatus(t, "GET "+tc.path, p.do("GET", proxy+tc.path, "", ""), tc.status)
		}
	}
	cs := waitStats(t, p, func(cs *gatehouse.ClusterStats) bool { return cs.Total.Requests == 7 })
	for _, tc := range []struct {
		route   string
		codes   map[string]uint64
		classes map[string]uint64
	}{
		{"a", map[string]uint64{"200": 3, "503": 1}, map[string]uint64{"2xx": 3, "5xx": 1}},
		{"b", map[string]uint64{"404": 2}, map[string]uint64{"4xx": 2}},
	} {
		r := routeStats(cs, tc.route)
		if r == nil || !maps.Equal(r.Codes, tc.codes) || !maps.Equal(r.Classes, tc.classes) || r.Latency.Count != r.Requests {
			t.Errorf("route %s: got %+v; want codes %v, classes %v, a latency for each request", tc.route, r, tc.codes, tc.classes)
		}
	}
	if cs.Unmatched.Codes["404"] != 1 {
		t.Errorf("unmatched: %+v; want the one 404 of /nowhere", cs.Unmatched)
	}
	if len(cs.Nodes) != 1 || cs.Nodes[0].Node != "solo" || !cs.Nodes[0].Included || cs.Nodes[0].Share != 1 || cs.Nodes[0].Requests != 7 {
		t.Errorf("nodes: %+v; want solo, included, all 7 requests", cs.Nodes)
	}

	wantStatus(t, "delete route b", p.do("DELETE", "/admin/v1/routes/b", statsToken, ""), http.StatusNoContent)
	wantSucceeded(t, "deployment without b", p.deployAndWait(statsToken, `{}`))
	cs = waitStats(t, p, func(cs *gatehouse.ClusterStats) bool { return routeStats(cs, "b") == nil })
	if !hasCodes(cs, "a", map[string]uint64{"200": 3, "503": 1}) {
		t.Fatalf("route a after a deploy that kept it: %+v; want its counts kept", routeStats(cs, "a"))
	}
}

// TestStatsOfAControlNodeSumTheFiguresBothDataNodesPublished: a control
// node, which has no data plane, answers the sum of the figures two data
// nodes publish with their share each; a data node that stopped is listed
// as down and left out. The service's targets' health shows each data
// node's view, and the stopped node's no more.
func TestStatsOfAControlNodeSumTheFiguresBothDataNodesPublished(t *testing.T) {
	up := testupstream.Start(t)
	dir := t.TempDir()
	ctl := launchNode(t, dir, "control", "ctl", "GATEHOUSE_ADMIN_TOKEN="+statsToken)
	edge := func(name string) *proc {
		return startNode(t, "data", name, []string{"--data-dir", dir, "--stats-interval", "50ms"})
	}
	edge1, edge2 := edge("edge-1"), edge("edge-2")
	statsRoutes(t, ctl, up.URL, "api")
	wantSucceeded(t, "deployment", ctl.deployAndWait(statsToken, `{}`))
	for _, tc := range []struct {
		node   *proc
		path   string
		status int
		times  int
	}{
		{edge1, "/api/status/201", 201, 3},
		{edge2, "/api/status/201", 201, 1},
		{edge2, "/api/status/418", 418, 1},
	} {
		for range tc.times {
			wantStatus(t, "GET "+tc.path, tc.node.do("GET", "http://"+tc.node.proxyAddr+tc.path, "", ""), tc.status)
		}
	}
	cs := waitStats(t, ctl, func(cs *gatehouse.ClusterStats) bool {
		return hasCodes(cs, "api", map[string]uint64{"201": 4, "418": 1})
	})
	type share struct {
		node     string
		included bool
		requests uint64
		share    float64
	}
	var got []share
	for _, n := range cs.Nodes {
		got = append(got, share{n.Node, n.Included, n.Requests, n.Share})
	}
	if want := []share{{"edge-1", true, 3, 0.6}, {"edge-2", true, 2, 0.4}}; !slices.Equal(got, want) || cs.Total.Requests != 5 {
		t.Fatalf("nodes %+v, total %d; want %+v, total 5", got, cs.Total.Requests, want)
	}
	if api := routeStats(cs, "api"); len(api.Nodes) != 2 || api.Nodes[0].Requests != 3 || api.Nodes[1].Requests != 2 {
		t.Fatalf("route api by node: %+v; want edge-1 3, edge-2 2", api.Nodes)
	}
	// Each data node's view of the service's target, published with its
	// figures.
	v := waitHealth(t, ctl, "up", func(v *gatehouse.ServiceHealthView) bool { return len(v.Nodes) == 2 })
	if v.State != gatehouse.ServiceHealthy || len(v.Targets) != 1 || v.Targets[0].HealthyNodes != 2 || v.Targets[0].Nodes[1].Node != "edge-2" {
		t.Fatalf("health of up: %+v; want its target healthy on edge-1 and edge-2", v)
	}

	edge2.stop()
	cs = waitStats(t, ctl, func(cs *gatehouse.ClusterStats) bool { return cs.Total.Requests == 3 })
	if n := cs.Nodes; len(n) != 2 || n[1].Node != "edge-2" || n[1].State != gatehouse.NodeDown || n[1].Included {
		t.Fatalf("nodes after edge-2 stopped: %+v; want edge-2 down and left out", n)
	}
	if v := waitHealth(t, ctl, "up", func(v *gatehouse.ServiceHealthView) bool { return true }); len(v.Nodes) != 1 || v.Nodes[0] != "edge-1" {
		t.Fatalf("health of up after edge-2 stopped: seen by %v; want edge-1 alone", v.Nodes)
	}
}
