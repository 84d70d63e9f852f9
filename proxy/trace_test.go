package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/otlptest"
	"github.com/gatehouse/gatehouse/internal/serve"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// traceUpstream answers /status/NNN with NNN and anything else with 200,
// and keeps the traceparent of each request it got.
type traceUpstream struct {
	URL  string
	mu   sync.Mutex
	seen []string
}

func newTraceUpstream(t *testing.T) *traceUpstream {
	t.Helper()
	u := &traceUpstream{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, r.Header.Get("Traceparent"))
		u.mu.Unlock()
		status := 200
		if s, ok := strings.CutPrefix(r.URL.Path, "/status/"); ok {
			status, _ = strconv.Atoi(s)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	u.URL = srv.URL
	return u
}

func (u *traceUpstream) traceparents() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.seen...)
}

// tracedGateway is a gateway whose server stack traces every request to
// a receiver, and logs every request to log.
func tracedGateway(t *testing.T, rcv *otlptest.Receiver, log *bytes.Buffer) *gateway {
	t.Helper()
	tracer := rcv.Provider(t).Tracer(serve.TracerName)
	return newGateway(t, func(o *serve.Options) {
		o.Tracer = tracer
		if log != nil {
			o.Logger = slog.New(slog.NewJSONHandler(log, nil))
		}
	})
}

// clientTrace is the trace and parent span a client names in its traceparent.
const (
	clientTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpanID  = "00f067aa0ba902b7"
	clientParent  = "00-" + clientTraceID + "-" + clientSpanID + "-01"
)

// ofTrace are the spans of one trace, by kind.
func ofTrace(spans []otlptest.Span, traceID string, kind tracepb.Span_SpanKind) []otlptest.Span {
	var out []otlptest.Span
	for _, s := range spans {
		if s.TraceID == traceID && s.Kind == kind {
			out = append(out, s)
		}
	}
	return out
}

func TestTracedRequestIsChildOfClientAndParentOfUpstream(t *testing.T) {
	rcv := otlptest.New(t)
	up := newTraceUpstream(t)
	g := tracedGateway(t, rcv, nil)
	g.apply(revision(t, 1, []string{fmt.Sprintf(`{"id":"s","name":"s","url":%q}`, up.URL)},
		[]string{`{"id":"r","service_id":"s","paths":["/orders/{id}"]}`}))

	if r := g.get("/orders/7", "Traceparent", clientParent, "Tracestate", "vendor=x"); r.status != 200 {
		t.Fatalf("got %d; want 200", r.status)
	}
	spans := rcv.Wait(t, func(s []otlptest.Span) bool { return len(s) >= 2 })
	servers, clients := ofTrace(spans, clientTraceID, tracepb.Span_SPAN_KIND_SERVER), ofTrace(spans, clientTraceID, tracepb.Span_SPAN_KIND_CLIENT)
	if len(servers) != 1 || len(clients) != 1 {
		t.Fatalf("spans %+v; want one server and one client span in the client's trace", spans)
	}
	server, client := servers[0], clients[0]
	if server.ParentSpanID != clientSpanID {
		t.Errorf("server span's parent %q; want the client's span %q", server.ParentSpanID, clientSpanID)
	}
	if client.ParentSpanID != server.SpanID {
		t.Errorf("upstream span's parent %q; want the server span %q", client.ParentSpanID, server.SpanID)
	}
	want := "00-" + clientTraceID + "-" + client.SpanID + "-01"
	if seen := up.traceparents(); len(seen) != 1 || seen[0] != want {
		t.Errorf("upstream got traceparent %q; want %q (its parent the upstream span)", seen, want)
	}
	for k, v := range map[string]any{
		"http.request.method": "GET", "url.path": "/orders/7", "http.route": "/orders/{id}",
		"http.response.status_code": int64(200), "server.address": "127.0.0.1", "network.protocol.version": "1.1",
		"client.address": "127.0.0.1", "gatehouse.route.id": "r", "gatehouse.service.id": "s",
	} {
		if server.Attrs[k] != v {
			t.Errorf("server span %s = %#v; want %#v", k, server.Attrs[k], v)
		}
	}
	if server.Name != "GET /orders/{id}" || server.Status != tracepb.Status_STATUS_CODE_UNSET {
		t.Errorf("server span %q status %v; want GET /orders/{id}, unset", server.Name, server.Status)
	}
	for k, v := range map[string]any{"http.request.method": "GET", "http.response.status_code": int64(200),
		"server.address": "127.0.0.1", "url.full": up.URL + "/orders/7"} {
		if client.Attrs[k] != v {
			t.Errorf("upstream span %s = %#v; want %#v", k, client.Attrs[k], v)
		}
	}
}

