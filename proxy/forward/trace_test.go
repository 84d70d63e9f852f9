package forward

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestUpstreamSpansComeFromTheConfiguredTracer proves that an attempt's
// client span is started by Config.Tracer, got once when the pool was
// built, and by the provider of the request's span only without one: the
// span is exported by that tracer's provider, as the child of the
// request's span, and the upstream gets its traceparent.
func TestUpstreamSpansComeFromTheConfiguredTracer(t *testing.T) {
	newProvider := func() (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
		exp := tracetest.NewInMemoryExporter()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
		t.Cleanup(func() { tp.Shutdown(context.Background()) })
		return tp, exp
	}
	tests := []struct {
		desc       string
		configured bool // Config.Tracer set, from a provider other than the request span's
	}{
		{desc: "Config.Tracer starts the span", configured: true},
		{desc: "without one, the request span's provider does", configured: false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			serverTP, serverExp := newProvider()
			configuredTP, configuredExp := newProvider()
			traceparent := make(chan string, 1)
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				traceparent <- r.Header.Get("Traceparent")
			}))
			t.Cleanup(up.Close)
			cfg := Config{Targets: []Target{{URL: mustURL(t, up.URL), Weight: 1}}}
			want, other := serverExp, configuredExp
			if tt.configured {
				cfg.Tracer, want, other = configuredTP.Tracer(tracerName), configuredExp, serverExp
			}
			pool := NewPool(t.Context(), cfg, nil)
			t.Cleanup(pool.Close)

			ctx, server := serverTP.Tracer(tracerName).Start(t.Context(), "GET", trace.WithSpanKind(trace.SpanKindServer))
			out, _ := http.NewRequestWithContext(ctx, "GET", "http://gatehouse/x", nil)
			resp, _, err := pool.RoundTrip(out)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			server.End()

			clients := func(exp *tracetest.InMemoryExporter) (spans []tracetest.SpanStub) {
				for _, s := range exp.GetSpans() {
					if s.SpanKind == trace.SpanKindClient {
						spans = append(spans, s)
					}
				}
				return spans
			}
			got := clients(want)
			if len(got) != 1 || len(clients(other)) != 0 {
				t.Fatalf("got %d client spans from the tracer that should start them, %d from the other; want 1 and 0", len(got), len(clients(other)))
			}
			c := got[0]
			if c.Parent.SpanID() != server.SpanContext().SpanID() {
				t.Errorf("client span's parent is %v; want the request's span %v", c.Parent.SpanID(), server.SpanContext().SpanID())
			}
			if tp, want := <-traceparent, "00-"+c.SpanContext.TraceID().String()+"-"+c.SpanContext.SpanID().String()+"-01"; tp != want {
				t.Errorf("upstream got traceparent %q; want %q, the client span's", tp, want)
			}
		})
	}
}
