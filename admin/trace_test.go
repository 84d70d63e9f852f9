package admin

import (
	"testing"

	"github.com/gatehouse/gatehouse/console"
	"github.com/gatehouse/gatehouse/internal/otlptest"
	"github.com/gatehouse/gatehouse/internal/serve"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

func TestAdminRequestsAreTracedWithTheirRouteTemplate(t *testing.T) {
	rcv := otlptest.New(t)
	a := newTestAPI(t, withServeOptions(serve.Options{Tracer: rcv.Provider(t).Tracer(serve.TracerName)}))
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	r := a.must(404, "GET", "/admin/v1/routes/nope", "", h("Traceparent", "00-"+traceID+"-00f067aa0ba902b7-01"))
	if doc := r.json(); doc["trace_id"] != traceID {
		t.Errorf("problem trace_id %v; want %s", doc["trace_id"], traceID)
	}
	spans := rcv.Wait(t, func(s []otlptest.Span) bool { return len(s) == 1 })
	s := spans[0]
	if s.TraceID != traceID || s.Kind != tracepb.Span_SPAN_KIND_SERVER || s.ParentSpanID != "00f067aa0ba902b7" {
		t.Errorf("span %+v; want a server span, child of the client's", s)
	}
	if s.Name != "GET /admin/v1/routes/{id}" || s.Attrs["http.route"] != "/admin/v1/routes/{id}" ||
		s.Attrs["http.response.status_code"] != int64(404) || s.Status != tracepb.Status_STATUS_CODE_UNSET {
		t.Errorf("span %q %v status %v; want GET /admin/v1/routes/{id}, http.route, 404, unset", s.Name, s.Attrs, s.Status)
	}
}

// TestProbesScrapesAndConsoleFilesAreNotTraced: what load balancers,
// scrapers and the console's static files ask for every few seconds
// makes no span, even from a client that sampled its traceparent; an
// API call next to them makes one.
func TestProbesScrapesAndConsoleFilesAreNotTraced(t *testing.T) {
	rcv := otlptest.New(t)
	a := newTestAPI(t, withServeOptions(serve.Options{Tracer: rcv.Provider(t).Tracer(serve.TracerName), Traced: Traced}),
		withAdminOptions(func(o *Options) { o.Console = console.New() }))
	parent := h("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	for _, tc := range []struct {
		desc, path string
		status     int
	}{
		{"liveness probe", "/healthz", 200},
		{"readiness probe", "/readyz", 503},
		{"metrics scrape", "/metrics", 200},
		{"console index", "/console/", 200},
		{"console without its slash, redirected", "/console", 200},
		{"console file that is not there", "/console/nope.js", 404},
	} {
		a.must(tc.status, "GET", tc.path, "", parent)
	}
	a.must(200, "GET", "/admin/v1/routes", "", parent)
	// The receiver exports each span as it ends, before the response
	// goes: every span made so far has arrived.
	spans := rcv.Wait(t, func(s []otlptest.Span) bool { return len(s) >= 1 })
	if len(spans) != 1 || spans[0].Attrs["url.path"] != "/admin/v1/routes" {
		var paths []any
		for _, s := range spans {
			paths = append(paths, s.Attrs["url.path"])
		}
		t.Fatalf("spans of %v; want one, the API call's", paths)
	}
}
