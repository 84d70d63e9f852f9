package proxy

import (
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
)

// TestGRPCHealthCheckTakesANotServingUpstreamOutOfRotation: a service
// whose health_check is of type grpc asks the upstream's own gRPC health
// service. Its NOT_SERVING takes the upstream out of rotation (the
// gateway's 503, UNAVAILABLE to the gRPC client), its SERVING brings it
// back; for the server as a whole and for one named service.
func TestGRPCHealthCheckTakesANotServingUpstreamOutOfRotation(t *testing.T) {
	for _, tc := range []struct {
		desc, service string
	}{
		{"the server as a whole", ""},
		{"one service", "grpc.testing.TestService"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			s := grpc.NewServer()
			testgrpc.RegisterTestServiceServer(s, testService{})
			hs := health.NewServer()
			healthpb.RegisterHealthServer(s, hs)
			hs.SetServingStatus(tc.service, healthpb.HealthCheckResponse_SERVING)
			go s.Serve(l)
			t.Cleanup(s.Stop)

			g, client := grpcGateway(t, nil)
			up := "http://" + l.Addr().String()
			g.route(up, `,"protocol":"http2","health_check":{"type":"grpc","grpc_service":"`+tc.service+
				`","interval_ms":100,"timeout_ms":50,"healthy_threshold":1,"unhealthy_threshold":1}`, "")
			call := func() codes.Code {
				_, err := client.UnaryCall(callCtx(t), &testgrpc.SimpleRequest{})
				return status.Code(err)
			}
			// Polled until the checks have seen the change: a bound for
			// "never", not a timing assertion.
			until := func(want codes.Code, what string) {
				t.Helper()
				var got codes.Code
				for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
					if got = call(); got == want {
						return
					}
				}
				t.Fatalf("%s: calls still end %v; want %v", what, got, want)
			}

			until(codes.OK, "SERVING")
			hs.SetServingStatus(tc.service, healthpb.HealthCheckResponse_NOT_SERVING)
			until(codes.Unavailable, "NOT_SERVING")
			_, err = client.UnaryCall(callCtx(t), &testgrpc.SimpleRequest{})
			if msg := status.Convert(err).Message(); !strings.Contains(msg, "healthy") {
				t.Errorf("out of rotation: message %q; want the gateway's no healthy target", msg)
			}
			hs.SetServingStatus(tc.service, healthpb.HealthCheckResponse_SERVING)
			until(codes.OK, "SERVING again")
		})
	}
}
