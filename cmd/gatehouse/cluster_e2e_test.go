//go:build unix

package main

// End-to-end fault tests of a cluster on a real PostgreSQL (a throwaway
// server of internal/pgtest, skipped without the binaries unless CI=true):
// real processes, real sockets, internal/testupstream as the upstream.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/internal/redistest"
	"github.com/gatehouse/gatehouse/internal/testupstream"
)

const (
	pgToken    = "pg-cluster-token-0123456789abcdef"
	mergePatch = "application/merge-patch+json"
)

// pgCluster is a PostgreSQL server and the nodes a test starts on it.
type pgCluster struct {
	t     testing.TB
	pg    *pgtest.Server
	store string
}

// newPGCluster starts a PostgreSQL server with an empty database for t.
func newPGCluster(t testing.TB) *pgCluster {
	t.Helper()
	pg := pgtest.Start(t)
	dsn, err := pg.CreateDatabase("gatehouse")
	if err != nil {
		t.Fatal(err)
	}
	return &pgCluster{t: t, pg: pg, store: dsn}
}

// node starts a node on the cluster's store; extra flags override the
// harness's (--heartbeat 200ms). A control node creates the admin token
// pgToken if the store has none.
func (c *pgCluster) node(role, name string, extra ...string) *proc {
	c.t.Helper()
	flags := append([]string{"--store", c.store, "--data-dir", c.t.TempDir()}, extra...)
	return startNode(c.t, role, name, flags, "GATEHOUSE_ADMIN_TOKEN="+pgToken)
}

// get sends GET url through a data node's proxy and returns the status and
// the name of the upstream that answered (X-Upstream-Name).
func get(client *http.Client, url string) (int, string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var discard [4096]byte
	for {
		if _, err := resp.Body.Read(discard[:]); err != nil {
			break
		}
	}
	return resp.StatusCode, resp.Header.Get("X-Upstream-Name"), nil
}

