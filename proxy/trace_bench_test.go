package proxy

import (
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse/internal/serve"
	"github.com/gatehouse/gatehouse/internal/testupstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// BenchmarkProxyTraced is BenchmarkProxy with tracing on, sampling 100%
// and 1% of requests (parent-based, as OTEL_TRACES_SAMPLER=
// parentbased_traceidratio does), spans batched to an in-memory exporter:
// the cost of tracing in the whole stack, server and upstream spans and
// traceparent injection included, without a network exporter's. Compare
// with BenchmarkProxy (tracing off).
//
//	go test -run '^$' -bench 'Proxy(Traced)?$' -benchmem ./proxy/
func BenchmarkProxyTraced(b *testing.B) {
	for _, ratio := range []float64{1, 0.01} {
		b.Run(fmt.Sprintf("sampled=%g%%", ratio*100), func(b *testing.B) {
			exp := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp),
				sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))))
			b.Cleanup(func() { tp.Shutdown(b.Context()) })
			up := testupstream.Start(b, testupstream.WithNoRecord())
			g := newGateway(b, func(o *serve.Options) { o.Tracer = tp.Tracer(serve.TracerName) })
			g.route(up.URL, "", "")
			req, _ := http.NewRequest("GET", g.base+"/bytes/1024", nil)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				resp, err := g.client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			b.StopTimer()
			exp.Reset()
		})
	}
}
