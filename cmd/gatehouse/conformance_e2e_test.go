package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// TestConformanceFindingsOfTheDataPlaneReachTheAdminReportAndMetrics
// drives the binary: an http-audit policy deployed through the admin
// API, an upstream 405 without Allow and an HTML 404 on the proxy, then
// the findings in GET /admin/v1/conformance and on /metrics.
func TestConformanceFindingsOfTheDataPlaneReachTheAdminReportAndMetrics(t *testing.T) {
	up := testupstream.Start(t)
	const token = "conformance-token-0123456789abcdef"
	p := launch(t, t.TempDir(), nil, "GATEHOUSE_ADMIN_TOKEN="+token)
	for _, w := range [][2]string{
		{"/admin/v1/services", `{"id":"up","name":"up","url":"` + up.URL + `"}`},
		{"/admin/v1/policies", `{"id":"audit","name":"audit","type":"http-audit","config":{"responses":"report","normalize_errors":true}}`},
		{"/admin/v1/routes", `{"id":"api","name":"api","paths":["/*"],"service_id":"up","policies":["audit"]}`},
	} {
		wantStatus(t, "POST "+w[0], p.do("POST", w[0], token, w[1]), http.StatusCreated)
	}
	if dep := p.deployAndWait(token, `{}`); dep["state"] != "succeeded" {
		t.Fatalf("deployment: %v", dep)
	}
	r := p.do("GET", "http://"+p.proxyAddr+"/status/405", "", "")
	if r.status != 405 || !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") {
		t.Fatalf("proxy: got %d %s %s; want the upstream's 405 restated as a problem", r.status, r.header.Get("Content-Type"), r.body)
	}
	rep := p.do("GET", "/admin/v1/conformance?route=api&rule=allow-missing", token, "")
	var page struct {
		Data []struct {
			Rule   string `json:"rule"`
			Status int    `json:"status"`
			Count  int    `json:"count"`
			Sample struct {
				Path string `json:"path"`
			} `json:"sample"`
		} `json:"data"`
	}
	if err := json.Unmarshal(rep.body, &page); err != nil || rep.status != 200 {
		t.Fatalf("report: %d %s", rep.status, rep.body)
	}
	if len(page.Data) != 1 || page.Data[0].Status != 405 || page.Data[0].Count != 1 || page.Data[0].Sample.Path != "/status/405" {
		t.Fatalf("report: got %s; want one allow-missing finding of /status/405", rep.body)
	}
	metrics := p.do("GET", "/metrics", "", "")
	if want := `gatehouse_conformance_findings_total{operation="",route="api",rule="allow-missing",severity="error",status="405"} 1`; !strings.Contains(string(metrics.body), want) {
		t.Fatalf("/metrics lacks %s", want)
	}
}
