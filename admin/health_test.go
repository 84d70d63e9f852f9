package admin

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// targetOn is a target's health on one node.
func targetOn(url, state string, since time.Time, failure *gatehouse.TargetFailure) gatehouse.TargetHealth {
	return gatehouse.TargetHealth{URL: url, Weight: 100,
		TargetCondition: gatehouse.TargetCondition{State: state, Since: since, LastFailure: failure}}
}

// TestServiceHealthShowsEveryNodesViewOfEachTarget: a target healthy for
// one node and down for another is shown both ways, summed up as mixed,
// and the service as degraded; GET /stats lists the same view; a
// read-only token reads it.
func TestServiceHealthShowsEveryNodesViewOfEachTarget(t *testing.T) {
	at := time.Date(2026, 12, 5, 1, 0, 0, 0, time.UTC)
	refused := &gatehouse.TargetFailure{At: at.Add(time.Minute), Check: gatehouse.CheckActive, Cause: "connection refused"}
	own := &liveFigures{At: at, Services: []gatehouse.ServiceHealth{{ServiceID: "billing", ActiveChecks: true, PassiveChecks: true,
		Targets: []gatehouse.TargetHealth{targetOn("http://a", gatehouse.TargetHealthy, at, nil), targetOn("http://b", gatehouse.TargetUnhealthy, at.Add(time.Minute), refused)}}}}
	api := newTestAPI(t, func(c *apiConfig) { c.admin.Stats, c.admin.NodeName = own, "test-node" })
	api.must(201, "POST", Prefix+"/services", `{"id":"billing","name":"billing","url":"http://127.0.0.1:9999"}`)
	api.statsNode("edge-1", gatehouse.RoleData, false)
	api.publishStats("edge-1", gatehouse.NodeStats{At: at, Services: []gatehouse.ServiceHealth{{ServiceID: "billing", ActiveChecks: true, PassiveChecks: true,
		Targets: []gatehouse.TargetHealth{targetOn("http://a", gatehouse.TargetHealthy, at, nil), targetOn("http://b", gatehouse.TargetHealthy, at, nil)}}}})

	r := api.must(200, "GET", Prefix+"/services/billing/health", "", h("Authorization", "Bearer "+api.makeToken(gatehouse.RoleReadOnly, "")))
	var v gatehouse.ServiceHealthView
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatal(err)
	}
	if v.ServiceID != "billing" || v.State != gatehouse.ServiceDegraded || !slices.Equal(v.Nodes, []string{"edge-1", "test-node"}) || !v.ActiveChecks {
		t.Fatalf("got %+v; want billing degraded, seen by edge-1 and test-node, active checks on", v)
	}
	type seen struct {
		url, state string
		healthy    int
		onEdge     string
		onHere     string
	}
	var got []seen
	for _, tv := range v.Targets {
		got = append(got, seen{tv.URL, tv.State, tv.HealthyNodes, tv.Nodes[0].State, tv.Nodes[1].State})
	}
	if want := []seen{{"http://a", "healthy", 2, "healthy", "healthy"}, {"http://b", "mixed", 1, "healthy", "unhealthy"}}; !slices.Equal(got, want) {
		t.Errorf("targets %+v; want %+v", got, want)
	}
	if f := v.Targets[1].Nodes[1].LastFailure; f == nil || *f != *refused || !v.Targets[1].Nodes[1].Since.Equal(at.Add(time.Minute)) {
		t.Errorf("b on test-node: %+v; want since its change and its failure %+v", v.Targets[1].Nodes[1], refused)
	}

	cs := api.stats(Prefix+"/stats", api.token)
	if len(cs.Services) != 1 || cs.Services[0].State != gatehouse.ServiceDegraded || len(cs.Services[0].Targets) != 2 {
		t.Errorf("GET /stats services %+v; want billing's view", cs.Services)
	}
}

// TestServiceHealthAnswersForAServiceThatExistsOnly: an unknown id is
// 404, a deleted one 410, a service no node serves yet is unknown, a
// token limited to a consumer may not read it, and nothing but reading
// is allowed.
func TestServiceHealthAnswersForAServiceThatExistsOnly(t *testing.T) {
	api := newTestAPI(t)
	api.must(201, "POST", Prefix+"/services", `{"id":"idle","name":"idle","url":"http://127.0.0.1:9999"}`)
	api.must(201, "POST", Prefix+"/services", `{"id":"gone","name":"gone","url":"http://127.0.0.1:9999"}`)
	api.must(204, "DELETE", Prefix+"/services/gone", "")
	api.must(201, "POST", Prefix+"/consumers", `{"id":"c","name":"c"}`)
	scoped := api.makeToken(gatehouse.RoleAdmin, "c")
	for _, tc := range []struct {
		desc, method, path string
		token              string
		status             int
	}{
		{"not deployed", "GET", "/services/idle/health", "", 200},
		{"head", "HEAD", "/services/idle/health", "", 200},
		{"unknown", "GET", "/services/nope/health", "", 404},
		{"deleted", "GET", "/services/gone/health", "", 410},
		{"limited to a consumer", "GET", "/services/idle/health", scoped, 403},
		{"a write", "POST", "/services/idle/health", "", 405},
		{"a query", "GET", "/services/idle/health?node=a", "", 400},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var hs []header
			if tc.token != "" {
				hs = append(hs, h("Authorization", "Bearer "+tc.token))
			}
			r := api.do(tc.method, Prefix+tc.path, "", hs...)
			if r.status != tc.status {
				t.Fatalf("%s %s: got %d %s; want %d", tc.method, tc.path, r.status, r.body, tc.status)
			}
			if tc.status >= 400 && tc.method != "HEAD" {
				assertProblem(t, r, tc.status)
			}
			if tc.status == 200 && tc.method == "GET" {
				var v gatehouse.ServiceHealthView
				if err := json.Unmarshal(r.body, &v); err != nil || v.State != gatehouse.ServiceUnknown || v.Targets == nil || v.Nodes == nil {
					t.Fatalf("got %s; want idle's state unknown, no targets, no nodes", r.body)
				}
			}
			if tc.status == 405 && r.header.Get("Allow") != "GET, HEAD, OPTIONS" {
				t.Errorf("Allow %q; want GET, HEAD, OPTIONS", r.header.Get("Allow"))
			}
		})
	}
}

// TestServiceHealthDocumentStatesTheBoundOfPublishedTargets: the number
// the admin API's document gives is the code's.
func TestServiceHealthDocumentStatesTheBoundOfPublishedTargets(t *testing.T) {
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
	want := fmt.Sprintf("at most %d targets", gatehouse.StatsMaxTargets)
	if d := doc.Paths[Prefix+"/services/{id}/health"].Get.Description; !strings.Contains(d, want) {
		t.Errorf("GET /services/{id}/health's description lacks %q", want)
	}
}
