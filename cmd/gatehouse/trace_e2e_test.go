package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/otlptest"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

const e2eTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"

func TestTracesAreOffByDefault(t *testing.T) {
	p := launch(t, t.TempDir(), nil)
	r := p.do("GET", "http://"+p.proxyAddr+"/x", "", "", "Traceparent", "00-"+e2eTraceID+"-00f067aa0ba902b7-01")
	var doc map[string]any
	json.Unmarshal(r.body, &doc)
	if r.status != http.StatusNotFound || doc["trace_id"] != nil {
		t.Errorf("got %d with trace_id %v; want 404 without one", r.status, doc["trace_id"])
	}
	if strings.Contains(p.stderr.String(), "tracing on") {
		t.Errorf("tracing on without any OTEL_ variable:\n%s", p.stderr.String())
	}
}

func TestTracesGoToTheOTLPEndpointAndAreFlushedOnShutdown(t *testing.T) {
	rcv := otlptest.New(t)
	// A batch delay far past the test: only the shutdown's flush exports.
	p := launch(t, t.TempDir(), nil, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.URL, "OTEL_BSP_SCHEDULE_DELAY=600000",
		"OTEL_SERVICE_NAME=edge-e2e")
	r := p.do("GET", "http://"+p.proxyAddr+"/x", "", "", "Traceparent", "00-"+e2eTraceID+"-00f067aa0ba902b7-01")
	var doc map[string]any
	json.Unmarshal(r.body, &doc)
	if r.status != http.StatusNotFound || doc["trace_id"] != e2eTraceID {
		t.Errorf("got %d with trace_id %v; want 404 naming trace %s", r.status, doc["trace_id"], e2eTraceID)
	}
	// The admin listener traces its API, not what probes, scrapers
	// and the console's files ask for (admin.Traced).
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/console/", "/admin/v1/routes"} {
		p.do("GET", path, "", "")
	}
	if n := len(rcv.Spans()); n != 0 {
		t.Fatalf("%d spans exported before the shutdown; want them batched", n)
	}
	p.stop()
	spans := rcv.Spans()
	var proxied, admin bool
	for _, s := range spans {
		if s.Kind != tracepb.Span_SPAN_KIND_SERVER || s.Resource["service.name"] != "edge-e2e" {
			continue
		}
		proxied = proxied || s.TraceID == e2eTraceID && s.Attrs["http.response.status_code"] == int64(404)
		switch path := s.Attrs["url.path"]; path {
		case "/admin/v1/routes":
			admin = true
		case "/healthz", "/readyz", "/metrics", "/console/":
			t.Errorf("span of %s; want none for probes, scrapes and console files", path)
		}
	}
	if !proxied || !admin {
		t.Errorf("spans after shutdown %+v; want the proxied request's and the admin API call's, of service edge-e2e", spans)
	}
}
