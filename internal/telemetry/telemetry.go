// Package telemetry sets up gatehouse's OpenTelemetry traces from the
// standard OTEL_* environment variables. Tracing is off unless the
// environment asks for it: OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set, or OTEL_TRACES_EXPORTER=otlp.
// OTEL_TRACES_EXPORTER=none turns it off whatever else is set.
//
// What the SDK and the exporters read themselves is left to them, so that
// they mean what their documentation says: the endpoint, headers,
// timeout, compression and TLS of the OTLP exporter
// (OTEL_EXPORTER_OTLP_*), the sampler (OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG; parentbased_always_on by default), the batch
// processor (OTEL_BSP_*) and the resource (OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES; service.name defaults to "gatehouse"). This
// package only chooses between OTLP over HTTP (http/protobuf, the
// default) and gRPC (grpc) by OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or
// OTEL_EXPORTER_OTLP_PROTOCOL.
package telemetry

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Enabled reports whether the environment, read by getenv, turns tracing
// on, and an error for an exporter other than otlp or none.
func Enabled(getenv func(string) string) (bool, error) {
	switch e := getenv("OTEL_TRACES_EXPORTER"); e {
	case "none":
		return false, nil
	case "otlp":
		return true, nil
	case "":
		return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "", nil
	default:
		return false, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: gatehouse exports traces by otlp (or none)", e)
	}
}

// Setup returns the tracer provider the environment (getenv; the SDK
// and the exporters read the process's own, which should be the same)
// configures, or nil when tracing is off. Shutting the provider down
// flushes the spans not yet exported: gatehouse does it last in its
// graceful shutdown. version is the resource's service.version.
func Setup(ctx context.Context, getenv func(string) string, version string) (*sdktrace.TracerProvider, error) {
	on, err := Enabled(getenv)
	if err != nil || !on {
		return nil, err
	}
	protocol := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var exp sdktrace.SpanExporter
	switch protocol {
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("OTLP protocol %q: gatehouse exports traces by http/protobuf or grpc", protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	// Later sources win: the environment's service name over the default.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "gatehouse"), attribute.String("service.version", version)),
		resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}
