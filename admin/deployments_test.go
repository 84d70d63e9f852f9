package admin

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// deployAndWait creates a deployment and polls it until it finishes.
func (a *testAPI) deployAndWait(body string) map[string]any {
	a.t.Helper()
	r := a.must(202, "POST", "/admin/v1/deployments", body)
	loc := r.header.Get("Location")
	deadline := time.Now().Add(10 * time.Second)
	for {
		dep := a.must(200, "GET", loc, "").json()
		if s := dep["state"]; s == "succeeded" || s == "failed" {
			return dep
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("deployment %s still %v after 10s", loc, dep["state"])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDeployReturns202WithLocationThenSucceeds(t *testing.T) {
	api := newTestAPI(t)
	svc := api.service("s")
	api.must(201, "POST", "/admin/v1/routes", `{"name":"r","paths":["/a"],"service_id":"`+svc+`"}`)
	r := api.must(202, "POST", "/admin/v1/deployments", `{}`)
	body := r.json()
	loc := r.header.Get("Location")
	if loc != "/admin/v1/deployments/"+body["id"].(string) || r.header.Get("Retry-After") == "" || r.header.Get("ETag") == "" {
		t.Fatalf("202: Location %q, Retry-After %q, ETag %q, body %s", loc, r.header.Get("Retry-After"), r.header.Get("ETag"), r.body)
	}
	if body["state"] != "pending" || body["action"] != "deploy" || body["revision"] != 1.0 {
		t.Fatalf("202 body: got %s; want a pending deploy of revision 1", r.body)
	}
	dep := api.deployAndWait(`{"action":"deploy"}`)
	if dep["state"] != "succeeded" || dep["revision"] != 2.0 || dep["finished_at"] == nil {
		t.Fatalf("got %v; want revision 2 succeeded", dep)
	}
	rev, _ := api.applier.last()
	if rev == nil || rev.Number != 2 || len(rev.Routes) != 1 || len(rev.Services) != 1 {
		t.Fatalf("applied %+v; want revision 2 with one route and one service", rev)
	}
	revision := api.must(200, "GET", "/admin/v1/revisions/2", "").json()
	if len(revision["routes"].([]any)) != 1 {
		t.Fatalf("revision 2: %v", revision)
	}
}

func TestDeploymentThatDoesNotCompileFailsWithReasonAndKeepsLastGood(t *testing.T) {
	api := newTestAPI(t)
	svc := api.service("s")
	api.deployAndWait(`{}`)
	api.must(201, "POST", "/admin/v1/routes", `{"name":"uncompilable","paths":["/a"],"service_id":"`+svc+`"}`)
	dep := api.deployAndWait(`{}`)
	// The node that could not apply it is named, with its compile error.
	if dep["state"] != "failed" || dep["reason"] != `node test-node failed to apply revision 2: route "uncompilable" does not compile` {
		t.Fatalf("got %v; want failed with the compile error as reason", dep)
	}
	if rev, _ := api.applier.last(); rev == nil || rev.Number != 1 {
		t.Fatalf("serving %+v; want revision 1 still", rev)
	}
}

func TestRollbackReappliesAnEarlierRevision(t *testing.T) {
	api := newTestAPI(t)
	svc := api.service("s")
	api.deployAndWait(`{}`)
	api.must(201, "POST", "/admin/v1/routes", `{"name":"r","paths":["/a"],"service_id":"`+svc+`"}`)
	api.deployAndWait(`{}`)
	dep := api.deployAndWait(`{"action":"rollback","revision":1}`)
	rev, _ := api.applier.last()
	if dep["state"] != "succeeded" || rev == nil || rev.Number != 1 || len(rev.Routes) != 0 {
		t.Fatalf("rollback: %v, applied %+v; want revision 1 (no routes)", dep, rev)
	}
}

func TestUndeployAppliesTheEmptyConfiguration(t *testing.T) {
	api := newTestAPI(t)
	api.service("s")
	api.deployAndWait(`{}`)
	dep := api.deployAndWait(`{"action":"undeploy"}`)
	rev, ok := api.applier.last()
	if dep["state"] != "succeeded" || dep["revision"] != 0.0 || !ok || rev != nil {
		t.Fatalf("undeploy: %v, applied %+v; want the empty configuration", dep, rev)
	}
}

func TestBadDeploymentsAreRefusedAndChangeNothing(t *testing.T) {
	api := newTestAPI(t)
	tests := []struct {
		desc, body string
		status     int
		fields     []string
	}{
		{"rollback to a missing revision", `{"action":"rollback","revision":7}`, 422, []string{"revision"}},
		{"rollback without a revision", `{"action":"rollback"}`, 400, []string{"revision"}},
		{"deploy choosing its revision", `{"action":"deploy","revision":3}`, 400, []string{"revision"}},
		{"unknown action", `{"action":"redeploy"}`, 400, []string{"action"}},
		{"server-owned fields", `{"state":"succeeded","reason":"x"}`, 400, []string{"reason", "state"}},
		{"client-chosen id", `{"id":"mine"}`, 400, []string{"id"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			before := api.snapshot()
			r := api.do("POST", "/admin/v1/deployments", tc.body)
			assertProblem(t, r, tc.status)
			if got := r.problemFields(); fmt.Sprint(got) != fmt.Sprint(tc.fields) {
				t.Fatalf("got fields %v; want %v", got, tc.fields)
			}
			api.unchanged(before)
		})
	}
}

func TestRevisionsAndDeploymentsAreReadOnly(t *testing.T) {
	api := newTestAPI(t)
	api.deployAndWait(`{}`)
	for _, tc := range []struct{ method, path, allow string }{
		{"POST", "/admin/v1/revisions", "GET, HEAD, OPTIONS"},
		{"DELETE", "/admin/v1/revisions/1", "GET, HEAD, OPTIONS"},
		{"PATCH", "/admin/v1/deployments/x", "GET, HEAD, OPTIONS"},
	} {
		r := api.do(tc.method, tc.path, `{}`)
		assertProblem(t, r, 405)
		if r.header.Get("Allow") != tc.allow {
			t.Fatalf("%s %s: got Allow %q; want %q", tc.method, tc.path, r.header.Get("Allow"), tc.allow)
		}
	}
}

func TestReadOnlyTokenCannotDeploy(t *testing.T) {
	api := newTestAPI(t)
	ro := "Bearer " + api.makeToken("read-only", "")
	before := api.snapshot()
	assertProblem(t, api.do("POST", "/admin/v1/deployments", `{}`, h("Authorization", ro)), 403)
	api.unchanged(before)
}

func TestReadyzAnswers503UntilARevisionIsServed(t *testing.T) {
	api := newTestAPI(t)
	api.must(200, "GET", "/healthz", "", h("Authorization", ""))
	r := api.do("GET", "/readyz", "", h("Authorization", ""))
	assertProblem(t, r, 503)
	if r.header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	api.deployAndWait(`{}`)
	api.must(200, "GET", "/readyz", "", h("Authorization", ""))
	assertProblem(t, api.do("POST", "/readyz", "", h("Authorization", "")), 405)
}

func TestMetricsAreServedWithoutCredentials(t *testing.T) {
	api := newTestAPI(t)
	r := api.must(200, "GET", "/metrics", "", h("Authorization", ""))
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("got Content-Type %q; want the Prometheus text format", ct)
	}
	r = api.do("DELETE", "/metrics", "", h("Authorization", ""))
	assertProblem(t, r, 405)
	if r.header.Get("Allow") != "GET, HEAD, OPTIONS" {
		t.Fatalf("got Allow %q", r.header.Get("Allow"))
	}
}

func TestNodesListRegisteredNodesWithTheirDerivedState(t *testing.T) {
	api := newTestAPI(t)
	// Liveness is judged as deployments judge it, by the Deployer's Watch
	// on this process's clock.
	now := time.Now()
	for _, n := range []*gatehouse.Node{
		{Meta: gatehouse.Meta{ID: "edge-1"}, Role: gatehouse.RoleData, Revision: 3, DeploymentID: "d3", LastSeen: now, HeartbeatMS: 2000},
		{Meta: gatehouse.Meta{ID: "edge-2"}, Role: gatehouse.RoleData, LastSeen: now.Add(-7 * time.Second), HeartbeatMS: 2000,
			ApplyError: "does not compile", FailedDeploymentID: "d3"},
		{Meta: gatehouse.Meta{ID: "ctl"}, Role: gatehouse.RoleControl, LastSeen: now, HeartbeatMS: 2000},
	} {
		rec, err := gatehouse.Encode(n, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := api.store.Create(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	list := api.must(200, "GET", "/admin/v1/nodes", "").json()
	var got []string
	for _, v := range list["data"].([]any) {
		n := v.(map[string]any)
		got = append(got, fmt.Sprintf("%v:%v:%v:%v", n["id"], n["role"], n["revision"], n["state"]))
	}
	// test-node is this process, registered at start as the binary's is.
	if want := "[test-node:all:0:live edge-1:data:3:live edge-2:data:0:down ctl:control:0:live]"; fmt.Sprint(got) != want {
		t.Fatalf("nodes: got %v; want %s", got, want)
	}
	n := api.must(200, "GET", "/admin/v1/nodes/edge-2", "").json()
	if n["apply_error"] != "does not compile" || n["state"] != "down" || n["last_seen"] == nil {
		t.Fatalf("node edge-2: %v", n)
	}
	api.must(200, "HEAD", "/admin/v1/nodes/edge-1", "")
	api.must(200, "HEAD", "/admin/v1/nodes", "")
	assertProblem(t, api.do("GET", "/admin/v1/nodes/nope", ""), 404)
	for _, tc := range []struct{ method, path string }{
		{"POST", "/admin/v1/nodes"},
		{"DELETE", "/admin/v1/nodes/edge-1"},
		{"PUT", "/admin/v1/nodes/edge-1"},
	} {
		r := api.do(tc.method, tc.path, `{}`)
		assertProblem(t, r, 405)
		if r.header.Get("Allow") != "GET, HEAD, OPTIONS" {
			t.Fatalf("%s %s: got Allow %q", tc.method, tc.path, r.header.Get("Allow"))
		}
	}
	if r := api.do("OPTIONS", "/admin/v1/nodes", ""); r.status != 204 {
		t.Fatalf("OPTIONS /admin/v1/nodes: %d", r.status)
	}
}

func TestDeploymentNodesAreTheServers(t *testing.T) {
	api := newTestAPI(t)
	r := api.do("POST", "/admin/v1/deployments", `{"nodes":[{"node":"a","state":"applied"}]}`)
	assertProblem(t, r, 400)
	if got := r.problemFields(); fmt.Sprint(got) != "[nodes]" {
		t.Fatalf("got fields %v; want [nodes]", got)
	}
}
