package forward

import (
	"bytes"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
)

// grpcHealthUpstream is a real gRPC server over h2c, with gRPC's own
// health service unless bare; it returns the target and the health
// service (nil if bare).
func grpcHealthUpstream(t *testing.T, bare bool) (Target, *health.Server) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	var hs *health.Server
	if !bare {
		hs = health.NewServer()
		healthpb.RegisterHealthServer(s, hs)
	}
	go s.Serve(l)
	t.Cleanup(s.Stop)
	return Target{URL: mustURL(t, "http://"+l.Addr().String()), Weight: 1}, hs
}

// TestGRPCHealthCheckFollowsTheServersServingStatus: a grpc check calls
// grpc.health.v1.Health/Check on a real gRPC server, asking about the
// server as a whole or one service. NOT_SERVING takes the target out of
// rotation and SERVING brings it back; a service the server does not
// know (NOT_FOUND) or a server without the health service (UNIMPLEMENTED)
// never passes.
func TestGRPCHealthCheckFollowsTheServersServingStatus(t *testing.T) {
	for _, tc := range []struct {
		desc    string
		service string
	}{
		{"the server as a whole", ""},
		{"one service", "grpc.testing.TestService"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			target, hs := grpcHealthUpstream(t, false)
			hs.SetServingStatus(tc.service, healthpb.HealthCheckResponse_SERVING)
			p := newTestPool(t, Config{Targets: []Target{target}, HTTP2: true,
				HealthCheck: &HealthCheck{GRPC: true, GRPCService: tc.service, Interval: 5 * time.Millisecond,
					Timeout: time.Second, HealthyThreshold: 1, UnhealthyThreshold: 1}})
			up := func() bool { return !p.targets[0].down.Load() }

			hs.SetServingStatus(tc.service, healthpb.HealthCheckResponse_NOT_SERVING)
			eventually(t, "the target out of rotation on NOT_SERVING", p.targets[0].down.Load)
			if _, ok := p.pick(0); ok {
				t.Error("a target was picked while the only one is NOT_SERVING")
			}
			hs.SetServingStatus(tc.service, healthpb.HealthCheckResponse_SERVING)
			eventually(t, "the target back on SERVING", up)
			if _, ok := p.pick(0); !ok {
				t.Error("no target picked once SERVING again")
			}
		})
	}
	for _, tc := range []struct {
		desc    string
		service string
		bare    bool
		cause   string // the trailers-only answer's status, in the header
	}{
		{desc: "a service the server does not know", service: "no.such.Service", cause: "grpc-status 5"},
		{desc: "a server without the health service", bare: true, cause: "grpc-status 12"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			target, _ := grpcHealthUpstream(t, tc.bare)
			p := newTestPool(t, Config{Targets: []Target{target}, HTTP2: true,
				HealthCheck: &HealthCheck{GRPC: true, GRPCService: tc.service, Interval: 5 * time.Millisecond,
					Timeout: time.Second, HealthyThreshold: 1, UnhealthyThreshold: 1}})
			eventually(t, "the target out of rotation", p.targets[0].down.Load)
			if f := p.targets[0].lastFailure.Load(); f == nil || f.Cause != tc.cause {
				t.Errorf("last failure %+v; want the cause %q", f, tc.cause)
			}
		})
	}
}

func TestGRPCHealthStatusReadsOneFramedResponse(t *testing.T) {
	frame := func(msg ...byte) []byte {
		return append([]byte{0, 0, 0, 0, byte(len(msg))}, msg...)
	}
	tests := []struct {
		desc   string
		body   []byte
		status int32
		ok     bool
	}{
		{"SERVING", frame(0x08, 0x01), 1, true},
		{"NOT_SERVING", frame(0x08, 0x02), 2, true},
		{"empty message: UNKNOWN", frame(), 0, true},
		{"unknown fields around the status are skipped", frame(0x10, 0x07, 0x1a, 0x02, 'h', 'i', 0x08, 0x01, 0x25, 1, 2, 3, 4, 0x29, 1, 2, 3, 4, 5, 6, 7, 8), 1, true},
		{"the last status wins", frame(0x08, 0x02, 0x08, 0x01), 1, true},
		{"a status of another wire type is an unknown field", frame(0x0a, 0x01, 0x01), 0, true},
		{"an enum past 32 bits is cut to them", frame(0x08, 0x81, 0x80, 0x80, 0x80, 0x10), 1, true},
		{"no frame", nil, 0, false},
		{"short frame header", []byte{0, 0, 0}, 0, false},
		{"compressed", []byte{1, 0, 0, 0, 2, 0x08, 0x01}, 0, false},
		{"length past the body", []byte{0, 0, 0, 0, 3, 0x08, 0x01}, 0, false},
		{"a second message after the first", append(frame(0x08, 0x01), frame(0x08, 0x02)...), 0, false},
		{"truncated varint", frame(0x08, 0x81), 0, false},
		{"field number 0", frame(0x00, 0x01), 0, false},
		{"a group", frame(0x13, 0x14), 0, false},
		{"length-delimited past the message", frame(0x1a, 0x05, 'h'), 0, false},
		{"truncated fixed32", frame(0x25, 1, 2), 0, false},
	}
	for _, tc := range tests {
		status, ok := grpcHealthStatus(tc.body)
		if status != tc.status || ok != tc.ok {
			t.Errorf("%s: grpcHealthStatus(% x) = %d, %t; want %d, %t", tc.desc, tc.body, status, ok, tc.status, tc.ok)
		}
	}
}