func TestTracedServerSpanIsAnErrorFor5xxOnly(t *testing.T) {
	rcv := otlptest.New(t)
	up := newTraceUpstream(t)
	g := tracedGateway(t, rcv, nil)
	g.route(up.URL, "", "")
	for _, tc := range []struct {
		status int
		want   tracepb.Status_StatusCode
	}{
		{200, tracepb.Status_STATUS_CODE_UNSET},
		{404, tracepb.Status_STATUS_CODE_UNSET},
		{429, tracepb.Status_STATUS_CODE_UNSET},
		{500, tracepb.Status_STATUS_CODE_ERROR},
		{503, tracepb.Status_STATUS_CODE_ERROR},
	} {
		traceID := fmt.Sprintf("%032x", tc.status)
		g.get(fmt.Sprintf("/status/%d", tc.status), "Traceparent", "00-"+traceID+"-"+clientSpanID+"-01")
		spans := rcv.Wait(t, func(s []otlptest.Span) bool { return len(ofTrace(s, traceID, tracepb.Span_SPAN_KIND_SERVER)) == 1 })
		server := ofTrace(spans, traceID, tracepb.Span_SPAN_KIND_SERVER)[0]
		if server.Attrs["http.response.status_code"] != int64(tc.status) || server.Status != tc.want {
			t.Errorf("upstream %d: server span status_code %v, status %v; want %d, %v",
				tc.status, server.Attrs["http.response.status_code"], server.Status, tc.status, tc.want)
		}
	}
}

func TestTracedRetriesAreSeparateUpstreamSpans(t *testing.T) {
	rcv := otlptest.New(t)
	up := newTraceUpstream(t)
	g := tracedGateway(t, rcv, nil)
	dead := "http://" + closedPort(t)
	g.apply(revision(t, 1, []string{`{"id":"s","name":"s","retries":1,"targets":[{"url":"` + dead + `","weight":1},{"url":"` + up.URL + `","weight":1}]}`},
		[]string{`{"id":"r","service_id":"s","paths":["/*"]}`}))
	// Targets take turns: of two requests, one tries the dead one first.
	for i := range 2 {
		if r := g.get("/x", "Traceparent", fmt.Sprintf("00-%032x-%s-01", i+1, clientSpanID)); r.status != 200 {
			t.Fatalf("GET %d: got %d; want 200 via the live target", i, r.status)
		}
	}
	spans := rcv.Wait(t, func(s []otlptest.Span) bool { return otlptest.Count(s, tracepb.Span_SPAN_KIND_SERVER) == 2 })
	var retried []otlptest.Span
	for i := range 2 {
		if c := ofTrace(spans, fmt.Sprintf("%032x", i+1), tracepb.Span_SPAN_KIND_CLIENT); len(c) == 2 {
			retried = c
		}
	}
	if len(retried) != 2 {
		t.Fatalf("spans %+v; want a trace with two upstream spans, the failed attempt and its retry", spans)
	}
	failed, retry := retried[0], retried[1]
	if failed.Attrs["http.request.resend_count"] != nil {
		failed, retry = retry, failed
	}
	if failed.Status != tracepb.Status_STATUS_CODE_ERROR || failed.Attrs["error.type"] != "connection_refused" {
		t.Errorf("failed attempt: status %v, error.type %v; want error, connection_refused", failed.Status, failed.Attrs["error.type"])
	}
	if retry.Attrs["http.request.resend_count"] != int64(1) || retry.Attrs["http.response.status_code"] != int64(200) {
		t.Errorf("retry: %v; want resend_count 1 and status 200", retry.Attrs)
	}
	if failed.ParentSpanID != retry.ParentSpanID {
		t.Errorf("attempts' parents %s and %s; want the one server span", failed.ParentSpanID, retry.ParentSpanID)
	}
	found := false
	for _, tp := range up.traceparents() {
		found = found || strings.Contains(tp, "-"+retry.SpanID+"-")
	}
	if !found {
		t.Errorf("upstream saw %v; want the retry's span %s as parent", up.traceparents(), retry.SpanID)
	}
}