// waitServes polls url until the upstream named want answers it with 200,
// failing the test after timeout.
func waitServes(t testing.TB, client *http.Client, url, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var status int
	var name string
	var err error
	for time.Now().Before(deadline) {
		status, name, err = get(client, url)
		if err == nil && status == http.StatusOK && name == want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("GET %s: still status %d from upstream %q (error %v) after %v; want 200 from %q", url, status, name, err, timeout, want)
}

// createEcho creates service svc at upstreamURL and route /echo/* to it.
func createEcho(t testing.TB, ctl *proc, upstreamURL string) {
	t.Helper()
	wantStatus(t, "create service", ctl.do("POST", "/admin/v1/services", pgToken, `{"id":"svc","name":"svc","url":"`+upstreamURL+`"}`), http.StatusCreated)
	wantStatus(t, "create route", ctl.do("POST", "/admin/v1/routes", pgToken, `{"id":"echo","name":"echo","paths":["/echo/*"],"service_id":"svc"}`), http.StatusCreated)
}

// pointService points service svc at upstreamURL (in the draft).
func pointService(t testing.TB, ctl *proc, upstreamURL string) {
	t.Helper()
	wantStatus(t, "patch service", ctl.do("PATCH", "/admin/v1/services/svc", pgToken, `{"url":"`+upstreamURL+`"}`, "Content-Type", mergePatch), http.StatusOK)
}

func wantSucceeded(t testing.TB, what string, dep map[string]any) {
	t.Helper()
	if dep["state"] != "succeeded" {
		t.Fatalf("%s: %v; want succeeded", what, dep)
	}
}

// TestPostgresStoppedDataNodesKeepServingAdminAnswers503ThenRecovers stops
// PostgreSQL under a running cluster: the data node keeps routing on the
// revision it holds, the admin API says 503 (with Retry-After and a
// problem body, never 500), and once PostgreSQL is back everything
// recovers without a restart.
func TestPostgresStoppedDataNodesKeepServingAdminAnswers503ThenRecovers(t *testing.T) {
	c := newPGCluster(t)
	up := testupstream.Start(t, testupstream.WithName("a"))
	ctl := c.node("control", "ctl")
	edge := c.node("data", "edge-1")
	createEcho(t, ctl, up.URL)
	wantSucceeded(t, "first deployment", ctl.deployAndWait(pgToken, `{}`))
	proxy := "http://" + edge.proxyAddr
	waitServes(t, edge.client, proxy+"/echo/x", "a", 5*time.Second)

	c.pg.Stop()
	// Longer than three heartbeats (200 ms): every heartbeat fails meanwhile.
	time.Sleep(time.Second)
	for i := range 50 {
		status, name, err := get(edge.client, proxy+"/echo/x")
		if err != nil || status != http.StatusOK || name != "a" {
			t.Fatalf("request %d through the data node with PostgreSQL stopped: status %d from %q, error %v; want 200 from a", i, status, name, err)
		}
	}
	for _, req := range []struct{ method, path, body string }{
		{"GET", "/admin/v1/services", ""},
		{"POST", "/admin/v1/services", `{"id":"other","name":"other","url":"` + up.URL + `"}`},
		{"POST", "/admin/v1/deployments", `{}`},
	} {
		what := req.method + " " + req.path + " with PostgreSQL stopped"
		r := ctl.do(req.method, req.path, pgToken, req.body)
		checkProblem(t, what, r, http.StatusServiceUnavailable, "application/problem+json")
		if ra := r.header.Get("Retry-After"); ra == "" {
			t.Errorf("%s: no Retry-After", what)
		}
	}

	if err := c.pg.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := ctl.do("GET", "/admin/v1/services", pgToken, "")
		if r.status == http.StatusOK {
			break
		}
		if r.status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("admin API after PostgreSQL restarted: status %d (%s); want 503 until it recovers, then 200", r.status, r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b := testupstream.Start(t, testupstream.WithName("b"))
	pointService(t, ctl, b.URL)
	// The outage is not held against the data node: the deployment waits
	// for it rather than succeed with no node applying it.
	dep := ctl.deployAndWait(pgToken, `{}`)
	wantSucceeded(t, "deployment after PostgreSQL restarted", dep)
	if got := fmt.Sprint(dep["nodes"]); got != "[map[node:edge-1 state:applied]]" {
		t.Fatalf("deployment after PostgreSQL restarted: nodes %s; want edge-1 applied", got)
	}
	waitServes(t, edge.client, proxy+"/echo/x", "b", 10*time.Second)
}

// TestTwoControlNodesUpdatingOneResourceOneGets412 races two control
// nodes' conditional updates of one service: exactly one wins, and the
// stored value is the winner's.
func TestTwoControlNodesUpdatingOneResourceOneGets412(t *testing.T) {
	c := newPGCluster(t)
	ctls := []*proc{c.node("control", "ctl-1"), c.node("control", "ctl-2")}
	createEcho(t, ctls[0], "http://127.0.0.1:9")

	var etags []string
	for i, p := range ctls {
		r := p.do("GET", "/admin/v1/services/svc", pgToken, "")
		wantStatus(t, fmt.Sprintf("GET through ctl-%d", i+1), r, http.StatusOK)
		etags = append(etags, r.header.Get("ETag"))
	}
	if etags[0] == "" || etags[0] != etags[1] {
		t.Fatalf("ETags: %q; want one, the same from both nodes", etags)
	}

	results := make([]response, 2)
	errs := make([]error, 2)
	var start, wg sync.WaitGroup
	start.Add(1)
	for i, p := range ctls {
		wg.Go(func() {
			start.Wait()
			results[i], errs[i] = p.send("PATCH", "/admin/v1/services/svc", pgToken,
				fmt.Sprintf(`{"name":"from-ctl-%d"}`, i+1), "If-Match", etags[i], "Content-Type", mergePatch)
		})
	}
	start.Done()
	wg.Wait()
	winner := -1
	for i := range ctls {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		switch results[i].status {
		case http.StatusOK:
			if winner >= 0 {
				t.Fatalf("both PATCHes succeeded: %s and %s", results[winner].body, results[i].body)
			}
			winner = i
		case http.StatusPreconditionFailed:
			checkProblem(t, "the losing PATCH", results[i], http.StatusPreconditionFailed, "application/problem+json")
		default:
			t.Fatalf("PATCH through ctl-%d: status %d (%s); want 200 or 412", i+1, results[i].status, results[i].body)
		}
	}
	if winner < 0 {
		t.Fatalf("no PATCH succeeded: %s; %s", results[0].body, results[1].body)
	}
	want := fmt.Sprintf("from-ctl-%d", winner+1)
	for i, p := range ctls {
		r := p.do("GET", "/admin/v1/services/svc", pgToken, "")
		var svc struct{ Name string }
		json.Unmarshal(r.body, &svc)
		if svc.Name != want || r.header.Get("ETag") != results[winner].header.Get("ETag") {
			t.Errorf("service through ctl-%d: %s, ETag %s; want the winner's name %q and ETag %s",
				i+1, r.body, r.header.Get("ETag"), want, results[winner].header.Get("ETag"))
		}
	}
}

// TestDeploysUnderLoadThroughTwoDataNodesFailNoRequest deploys every
// ~200ms, switching the route between two upstreams, while clients load
// both data nodes: no request fails, and both upstreams serve.
func TestDeploysUnderLoadThroughTwoDataNodesFailNoRequest(t *testing.T) {
	c := newPGCluster(t)
	ups := []*testupstream.Upstream{
		testupstream.Start(t, testupstream.WithName("a"), testupstream.WithNoRecord()),
		testupstream.Start(t, testupstream.WithName("b"), testupstream.WithNoRecord()),
	}
	ctl := c.node("control", "ctl")
	edges := []*proc{c.node("data", "edge-1"), c.node("data", "edge-2")}
	createEcho(t, ctl, ups[0].URL)
	wantSucceeded(t, "first deployment", ctl.deployAndWait(pgToken, `{}`))
	for _, e := range edges {
		waitServes(t, e.client, "http://"+e.proxyAddr+"/echo/x", "a", 5*time.Second)
	}

	const clients, loadFor = 4, 3 * time.Second
	var (
		stop     atomic.Bool
		wg       sync.WaitGroup
		total    atomic.Int64
		mu       sync.Mutex
		failures []string
		served   = map[string]int{}
	)
	for i := range clients {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}, Timeout: 10 * time.Second}
		defer client.CloseIdleConnections()
		wg.Go(func() {
			for n := i; !stop.Load(); n++ {
				e := edges[n%len(edges)]
				status, name, err := get(client, fmt.Sprintf("http://%s/echo/%d", e.proxyAddr, n))
				total.Add(1)
				mu.Lock()
				if err != nil || status != http.StatusOK {
					failures = append(failures, fmt.Sprintf("through %s: status %d, error %v", e.proxyAddr, status, err))
				} else {
					served[name]++
				}
				mu.Unlock()
			}
		})
	}
	deployments := 0
	for end := time.Now().Add(loadFor); time.Now().Before(end); {
		next := time.Now().Add(200 * time.Millisecond)
		deployments++
		pointService(t, ctl, ups[deployments%2].URL)
		dep := ctl.deployAndWait(pgToken, `{}`)
		if dep["state"] != "succeeded" {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("deployment %d under load: %v", deployments, dep)
		}
		time.Sleep(time.Until(next))
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d deployments, %d requests, served by upstream: %v", deployments, total.Load(), served)
	if len(failures) > 0 {
		t.Fatalf("%d of %d requests failed during deployments; first: %s", len(failures), total.Load(), failures[0])
	}
	if served["a"] == 0 || served["b"] == 0 || deployments < 2 {
		t.Fatalf("served by upstream: %v after %d deployments; want both a and b", served, deployments)
	}
}

// nodeProgress is a deployment's nodes, as "node:state" strings.
func nodeProgress(dep map[string]any) []string {
	var out []string
	nodes, _ := dep["nodes"].([]any)
	for _, n := range nodes {
		m, _ := n.(map[string]any)
		out = append(out, fmt.Sprintf("%v:%v", m["node"], m["state"]))
	}
	return out
}

// TestDataNodeKilledDuringDeploymentIsHonestAndCatchesUp kills a data node
// with SIGKILL, so that its record says it is live until three heartbeats
// pass, and deploys: the deployment either succeeds without it (it was
// found down) or fails naming it, and its nodes agree with what the
// surviving node serves. Restarted on the same name, the killed node
// catches up on the newest revision.
func TestDataNodeKilledDuringDeploymentIsHonestAndCatchesUp(t *testing.T) {
	c := newPGCluster(t)
	ups := map[string]*testupstream.Upstream{}
	for _, name := range []string{"a", "b", "c"} {
		ups[name] = testupstream.Start(t, testupstream.WithName(name))
	}
	ctl := c.node("control", "ctl", "--heartbeat", "500ms", "--deploy-timeout", "3s")
	edges := []*proc{c.node("data", "edge-1", "--heartbeat", "500ms"), c.node("data", "edge-2", "--heartbeat", "500ms")}
	createEcho(t, ctl, ups["a"].URL)
	dep := ctl.deployAndWait(pgToken, `{}`)
	if dep["state"] != "succeeded" || !slices.Equal(nodeProgress(dep), []string{"edge-1:applied", "edge-2:applied"}) {
		t.Fatalf("first deployment: %v; want succeeded, applied by edge-1 and edge-2", dep)
	}
	survivor := "http://" + edges[0].proxyAddr + "/echo/x"
	waitServes(t, edges[0].client, survivor, "a", 5*time.Second)

	edges[1].signal(syscall.SIGKILL)
	if code := edges[1].exitCode(exitTimeout); code != -1 {
		t.Fatalf("exit code after SIGKILL: %d; want -1", code)
	}
	pointService(t, ctl, ups["b"].URL)
	dep = ctl.deployAndWait(pgToken, `{}`)
	progress := nodeProgress(dep)
	reason, _ := dep["reason"].(string)
	t.Logf("deployment with edge-2 killed: state %v, nodes %v, reason %q", dep["state"], progress, reason)
	switch dep["state"] {
	case "succeeded":
		// edge-2 was found down (3 heartbeats passed) before the
		// deployment timed out: it is not among the nodes waited for.
		if !slices.Equal(progress, []string{"edge-1:applied"}) {
			t.Fatalf("succeeded deployment's nodes: %v; want only edge-1, applied", progress)
		}
		waitServes(t, edges[0].client, survivor, "b", 5*time.Second)
	case "failed":
		if !strings.Contains(reason, "node edge-2 ") || strings.Contains(reason, "edge-1") {
			t.Fatalf("failed deployment's reason: %q; want it to name edge-2, and only edge-2", reason)
		}
		if !slices.Equal(progress, []string{"edge-1:applied", "edge-2:pending"}) {
			t.Fatalf("failed deployment's nodes: %v; want edge-1 applied, edge-2 pending", progress)
		}
		// edge-1 applied it, and returns to the previous revision.
		waitServes(t, edges[0].client, survivor, "a", 5*time.Second)
	default:
		t.Fatalf("deployment with edge-2 killed: %v; want succeeded or failed", dep)
	}

	// Once edge-2 is down, a deployment does not wait for it at all.
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := ctl.do("GET", "/admin/v1/nodes/edge-2", pgToken, "")
		var n struct{ State string }
		json.Unmarshal(r.body, &n)
		if n.State == "down" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("edge-2 still not down %v after SIGKILL: %s", 10*time.Second, r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	pointService(t, ctl, ups["c"].URL)
	dep = ctl.deployAndWait(pgToken, `{}`)
	if dep["state"] != "succeeded" || !slices.Equal(nodeProgress(dep), []string{"edge-1:applied"}) {
		t.Fatalf("deployment with edge-2 down: %v; want succeeded, applied by edge-1 only", dep)
	}
	newest := dep["revision"]
	waitServes(t, edges[0].client, survivor, "c", 5*time.Second)

	// Restarted, edge-2 serves the newest revision before it listens.
	again := c.node("data", "edge-2", "--heartbeat", "500ms")
	if status, name, err := get(again.client, "http://"+again.proxyAddr+"/echo/x"); err != nil || status != http.StatusOK || name != "c" {
		t.Fatalf("first request through the restarted edge-2: status %d from %q, error %v; want 200 from c", status, name, err)
	}
	r := ctl.do("GET", "/admin/v1/nodes/edge-2", pgToken, "")
	var n struct {
		State    string
		Revision any
	}
	json.Unmarshal(r.body, &n)
	if n.State != "live" || fmt.Sprint(n.Revision) != fmt.Sprint(newest) {
		t.Fatalf("restarted edge-2: %s; want live at revision %v", r.body, newest)
	}
}

// BenchmarkClusterPropagation measures how long a deployment takes to
// reach traffic on a cluster of one control node and three data nodes on
// PostgreSQL: from the POST /admin/v1/deployments to the moment requests
// through every data node reach the upstream the new revision names (each
// deployment switches the service between upstreams "a" and "b", and each
// data node's proxy is polled every millisecond until it answers from the
// new one). It reports the median, the 99th percentile and the maximum of
// 50 deployments per b.N, and the mean time to the deployment's recorded
// success.
func BenchmarkClusterPropagation(b *testing.B) {
	const perRound = 50
	c := newPGCluster(b)
	ups := []*testupstream.Upstream{
		testupstream.Start(b, testupstream.WithName("a"), testupstream.WithNoRecord()),
		testupstream.Start(b, testupstream.WithName("b"), testupstream.WithNoRecord()),
	}
	ctl := c.node("control", "ctl")
	var edges []*proc
	for i := range 3 {
		edges = append(edges, c.node("data", fmt.Sprintf("edge-%d", i+1)))
	}
	createEcho(b, ctl, ups[0].URL)
	wantSucceeded(b, "first deployment", ctl.deployAndWait(pgToken, `{}`))
	for _, e := range edges {
		waitServes(b, e.client, "http://"+e.proxyAddr+"/echo/x", "a", 5*time.Second)
	}

	var propagation, success []time.Duration
	current := 0
	b.ResetTimer()
	for range b.N {
		for range perRound {
			current = 1 - current
			want := []string{"a", "b"}[current]
			b.StopTimer()
			pointService(b, ctl, ups[current].URL)
			b.StartTimer()
			start := time.Now()
			dep := ctl.do("POST", "/admin/v1/deployments", pgToken, `{}`)
			wantStatus(b, "deploy", dep, http.StatusAccepted)
			var wg sync.WaitGroup
			errs := make([]error, len(edges))
			for i, e := range edges {
				wg.Go(func() {
					url := "http://" + e.proxyAddr + "/echo/x"
					for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Millisecond) {
						status, name, err := get(e.client, url)
						if err == nil && status == http.StatusOK && name == want {
							return
						}
						if time.Now().After(deadline) {
							errs[i] = fmt.Errorf("edge-%d: status %d from %q (error %v) 20s after the deployment; want 200 from %s", i+1, status, name, err, want)
							return
						}
					}
				})
			}
			wg.Wait()
			propagation = append(propagation, time.Since(start))
			for _, err := range errs {
				if err != nil {
					b.Fatal(err)
				}
			}
			for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(2 * time.Millisecond) {
				r := ctl.do("GET", dep.header.Get("Location"), pgToken, "")
				var d struct{ State string }
				json.Unmarshal(r.body, &d)
				if d.State == "succeeded" {
					success = append(success, time.Since(start))
					break
				}
				if d.State == "failed" || time.Now().After(deadline) {
					b.Fatalf("deployment: %s", r.body)
				}
			}
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	sort.Slice(propagation, func(i, j int) bool { return propagation[i] < propagation[j] })
	pct := func(p float64) time.Duration { return propagation[int(p*float64(len(propagation)-1)+0.5)] }
	var sum time.Duration
	for _, d := range success {
		sum += d
	}
	b.ReportMetric(ms(pct(0.50)), "p50-ms")
	b.ReportMetric(ms(pct(0.99)), "p99-ms")
	b.ReportMetric(ms(propagation[len(propagation)-1]), "max-ms")
	b.ReportMetric(ms(sum/time.Duration(len(success))), "succeeded-mean-ms")
	b.Logf("%d deployments: all 3 data nodes serving after p50 %v, p99 %v, max %v", len(propagation), pct(0.50), pct(0.99), propagation[len(propagation)-1])
}

// TestDataNodeThatCannotApplyFailsTheDeploymentNamingIt deploys, to two data
// nodes of which only one has Redis (--redis-url), a route whose rate limit
// counts in Redis: the other node refuses the revision rather than serve
// the route unlimited, the deployment fails naming that node and why, and
// the node that applied it returns to the last good revision.
func TestDataNodeThatCannotApplyFailsTheDeploymentNamingIt(t *testing.T) {
	c := newPGCluster(t)
	rdb := redistest.Start(t)
	up := testupstream.Start(t, testupstream.WithName("a"))
	ctl := c.node("control", "ctl")
	withRedis := c.node("data", "edge-1", "--redis-url", rdb.URL())
	c.node("data", "edge-2")
	createEcho(t, ctl, up.URL)
	first := ctl.deployAndWait(pgToken, `{}`)
	wantSucceeded(t, "deployment without policies", first)

	wantStatus(t, "create policy", ctl.do("POST", "/admin/v1/policies", pgToken,
		`{"id":"shared","name":"shared","type":"rate-limit","config":{"requests":1,"per":"hour","by":"ip","store":"redis"}}`), http.StatusCreated)
	wantStatus(t, "attach policy", ctl.do("PATCH", "/admin/v1/routes/echo", pgToken, `{"policies":["shared"]}`,
		"Content-Type", mergePatch), http.StatusOK)
	dep := ctl.deployAndWait(pgToken, `{}`)
	reason, _ := dep["reason"].(string)
	// The deployment fails as soon as edge-2 reports, whether or not edge-1
	// has reported applying it yet.
	progress := nodeProgress(dep)
	if dep["state"] != "failed" || len(progress) != 2 || progress[1] != "edge-2:failed" ||
		(progress[0] != "edge-1:applied" && progress[0] != "edge-1:pending") ||
		!strings.Contains(reason, "node edge-2 failed to apply") || !strings.Contains(reason, "--redis-url") ||
		strings.Contains(reason, "node edge-1") {
		t.Fatalf("deployment needing Redis: %v; want failed by edge-2 for want of --redis-url, and edge-1 not blamed", dep)
	}
	// edge-1 serves the first revision again: no rate limit.
	proxy := "http://" + withRedis.proxyAddr + "/echo/x"
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := ctl.do("GET", "/admin/v1/nodes/edge-1", pgToken, "")
		var n struct{ Revision float64 }
		json.Unmarshal(r.body, &n)
		if n.Revision == first["revision"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("edge-1 after the failed deployment: %s; want it back on revision %v", r.body, first["revision"])
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := range 3 {
		if status, _, err := get(withRedis.client, proxy); err != nil || status != http.StatusOK {
			t.Fatalf("request %d through edge-1 back on the first revision: %d, %v; want 200 (no limit)", i+1, status, err)
		}
	}
}
