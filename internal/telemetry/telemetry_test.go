package telemetry

import (
	"context"
	"os"
	"testing"

	"github.com/gatehouse/gatehouse/internal/otlptest"
)

var getenv = os.Getenv

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestTracingIsOnOnlyWhenTheEnvironmentAsks(t *testing.T) {
	for _, tc := range []struct {
		desc    string
		env     map[string]string
		on, bad bool
	}{
		{"nothing set", nil, false, false},
		{"an endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true, false},
		{"a traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, true, false},
		{"exporter otlp alone", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true, false},
		{"exporter none wins over an endpoint", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, false, false},
		{"an exporter gatehouse lacks", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, false, true},
		{"the metrics endpoint only", map[string]string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://c:4318"}, false, false},
	} {
		on, err := Enabled(env(tc.env))
		if on != tc.on || (err != nil) != tc.bad {
			t.Errorf("%s: on %v, error %v; want on %v, error %v", tc.desc, on, err, tc.on, tc.bad)
		}
	}
}

func TestSetupIsNilWithTracingOff(t *testing.T) {
	tp, err := Setup(context.Background(), env(nil), "test")
	if tp != nil || err != nil {
		t.Fatalf("got %v, %v; want no provider and no error", tp, err)
	}
}

func TestSetupRefusesAnUnknownProtocol(t *testing.T) {
	_, err := Setup(context.Background(), env(map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}), "test")
	if err == nil {
		t.Fatal("http/json accepted; want an error naming the protocols gatehouse exports by")
	}
}

// The exporters, sampler and resource read the process's environment
// themselves: these tests set it.
func TestSetupExportsByTheProtocolTheEnvironmentNames(t *testing.T) {
	rcv := otlptest.New(t)
	for _, tc := range []struct {
		desc string
		env  map[string]string
	}{
		{"http/protobuf by default", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.URL}},
		{"grpc", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + rcv.GRPCAddr, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}},
		{"grpc for traces only", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://" + rcv.GRPCAddr,
			"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Setenv("OTEL_SERVICE_NAME", "edge-"+tc.desc)
			t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			before := len(rcv.Spans())
			tp, err := Setup(context.Background(), getenv, "v9")
			if err != nil || tp == nil {
				t.Fatalf("Setup: %v, %v; want a provider", tp, err)
			}
			_, span := tp.Tracer("test").Start(context.Background(), "op")
			span.End()
			// Shutdown flushes: the span is at the receiver when it returns.
			if err := tp.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			spans := rcv.Spans()
			if len(spans) != before+1 {
				t.Fatalf("receiver has %d new spans; want 1", len(spans)-before)
			}
			res := spans[before].Resource
			for k, v := range map[string]any{"service.name": "edge-" + tc.desc, "service.version": "v9",
				"deployment.environment.name": "test"} {
				if res[k] != v {
					t.Errorf("resource %s = %v; want %v", k, res[k], v)
				}
			}
		})
	}
}

func TestSetupSamplesAsTheEnvironmentSays(t *testing.T) {
	rcv := otlptest.New(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL)
	for _, tc := range []struct {
		sampler, arg string
		sampled      bool
	}{
		{"", "", true}, // parentbased_always_on
		{"always_off", "", false},
		{"traceidratio", "0", false},
		{"parentbased_traceidratio", "1", true},
	} {
		t.Setenv("OTEL_TRACES_SAMPLER", tc.sampler)
		t.Setenv("OTEL_TRACES_SAMPLER_ARG", tc.arg)
		tp, err := Setup(context.Background(), getenv, "test")
		if err != nil {
			t.Fatal(err)
		}
		_, span := tp.Tracer("test").Start(context.Background(), "op")
		if got := span.SpanContext().IsSampled(); got != tc.sampled {
			t.Errorf("sampler %q arg %q: sampled %v; want %v", tc.sampler, tc.arg, got, tc.sampled)
		}
		span.End()
		tp.Shutdown(context.Background())
	}
}