// FuzzGRPCHealthStatus: the hand decoder never panics, and whatever it
// takes, protobuf's own decoder takes too and reads the same status. (It
// refuses groups, which protobuf skips and proto3 never writes.)
func FuzzGRPCHealthStatus(f *testing.F) {
	for _, msg := range [][]byte{{0x08, 0x01}, {0x08, 0x02}, {}, {0x10, 0x07, 0x08, 0x01}, {0x0a, 0x01, 0x01}, {0x08, 0xff, 0xff, 0xff, 0xff, 0x0f}, {0x13, 0x14}} {
		f.Add(append([]byte{0, 0, 0, 0, byte(len(msg))}, msg...))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		status, ok := grpcHealthStatus(body)
		if !ok {
			return
		}
		var m healthpb.HealthCheckResponse
		if err := proto.Unmarshal(body[5:], &m); err != nil {
			t.Fatalf("grpcHealthStatus(% x) took what protobuf refuses: %v", body, err)
		}
		if int32(m.Status) != status {
			t.Fatalf("grpcHealthStatus(% x) = %d; protobuf reads %d", body, status, m.Status)
		}
	})
}

// FuzzGRPCHealthRequest: the hand encoder's frame holds exactly the
// HealthCheckRequest protobuf reads back as the service asked about.
func FuzzGRPCHealthRequest(f *testing.F) {
	for _, s := range []string{"", "grpc.testing.TestService", string(bytes.Repeat([]byte("s"), 300))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, service string) {
		if !utf8.ValidString(service) {
			t.Skip("proto3 strings are UTF-8")
		}
		b := grpcHealthRequest(service)
		if len(b) < 5 || b[0] != 0 || int(b[1])<<24|int(b[2])<<16|int(b[3])<<8|int(b[4]) != len(b)-5 {
			t.Fatalf("grpcHealthRequest(%q) = % x: not one uncompressed frame", service, b)
		}
		var m healthpb.HealthCheckRequest
		if err := proto.Unmarshal(b[5:], &m); err != nil || m.Service != service {
			t.Fatalf("grpcHealthRequest(%q) reads back as %q, %v", service, m.Service, err)
		}
		if want, _ := proto.Marshal(&m); !bytes.Equal(b[5:], want) {
			t.Fatalf("grpcHealthRequest(%q) = % x; protobuf writes % x", service, b[5:], want)
		}
	})
}

// The cause a gRPC check records is published with the live figures: the
// upstream's grpc-status is kept only as the code it should be.
func TestGRPCStatusInACauseIsACodeNeverTheUpstreamsText(t *testing.T) {
	for _, tc := range []struct {
		trailer, header, want string
	}{
		{"14", "", "14"},
		{"", "12", "12"},
		{"", "", "missing"},
		{strings.Repeat("9", 1<<20), "", "invalid"},
		{"1x", "", "invalid"},
	} {
		resp := &http.Response{Header: http.Header{}, Trailer: http.Header{}}
		if tc.trailer != "" {
			resp.Trailer.Set("Grpc-Status", tc.trailer)
		}
		if tc.header != "" {
			resp.Header.Set("Grpc-Status", tc.header)
		}
		if got := grpcStatusOf(resp); got != tc.want {
			t.Errorf("trailer %.8q, header %q: %q; want %q", tc.trailer, tc.header, got, tc.want)
		}
	}
}
