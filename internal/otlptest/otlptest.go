// Package otlptest runs a real OTLP trace receiver for tests: over HTTP
// (protobuf, POST /v1/traces, gzip or not) and over gRPC, both decoding
// what an OpenTelemetry exporter sends and keeping the spans for the
// test to read.
package otlptest

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// Span is a received span, its ids in lower-case hex as traceparent
// writes them.
type Span struct {
	TraceID, SpanID, ParentSpanID string
	Name                          string
	Kind                          tracepb.Span_SpanKind
	// Attrs are the span's attributes: strings, int64s and bools.
	Attrs map[string]any
	// Status is the span's status code (unset, ok or error).
	Status tracepb.Status_StatusCode
	// Resource is the attributes of the span's resource.
	Resource map[string]any
}

// Receiver keeps the spans exported to it.
type Receiver struct {
	// URL is the HTTP endpoint's base (http://127.0.0.1:port): the
	// exporters add /v1/traces to OTEL_EXPORTER_OTLP_ENDPOINT.
	URL string
	// GRPCAddr is the gRPC endpoint's host:port.
	GRPCAddr string

	mu      sync.Mutex
	spans   []Span
	arrived chan struct{} // closed and replaced at each export
}

// New starts a receiver, stopped when the test ends.
func New(t testing.TB) *Receiver {
	t.Helper()
	r := &Receiver{arrived: make(chan struct{})}
	hs := httptest.NewServer(http.HandlerFunc(r.serveHTTP))
	t.Cleanup(hs.Close)
	r.URL = hs.URL
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	collectorpb.RegisterTraceServiceServer(gs, grpcService{r: r})
	go gs.Serve(l)
	t.Cleanup(gs.Stop)
	r.GRPCAddr = l.Addr().String()
	return r
}

// Provider returns a tracer provider that samples everything and exports
// each span to r over HTTP as it ends, shut down when the test ends.
func (r *Receiver) Provider(t testing.TB, opts ...sdktrace.TracerProviderOption) *sdktrace.TracerProvider {
	t.Helper()
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(r.URL+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(append([]sdktrace.TracerProviderOption{
		sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.AlwaysSample())}, opts...)...)
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return tp
}

func (r *Receiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
		http.NotFound(w, req)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = gz
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var export collectorpb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &export); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.keep(&export)
	out, _ := proto.Marshal(&collectorpb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

type grpcService struct {
	collectorpb.UnimplementedTraceServiceServer
	r *Receiver
}

func (s grpcService) Export(_ context.Context, req *collectorpb.ExportTraceServiceRequest) (*collectorpb.ExportTraceServiceResponse, error) {
	s.r.keep(req)
	return &collectorpb.ExportTraceServiceResponse{}, nil
}

func (r *Receiver) keep(export *collectorpb.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range export.ResourceSpans {
		res := attrs(rs.GetResource().GetAttributes())
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				r.spans = append(r.spans, Span{
					TraceID: hex.EncodeToString(s.TraceId), SpanID: hex.EncodeToString(s.SpanId),
					ParentSpanID: hex.EncodeToString(s.ParentSpanId), Name: s.Name, Kind: s.Kind,
					Attrs: attrs(s.Attributes), Status: s.GetStatus().GetCode(), Resource: res,
				})
			}
		}
	}
	close(r.arrived)
	r.arrived = make(chan struct{})
}

func attrs(kvs []*commonpb.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		switch v := kv.Value.Value.(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.Key] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.Key] = v.IntValue
		case *commonpb.AnyValue_BoolValue:
			m[kv.Key] = v.BoolValue
		default:
			m[kv.Key] = fmt.Sprint(kv.Value)
		}
	}
	return m
}

// Spans returns the spans received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Wait returns the spans received once done says they are complete,
// failing the test if they are not within 10 seconds.
func (r *Receiver) Wait(t testing.TB, done func([]Span) bool) []Span {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		spans, arrived := append([]Span(nil), r.spans...), r.arrived
		r.mu.Unlock()
		if done(spans) {
			return spans
		}
		select {
		case <-arrived:
		case <-deadline:
			t.Fatalf("spans received: %+v; still waiting for more", spans)
			return nil
		}
	}
}

// Count counts the spans of kind: the usual condition of Wait.
func Count(spans []Span, kind tracepb.Span_SpanKind) int {
	n := 0
	for _, s := range spans {
		if s.Kind == kind {
			n++
		}
	}
	return n
}