func TestTracedRefusalNamesThePolicyAndConsumer(t *testing.T) {
	rcv := otlptest.New(t)
	up := newTraceUpstream(t)
	g := tracedGateway(t, rcv, nil)
	f := newPolicyFixture(t, up.URL).consumer("c-alice", "alice").key("c-alice", aliceAPIKey).
		policy(`{"name":"auth","type":"auth","config":{"key_auth":{"header":"X-API-Key"}}}`)
	g.apply(f.rev)
	for _, tc := range []struct {
		desc, key string
		status    int
		policy    any
		consumer  any
	}{
		{"no key", "", 401, "auth", nil},
		{"alice's key", aliceAPIKey, 200, nil, "c-alice"},
	} {
		traceID := fmt.Sprintf("%032x", tc.status)
		h := []string{"Traceparent", "00-" + traceID + "-" + clientSpanID + "-01"}
		if tc.key != "" {
			h = append(h, "X-API-Key", tc.key)
		}
		if r := g.get("/x", h...); r.status != tc.status {
			t.Fatalf("%s: got %d; want %d", tc.desc, r.status, tc.status)
		}
		spans := rcv.Wait(t, func(s []otlptest.Span) bool { return len(ofTrace(s, traceID, tracepb.Span_SPAN_KIND_SERVER)) == 1 })
		server := ofTrace(spans, traceID, tracepb.Span_SPAN_KIND_SERVER)[0]
		if server.Attrs["gatehouse.policy"] != tc.policy || server.Attrs["gatehouse.consumer.id"] != tc.consumer {
			t.Errorf("%s: gatehouse.policy %v, gatehouse.consumer.id %v; want %v, %v", tc.desc,
				server.Attrs["gatehouse.policy"], server.Attrs["gatehouse.consumer.id"], tc.policy, tc.consumer)
		}
		if server.Attrs["gatehouse.route.id"] != "r" {
			t.Errorf("%s: gatehouse.route.id %v; want r", tc.desc, server.Attrs["gatehouse.route.id"])
		}
	}
}

func TestTracedProblemAndAccessLogNameTheTrace(t *testing.T) {
	rcv := otlptest.New(t)
	var log bytes.Buffer
	g := tracedGateway(t, rcv, &log)
	r := g.get("/nowhere", "Traceparent", clientParent) // no route: 404
	doc := assertProblem(t, r, http.StatusNotFound)
	if doc["trace_id"] != clientTraceID {
		t.Errorf("problem trace_id %v; want %s", doc["trace_id"], clientTraceID)
	}
	rcv.Wait(t, func(s []otlptest.Span) bool { return len(s) == 1 }) // the log line is written before the span ends
	var line map[string]any
	if err := json.Unmarshal(log.Bytes(), &line); err != nil {
		t.Fatalf("access log %q: %v", log.String(), err)
	}
	if line["trace_id"] != clientTraceID {
		t.Errorf("access log trace_id %v; want %s", line["trace_id"], clientTraceID)
	}
	// Not sampled (the client's flags 00, parent-based sampling): no id
	// that leads nowhere.
	tp := rcv.Provider(t, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample()))).Tracer(serve.TracerName)
	var log2 bytes.Buffer
	g2 := newGateway(t, func(o *serve.Options) { o.Tracer, o.Logger = tp, slog.New(slog.NewJSONHandler(&log2, nil)) })
	doc = assertProblem(t, g2.get("/nowhere", "Traceparent", "00-"+clientTraceID+"-"+clientSpanID+"-00"), http.StatusNotFound)
	if _, ok := doc["trace_id"]; ok {
		t.Errorf("problem of an unsampled trace has trace_id %v; want none", doc["trace_id"])
	}
	if !strings.Contains(log2.String(), `"status":404`) || strings.Contains(log2.String(), "trace_id") {
		t.Errorf("access log of an unsampled trace: %s; want its line without trace_id", log2.String())
	}
}

