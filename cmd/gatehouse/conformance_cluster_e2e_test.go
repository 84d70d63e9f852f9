//go:build unix

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// clusterReport is the body of GET /admin/v1/conformance, as far as these
// tests read it.
type clusterReport struct {
	Data []struct {
		Rule    string `json:"rule"`
		RouteID string `json:"route_id"`
		Status  int    `json:"status"`
		Count   int64  `json:"count"`
		Sample  struct {
			Path string `json:"path"`
		} `json:"sample"`
	} `json:"data"`
	Dropped    int64  `json:"dropped"`
	NextCursor string `json:"next_cursor"`
}

// waitReport polls the control node's report (query q) until done
// accepts it, failing the test after 20s.
func waitReport(t *testing.T, ctl *proc, q string, done func(clusterReport) bool) clusterReport {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := ctl.do("GET", "/admin/v1/conformance"+q, pgToken, "")
		var rep clusterReport
		if r.status != http.StatusOK || json.Unmarshal(r.body, &rep) != nil {
			t.Fatalf("report: %d %s", r.status, r.body)
		}
		if done(rep) {
			return rep
		}
		if time.Now().After(deadline) {
			t.Fatalf("the control node's report is still %.2000s", r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// auditedCluster starts a control node and a data node publishing its
// findings every 50ms on one PostgreSQL, with an http-audit policy on
// the routes of paths (each /x/* stripped before the upstream).
func auditedCluster(t *testing.T, paths ...string) (ctl, edge *proc) {
	t.Helper()
	c := newPGCluster(t)
	up := testupstream.Start(t)
	ctl = c.node("control", "ctl")
	edge = c.node("data", "edge-1", "--findings-interval", "50ms")
	wantStatus(t, "create service", ctl.do("POST", "/admin/v1/services", pgToken, `{"id":"up","name":"up","url":"`+up.URL+`"}`), http.StatusCreated)
	wantStatus(t, "create policy", ctl.do("POST", "/admin/v1/policies", pgToken, `{"id":"audit","name":"audit","type":"http-audit","config":{"responses":"report"}}`), http.StatusCreated)
	for _, p := range paths {
		route := fmt.Sprintf(`{"id":%q,"name":%[1]q,"paths":["/%[1]s/*"],"strip_path":true,"service_id":"up","policies":["audit"]}`, p)
		wantStatus(t, "create route "+p, ctl.do("POST", "/admin/v1/routes", pgToken, route), http.StatusCreated)
	}
	wantSucceeded(t, "deployment", ctl.deployAndWait(pgToken, `{}`))
	return ctl, edge
}

// TestFindingsOfADataNodeReachTheControlNodesReport: a response that
// breaks a rule on a data node shows in the report of the control node,
// which has no data plane of its own, through the store.
func TestFindingsOfADataNodeReachTheControlNodesReport(t *testing.T) {
	ctl, edge := auditedCluster(t, "api")
	r := edge.do("GET", "http://"+edge.proxyAddr+"/api/status/405", "", "")
	if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "" {
		t.Fatalf("proxy: got %d, Allow %q; want the upstream's 405 without Allow", r.status, r.header.Get("Allow"))
	}
	rep := waitReport(t, ctl, "?rule=allow-missing", func(rep clusterReport) bool { return len(rep.Data) > 0 })
	if f := rep.Data[0]; len(rep.Data) != 1 || f.RouteID != "api" || f.Status != 405 || f.Count != 1 || f.Sample.Path != "/api/status/405" {
		t.Fatalf("control node's report: %+v; want one allow-missing finding of /api/status/405 on route api", rep.Data)
	}
}

// TestADataNodeWithMoreDistinctFindingsThanASnapshotHoldsPublishesTheBound:
// 600 distinct findings (three routes, each 4xx and 5xx status answered
// as plain text) reach the control node as audit.SnapshotMaxEntries
// entries, the findings of the others counted as dropped: the entries'
// counts and the dropped count add up to every finding the data node
// recorded (its /metrics).
func TestADataNodeWithMoreDistinctFindingsThanASnapshotHoldsPublishesTheBound(t *testing.T) {
	routes := []string{"a", "b", "c"}
	ctl, edge := auditedCluster(t, routes...)
	for _, route := range routes {
		for status := 400; status <= 599; status++ {
			if _, _, err := get(edge.client, fmt.Sprintf("http://%s/%s/status/%d", edge.proxyAddr, route, status)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if total := findingsTotal(t, edge); total <= audit.SnapshotMaxEntries {
		t.Fatalf("the data node recorded %d findings; the test needs more than %d", total, audit.SnapshotMaxEntries)
	}
	rep := waitReport(t, ctl, "?limit=500", func(rep clusterReport) bool {
		var sum int64
		for _, f := range rep.Data {
			sum += f.Count
		}
		// Read again each time: a response's findings may be recorded
		// just after its client read the last byte.
		return sum+rep.Dropped == findingsTotal(t, edge)
	})
	if len(rep.Data) != audit.SnapshotMaxEntries || rep.NextCursor != "" || rep.Dropped == 0 {
		t.Fatalf("the control node lists %d entries (next cursor %q), %d dropped; want %d and the rest counted as dropped",
			len(rep.Data), rep.NextCursor, rep.Dropped, audit.SnapshotMaxEntries)
	}
}

// findingsTotal sums a node's gatehouse_conformance_findings_total.
func findingsTotal(t *testing.T, p *proc) int64 {
	t.Helper()
	m := p.do("GET", "/metrics", "", "")
	var total int64
	sc := bufio.NewScanner(bytes.NewReader(m.body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "gatehouse_conformance_findings_total{") {
			continue
		}
		n, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		total += int64(n)
	}
	return total
}
