package serve

import (
	"net"
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// TracerName is the instrumentation scope of gatehouse's spans.
const TracerName = "github.com/gatehouse/gatehouse"

// traceContext reads and writes W3C traceparent and tracestate, the only
// propagation format gatehouse speaks.
var traceContext propagation.TraceContext

// startSpan starts the server span of r, a child of the client's
// traceparent if it sent one, and returns r with the span in its context.
func (s *Server) startSpan(r *http.Request) (*http.Request, trace.Span) {
	ctx := traceContext.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	// The attributes come after the sampler's decision (the samplers the
	// environment can choose do not read them): an unsampled request,
	// most of them at a low ratio, does not pay for them.
	ctx, span := s.opts.Tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer))
	if span.IsRecording() {
		span.SetAttributes(requestAttributes(r)...)
	}
	return r.WithContext(ctx), span
}

// requestAttributes are what the request says of itself, in the
// semantic conventions' names.
func requestAttributes(r *http.Request) []attribute.KeyValue {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host, port := splitHostPort(r.Host)
	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", r.Method),
		attribute.String("url.path", r.URL.Path),
		attribute.String("url.scheme", scheme),
		attribute.String("server.address", host),
		attribute.String("network.protocol.version", protocolVersion(r)),
	}
	if port > 0 {
		attrs = append(attrs, attribute.Int("server.port", port))
	}
	if peer, _ := splitHostPort(r.RemoteAddr); peer != "" {
		// The data plane replaces it by the client its trusted proxies
		// name (proxy's traceRoute).
		attrs = append(attrs, attribute.String("client.address", peer))
	}
	if ua := r.Header.Get("User-Agent"); ua != "" {
		attrs = append(attrs, attribute.String("user_agent.original", ua))
	}
	return attrs
}

// endSpan ends span with what the response was: status 0 is none sent
// (aborted). Only a 5xx is an error of the server's, as the semantic
// conventions say; a 4xx is the client's.
func endSpan(span trace.Span, r *http.Request, rec *statusRecorder, status int, aborted bool) {
	defer span.End()
	if !span.IsRecording() {
		return
	}
	if status > 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", status))
	}
	if rec.route != "" {
		span.SetAttributes(attribute.String("gatehouse.route.id", rec.route))
	}
	if rec.service != "" {
		span.SetAttributes(attribute.String("gatehouse.service.id", rec.service))
	}
	if r.Pattern != "" {
		// The admin API's mux pattern ("GET /admin/v1/routes/{id}"): its
		// path is the route template. The data plane's is set by proxy.
		if i := strings.IndexByte(r.Pattern, '/'); i >= 0 {
			span.SetAttributes(attribute.String("http.route", r.Pattern[i:]))
			span.SetName(r.Method + " " + r.Pattern[i:])
		}
	}
	switch {
	case status >= 500:
		span.SetAttributes(attribute.String("error.type", strconv.Itoa(status)))
		span.SetStatus(codes.Error, "")
	case aborted:
		span.SetAttributes(attribute.Bool("gatehouse.aborted", true))
	}
}

func protocolVersion(r *http.Request) string {
	switch {
	case r.ProtoMajor == 2:
		return "2"
	case r.ProtoMajor == 3:
		return "3"
	case r.ProtoMinor == 0:
		return "1.0"
	}
	return "1.1"
}

// splitHostPort splits "host:port" or a bare host; port 0 is none.
func splitHostPort(hp string) (string, int) {
	host, p, err := net.SplitHostPort(hp)
	if err != nil {
		return hp, 0
	}
	port, _ := strconv.Atoi(p)
	return host, port
}