func TestUntracedGatewayForwardsTheClientsTraceparentUntouched(t *testing.T) {
	up := newTraceUpstream(t)
	var log bytes.Buffer
	g := newGateway(t, func(o *serve.Options) { o.Logger = slog.New(slog.NewJSONHandler(&log, nil)) })
	g.apply(revision(t, 1, []string{fmt.Sprintf(`{"id":"s","name":"s","url":%q}`, up.URL)},
		[]string{`{"id":"r","service_id":"s","paths":["/x","/y"]}`}))
	g.get("/x", "Traceparent", clientParent, "Tracestate", "vendor=x")
	g.get("/y")
	if seen := up.traceparents(); len(seen) != 2 || seen[0] != clientParent || seen[1] != "" {
		t.Errorf("upstream got traceparents %q; want the client's as sent, and none when it sent none", seen)
	}
	doc := assertProblem(t, g.get("/nowhere", "Traceparent", clientParent), http.StatusNotFound)
	if _, ok := doc["trace_id"]; ok {
		t.Errorf("problem has trace_id %v with tracing off; want none", doc["trace_id"])
	}
	if strings.Contains(log.String(), "trace_id") {
		t.Errorf("access log names a trace with tracing off: %s", log.String())
	}
}

func TestUnsampledRequestGivesTheUpstreamItsOwnUnsampledTraceparent(t *testing.T) {
	rcv := otlptest.New(t)
	up := newTraceUpstream(t)
	tp := rcv.Provider(t, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))
	g := newGateway(t, func(o *serve.Options) { o.Tracer = tp.Tracer(serve.TracerName) })
	g.route(up.URL, "", "")
	if r := g.get("/x", "Traceparent", "00-"+clientTraceID+"-"+clientSpanID+"-00"); r.status != 200 {
		t.Fatalf("got %d; want 200", r.status)
	}
	seen := up.traceparents()
	if len(seen) != 1 || !strings.HasPrefix(seen[0], "00-"+clientTraceID+"-") || !strings.HasSuffix(seen[0], "-00") ||
		strings.Contains(seen[0], clientSpanID) {
		t.Errorf("upstream got %q; want the client's trace, unsampled, with gatehouse's own span as parent", seen)
	}
	tp.ForceFlush(t.Context())
	if spans := rcv.Spans(); len(spans) != 0 {
		t.Errorf("receiver got %d spans of an unsampled request; want none", len(spans))
	}
}

func TestTracedClientAddressIsTheOneTrustedProxiesName(t *testing.T) {
	rcv := otlptest.New(t)
	up := newTraceUpstream(t)
	tracer := rcv.Provider(t).Tracer(serve.TracerName)
	g := newGatewayWithOptions(t, Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		func(o *serve.Options) { o.Tracer = tracer })
	g.route(up.URL, "", "")
	g.get("/x", "Traceparent", clientParent, "X-Forwarded-For", "203.0.113.9")
	spans := rcv.Wait(t, func(s []otlptest.Span) bool { return otlptest.Count(s, tracepb.Span_SPAN_KIND_SERVER) == 1 })
	server := ofTrace(spans, clientTraceID, tracepb.Span_SPAN_KIND_SERVER)[0]
	if server.Attrs["client.address"] != "203.0.113.9" {
		t.Errorf("client.address %v; want 203.0.113.9, as the trusted proxy named it", server.Attrs["client.address"])
	}
}

