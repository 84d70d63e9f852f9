package proxy

import (
	"net/http"

	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/proxy/core"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// traceRoute adds to the request's server span (internal/serve starts
// and ends it; route and service come from serve.Annotate) what only the
// data plane knows: the route's template, the consumer, the client as
// the trusted proxies name it, and the policy type that refused the
// request, if one did. pr is nil for a route without policies. Untraced,
// or not sampled, it does nothing and allocates nothing.
func (h *Handler) traceRoute(r *http.Request, d *core.Decision, pr *policy.Request) {
	span := trace.SpanFromContext(r.Context())
	if !span.IsRecording() || d.Route == nil {
		return
	}
	if t := d.Route.Template; t != "" {
		span.SetAttributes(attribute.String("http.route", t))
		span.SetName(r.Method + " " + t)
	}
	client := h.clientAddr(r)
	if pr != nil {
		client = pr.Client
	}
	if client.IsValid() {
		span.SetAttributes(attribute.String("client.address", client.String()))
	}
	if pr == nil {
		return
	}
	if pr.Consumer != nil {
		span.SetAttributes(attribute.String("gatehouse.consumer.id", pr.Consumer.ID))
	}
	if pr.RefusedBy != "" {
		span.SetAttributes(attribute.String("gatehouse.policy", pr.RefusedBy))
	}
}
