package admin

import (
	"testing"

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