// A mirror's copy of a traced request is an upstream exchange of its
// own: a client span, child of the server span, marked
// gatehouse.mirror=true and with the shadow's status (an error here,
// where the primary's is not), whose traceparent the shadow gets, for a
// copy sent at once (no body) and one sent once the body was read.
func TestTracedMirrorCopyIsAClientSpanOfTheServerSpan(t *testing.T) {
	for _, tc := range []struct {
		desc, method string
		body         string
	}{
		{"without a body", "GET", ""},
		{"with a body", "POST", `{"n":1}`},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			rcv := otlptest.New(t)
			shadow := startShadow(t, false, func(w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) })
			f := splitFixture(t).withService("shadow", shadow.url, `,"retries":0`).
				policy(`{"name":"mirror","type":"mirror","config":{"service_id":"shadow"}}`)
			tracer := rcv.Provider(t).Tracer(serve.TracerName)
			g := newGateway(t, func(o *serve.Options) { o.Tracer = tracer })
			g.apply(f.rev)
			if r := g.do(tc.method, "/items", strings.NewReader(tc.body), "Traceparent", clientParent); r.status != http.StatusOK {
				t.Fatalf("client got %d; want the primary's 200", r.status)
			}
			got := shadow.next(t)
			spans := rcv.Wait(t, func(s []otlptest.Span) bool {
				return len(ofTrace(s, clientTraceID, tracepb.Span_SPAN_KIND_CLIENT)) >= 2
			})
			servers := ofTrace(spans, clientTraceID, tracepb.Span_SPAN_KIND_SERVER)
			if len(servers) != 1 {
				t.Fatalf("server spans %+v; want one", servers)
			}
			var mirror, primary []otlptest.Span
			for _, s := range ofTrace(spans, clientTraceID, tracepb.Span_SPAN_KIND_CLIENT) {
				if s.Attrs["gatehouse.mirror"] == true {
					mirror = append(mirror, s)
				} else {
					primary = append(primary, s)
				}
			}
			if len(mirror) != 1 || len(primary) != 1 {
				t.Fatalf("client spans: %d of the mirror, %d of the primary; want 1 and 1: %+v", len(mirror), len(primary), spans)
			}
			m := mirror[0]
			if m.ParentSpanID != servers[0].SpanID {
				t.Errorf("mirror span's parent %q; want the server span %q", m.ParentSpanID, servers[0].SpanID)
			}
			if m.Attrs["http.response.status_code"] != int64(503) || m.Status != tracepb.Status_STATUS_CODE_ERROR ||
				primary[0].Status != tracepb.Status_STATUS_CODE_UNSET || servers[0].Status != tracepb.Status_STATUS_CODE_UNSET {
				t.Errorf("mirror span %v status %v, primary %v, server %v; want the mirror's 503 an error and only there",
					m.Attrs, m.Status, primary[0].Status, servers[0].Status)
			}
			if want := "00-" + clientTraceID + "-" + m.SpanID + "-01"; got.header.Get("Traceparent") != want {
				t.Errorf("shadow got traceparent %q; want %q (its parent the mirror span)", got.header.Get("Traceparent"), want)
			}
		})
	}
}

// A gRPC client refused by the gateway reads the trace of its call in
// the trace-id metadata of the answer, as it reads x-request-id: the
// gRPC form of a problem document's trace_id.
func TestTracedGRPCRefusalNamesTheTraceInItsMetadata(t *testing.T) {
	rcv := otlptest.New(t)
	tracer := rcv.Provider(t).Tracer(serve.TracerName)
	g := newGateway(t, func(o *serve.Options) { o.H2C, o.Tracer = true, tracer })
	f := newPolicyFixture(t, grpcUpstream(t, nil))
	f.rev.Services[0].Protocol = "http2"
	f.rev.Routes[0].Paths = []string{"/elsewhere/*"}
	g.apply(f.rev)
	cc, err := grpc.NewClient("passthrough:///"+g.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx := metadata.AppendToOutgoingContext(callCtx(t), "traceparent", clientParent)
	var trl metadata.MD
	_, err = testgrpc.NewTestServiceClient(cc).UnaryCall(ctx, &testgrpc.SimpleRequest{}, grpc.Trailer(&trl))
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("got %v; want Unimplemented (no route)", err)
	}
	if got := trl.Get("trace-id"); len(got) != 1 || got[0] != clientTraceID {
		t.Errorf("trace-id %q; want [%s] (%v)", got, clientTraceID, trl)
	}
}
