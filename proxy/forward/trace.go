package forward

import (
	"context"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// tracerName is the instrumentation scope of the upstream spans, the one
// of the server spans (internal/serve).
const tracerName = "github.com/gatehouse/gatehouse"

// mirrorKey marks the context of a mirror's copy (Mirror).
type mirrorKey struct{}

// Mirror returns ctx marked as that of a mirror's copy: the client spans
// of its exchange carry gatehouse.mirror=true, so that a trace tells the
// shadow's exchange from the primary's. A copy of a traced request is
// sent under a context that holds the request's server span, and gets
// its own client span and traceparent from RoundTrip like any exchange.
func Mirror(ctx context.Context) context.Context { return context.WithValue(ctx, mirrorKey{}, true) }

// startAttempt starts the client span of attempt n (from 1) to send out
// to t with tracer (nil: the provider's of out's span), when out's
// context holds a span (the server span of a traced request), and puts
// that span's W3C traceparent (and tracestate) in out's header, replacing
// the client's: the upstream's parent is this attempt. Untraced, it
// returns nil and leaves out alone, the client's traceparent included. It
// allocates nothing then.
func startAttempt(tracer trace.Tracer, out *http.Request, t *target, n int) trace.Span {
	parent := trace.SpanFromContext(out.Context())
	if !parent.SpanContext().IsValid() {
		return nil
	}
	if tracer == nil {
		tracer = parent.TracerProvider().Tracer(tracerName)
	}
	if !parent.IsRecording() {
		// Unsampled: the child is not either (parent-based sampling), but
		// the upstream still gets its own traceparent.
		ctx, span := tracer.Start(out.Context(), out.Method, trace.WithSpanKind(trace.SpanKindClient))
		propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(out.Header))
		return span
	}
	port := t.URL.Port()
	if port == "" {
		port = "80"
		if t.URL.Scheme == "https" {
			port = "443"
		}
	}
	p, _ := strconv.Atoi(port)
	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", out.Method),
		attribute.String("server.address", t.URL.Hostname()),
		attribute.Int("server.port", p),
		attribute.String("url.full", out.URL.String()),
	}
	if n > 1 {
		attrs = append(attrs, attribute.Int("http.request.resend_count", n-1))
	}
	if out.Context().Value(mirrorKey{}) != nil {
		attrs = append(attrs, attribute.Bool("gatehouse.mirror", true))
	}
	ctx, span := tracer.Start(out.Context(), out.Method,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(out.Header))
	return span
}

// endAttempt ends an attempt's span when its response head came (resp)
// or it failed (err, which classify judged f: the span names the failure
// the answer is made of). A client span is an error for a failure and
// for 4xx and 5xx alike, as the semantic conventions say of client spans.
func endAttempt(span trace.Span, resp *http.Response, err error, f failure) {
	defer span.End()
	if !span.IsRecording() {
		return
	}
	switch {
	case err != nil:
		span.SetAttributes(attribute.String("error.type", failures[f].name))
		span.SetStatus(codes.Error, err.Error())
	default:
		span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
		if resp.StatusCode >= 400 {
			span.SetAttributes(attribute.String("error.type", strconv.Itoa(resp.StatusCode)))
			span.SetStatus(codes.Error, "")
		}
	}
}
