package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gatehouse/gatehouse/internal/serve"
	"github.com/gatehouse/gatehouse/internal/testpki"
)

// testService is gRPC's interop TestService, enough of it to prove each
// kind of call: unary (with a status and trailer metadata on request, or
// a delay from the x-sleep metadata), server-, client- and bidi-streaming.
type testService struct {
	testgrpc.UnimplementedTestServiceServer
}

func (testService) UnaryCall(ctx context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("x-sleep"); len(v) > 0 {
		d, _ := time.ParseDuration(v[0])
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	grpc.SetHeader(ctx, metadata.Pairs("x-head", "head-value"))
	grpc.SetTrailer(ctx, metadata.Pairs("x-tail", "tail-value"))
	if s := req.ResponseStatus; s != nil {
		return nil, status.Error(codes.Code(s.Code), s.Message)
	}
	return &testgrpc.SimpleResponse{Payload: req.Payload}, nil
}

func (testService) StreamingOutputCall(req *testgrpc.StreamingOutputCallRequest, stream grpc.ServerStreamingServer[testgrpc.StreamingOutputCallResponse]) error {
	for _, p := range req.ResponseParameters {
		time.Sleep(time.Duration(p.IntervalUs) * time.Microsecond)
		if err := stream.Send(&testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: make([]byte, p.Size)}}); err != nil {
			return err
		}
	}
	return nil
}

func (testService) StreamingInputCall(stream grpc.ClientStreamingServer[testgrpc.StreamingInputCallRequest, testgrpc.StreamingInputCallResponse]) error {
	var sum int32
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&testgrpc.StreamingInputCallResponse{AggregatedPayloadSize: sum})
		}
		if err != nil {
			return err
		}
		sum += int32(len(req.Payload.GetBody()))
	}
}

// FullDuplexCall sends its header before it reads anything, then echoes
// each message as it comes.
func (testService) FullDuplexCall(stream grpc.BidiStreamingServer[testgrpc.StreamingOutputCallRequest, testgrpc.StreamingOutputCallResponse]) error {
	if err := stream.SendHeader(metadata.Pairs("x-head", "early")); err != nil {
		return err
	}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&testgrpc.StreamingOutputCallResponse{Payload: req.Payload}); err != nil {
			return err
		}
	}
}

// grpcUpstream serves testService over h2c, or over TLS presenting leaf;
// it returns the service URL.
func grpcUpstream(t *testing.T, leaf *testpki.Leaf) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var opts []grpc.ServerOption
	scheme := "http"
	if leaf != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{leaf.TLS}})))
		scheme = "https"
	}
	s := grpc.NewServer(opts...)
	testgrpc.RegisterTestServiceServer(s, testService{})
	go s.Serve(l)
	t.Cleanup(s.Stop)
	return scheme + "://" + l.Addr().String()
}

// grpcGateway is a gateway whose listener speaks h2c, or TLS with a
// certificate ca issued, and a gRPC client of it.
func grpcGateway(t *testing.T, ca *testpki.CA) (*gateway, testgrpc.TestServiceClient) {
	t.Helper()
	var g *gateway
	creds := insecure.NewCredentials()
	if ca != nil {
		leaf := ca.Server(t, "127.0.0.1")
		dir := t.TempDir()
		cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		if err := os.WriteFile(cert, []byte(leaf.CertPEM), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(key, []byte(leaf.KeyPEM), 0o600); err != nil {
			t.Fatal(err)
		}
		g = newGateway(t, func(o *serve.Options) { o.TLSCert, o.TLSKey = cert, key })
		creds = credentials.NewTLS(&tls.Config{RootCAs: ca.Pool()})
	} else {
		g = newGateway(t, func(o *serve.Options) { o.H2C = true })
	}
	cc, err := grpc.NewClient("passthrough:///"+g.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return g, testgrpc.NewTestServiceClient(cc)
}

// http2Service is the service fields of an HTTP/2 upstream at url, with
// ca's bundle for a TLS one.
func http2Service(t *testing.T, url string, ca *testpki.CA) string {
	fields := `,"protocol":"http2"`
	if strings.HasPrefix(url, "https:") {
		fields += tlsJSON(t, map[string]any{"ca_bundle": ca.PEM, "ca_only": true})
	}
	return fields
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestGRPCCallsOfEveryKindPassThroughTheGateway(t *testing.T) {
	ca := testpki.NewCA(t, "gatehouse test CA")
	for _, tc := range []struct {
		desc                string
		clientTLS, upstream bool
	}{
		{desc: "h2c to the gateway, h2c upstream"},
		{desc: "h2c to the gateway, TLS upstream", upstream: true},
		{desc: "TLS to the gateway, h2c upstream", clientTLS: true},
		{desc: "TLS to the gateway, TLS upstream", clientTLS: true, upstream: true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var leaf *testpki.Leaf
			if tc.upstream {
				leaf = ca.Server(t, "127.0.0.1")
			}
			up := grpcUpstream(t, leaf)
			var gwCA *testpki.CA
			if tc.clientTLS {
				gwCA = ca
			}
			g, client := grpcGateway(t, gwCA)
			g.route(up, http2Service(t, up, ca), "")

			t.Run("unary, with header and trailer metadata", func(t *testing.T) {
				var hdr, trl metadata.MD
				resp, err := client.UnaryCall(callCtx(t), &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("ping")}},
					grpc.Header(&hdr), grpc.Trailer(&trl))
				if err != nil {
					t.Fatal(err)
				}
				if got := string(resp.Payload.GetBody()); got != "ping" {
					t.Errorf("payload %q; want ping", got)
				}
				if got := hdr.Get("x-head"); len(got) != 1 || got[0] != "head-value" {
					t.Errorf("header x-head %v; want head-value", got)
				}
				if got := trl.Get("x-tail"); len(got) != 1 || got[0] != "tail-value" {
					t.Errorf("trailer x-tail %v; want tail-value", got)
				}
			})
			t.Run("the upstream's error status and trailer metadata", func(t *testing.T) {
				var trl metadata.MD
				_, err := client.UnaryCall(callCtx(t), &testgrpc.SimpleRequest{
					ResponseStatus: &testgrpc.EchoStatus{Code: int32(codes.FailedPrecondition), Message: "not now: 100% busy"}},
					grpc.Trailer(&trl))
				if s := status.Convert(err); s.Code() != codes.FailedPrecondition || s.Message() != "not now: 100% busy" {
					t.Errorf("got %v %q; want FailedPrecondition %q", s.Code(), s.Message(), "not now: 100% busy")
				}
				if got := trl.Get("x-tail"); len(got) != 1 || got[0] != "tail-value" {
					t.Errorf("trailer x-tail %v; want tail-value", got)
				}
			})
			t.Run("server streaming", func(t *testing.T) {
				stream, err := client.StreamingOutputCall(callCtx(t), &testgrpc.StreamingOutputCallRequest{
					ResponseParameters: []*testgrpc.ResponseParameters{{Size: 10}, {Size: 70000, IntervalUs: 10000}, {Size: 3}}})
				if err != nil {
					t.Fatal(err)
				}
				var sizes []int
				for {
					m, err := stream.Recv()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					sizes = append(sizes, len(m.Payload.GetBody()))
				}
				if fmt.Sprint(sizes) != "[10 70000 3]" {
					t.Errorf("sizes %v; want [10 70000 3]", sizes)
				}
			})
			t.Run("client streaming", func(t *testing.T) {
				stream, err := client.StreamingInputCall(callCtx(t))
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range []int{5, 100000, 7} {
					if err := stream.Send(&testgrpc.StreamingInputCallRequest{Payload: &testgrpc.Payload{Body: make([]byte, n)}}); err != nil {
						t.Fatal(err)
					}
				}
				resp, err := stream.CloseAndRecv()
				if err != nil {
					t.Fatal(err)
				}
				if resp.AggregatedPayloadSize != 100012 {
					t.Errorf("aggregated %d; want 100012", resp.AggregatedPayloadSize)
				}
			})
			t.Run("bidi streaming, header and each message as they come", func(t *testing.T) {
				stream, err := client.FullDuplexCall(callCtx(t))
				if err != nil {
					t.Fatal(err)
				}
				// The upstream's header comes before any message: only
				// a gateway that sends it at once lets this return.
				hdr, err := stream.Header()
				if err != nil {
					t.Fatal(err)
				}
				if got := hdr.Get("x-head"); len(got) != 1 || got[0] != "early" {
					t.Errorf("header x-head %v; want early", got)
				}
				// In lockstep: each echo must arrive before the next
				// message is sent.
				for _, word := range []string{"one", "two", "three"} {
					if err := stream.Send(&testgrpc.StreamingOutputCallRequest{Payload: &testgrpc.Payload{Body: []byte(word)}}); err != nil {
						t.Fatal(err)
					}
					m, err := stream.Recv()
					if err != nil {
						t.Fatal(err)
					}
					if got := string(m.Payload.GetBody()); got != word {
						t.Errorf("echo %q; want %q", got, word)
					}
				}
				stream.CloseSend()
				if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
					t.Errorf("end of stream: %v; want io.EOF", err)
				}
			})
		})
	}
}

// TestGatewayRefusalsReachGRPCClientsAsTheirStatusCodes: each answer
// gatehouse itself gives a gRPC request is read by a real gRPC client as
// the status http-grpc-status-mapping.md gives its HTTP status, with the
// problem's detail as the message and the refusal's fields kept.
func TestGatewayRefusalsReachGRPCClientsAsTheirStatusCodes(t *testing.T) {
	up := grpcUpstream(t, nil)
	down := "http://" + closedPort(t)
	fixture := func(t *testing.T, url string) *policyFixture {
		f := newPolicyFixture(t, url)
		f.rev.Services[0].Protocol = "http2"
		return f
	}
	tests := []struct {
		desc      string
		rev       func(t *testing.T) *policyFixture
		before    int // calls that must fail first with beforeCode (a rate limit's allowance, a breaker's failures)
		before200 bool
		want      codes.Code
		wantMsg   string
		wantField string // a field of the refusal, kept in the answer
	}{
		{desc: "401 auth is UNAUTHENTICATED",
			rev: func(t *testing.T) *policyFixture {
				return fixture(t, up).policy(`{"name":"a","type":"auth","config":{"key_auth":{}}}`)
			},
			want: codes.Unauthenticated, wantMsg: "This route requires credentials, and none were presented.", wantField: "www-authenticate"},
		{desc: "403 ip-restriction is PERMISSION_DENIED",
			rev: func(t *testing.T) *policyFixture {
				return fixture(t, up).policy(`{"name":"ip","type":"ip-restriction","config":{"deny":["127.0.0.0/8"]}}`)
			},
			want: codes.PermissionDenied, wantMsg: "Requests from this address are not allowed."},
		{desc: "404 no route is UNIMPLEMENTED",
			rev: func(t *testing.T) *policyFixture {
				f := fixture(t, up)
				f.rev.Routes[0].Paths = []string{"/elsewhere/*"}
				return f
			},
			want: codes.Unimplemented, wantMsg: "No route matches this request."},
		{desc: "429 rate-limit is RESOURCE_EXHAUSTED",
			rev: func(t *testing.T) *policyFixture {
				return fixture(t, up).policy(`{"name":"rl","type":"rate-limit","config":{"requests":1,"per":"hour","by":"route"}}`)
			},
			before: 1, before200: true,
			want: codes.ResourceExhausted, wantMsg: "Rate limit exceeded", wantField: "retry-after"},
		{desc: "503 maintenance is UNAVAILABLE",
			rev: func(t *testing.T) *policyFixture {
				return fixture(t, up).policy(`{"name":"m","type":"maintenance","config":{"message":"Back at noon.","retry_after_seconds":120}}`)
			},
			want: codes.Unavailable, wantMsg: "Back at noon.", wantField: "retry-after"},
		{desc: "502 upstream down is UNAVAILABLE",
			rev:  func(t *testing.T) *policyFixture { return fixture(t, down) },
			want: codes.Unavailable, wantMsg: "The upstream refused the connection."},
		{desc: "503 open circuit is UNAVAILABLE",
			rev: func(t *testing.T) *policyFixture {
				return fixture(t, down).policy(`{"name":"cb","type":"circuit-breaker","config":{"failures":2,"open_seconds":60}}`)
			},
			before: 2,
			want:   codes.Unavailable, wantMsg: "The circuit for this service is open", wantField: "retry-after"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			g, client := grpcGateway(t, nil)
			g.apply(tc.rev(t).rev)
			req := &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("x")}}
			for range tc.before {
				_, err := client.UnaryCall(callCtx(t), req)
				if tc.before200 != (err == nil) {
					t.Fatalf("a call before the refusal: %v", err)
				}
			}
			var hdr, trl metadata.MD
			_, err := client.UnaryCall(callCtx(t), req, grpc.Header(&hdr), grpc.Trailer(&trl))
			s := status.Convert(err)
			if s.Code() != tc.want || !strings.Contains(s.Message(), tc.wantMsg) {
				t.Fatalf("got %v %q; want %v with %q", s.Code(), s.Message(), tc.want, tc.wantMsg)
			}
			// A trailers-only answer: its one header section is what
			// grpc-go calls the trailer.
			for _, f := range []string{"x-request-id", tc.wantField} {
				if f != "" && len(trl.Get(f)) == 0 {
					t.Errorf("%s missing from the answer (%v)", f, trl)
				}
			}
		})
	}
}

// grpcFrame is one length-prefixed gRPC message.
func grpcFrame(t *testing.T, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 5, 5+len(b))
	binary.BigEndian.PutUint32(frame[1:], uint32(len(b)))
	return append(frame, b...)
}

// h2cClient speaks HTTP/2 with prior knowledge and has no deadline of its
// own beyond the test's safety net.
func h2cClient(t *testing.T) *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// TestGRPCTimeoutBoundsTheUpstreamExchange: a grpc-timeout that passes
// before the upstream's head is gatehouse's 504, DEADLINE_EXCEEDED, to a
// client with no deadline of its own; one that passes mid-stream ends a
// gRPC call with DEADLINE_EXCEEDED in its trailers.
func TestGRPCTimeoutBoundsTheUpstreamExchange(t *testing.T) {
	up := grpcUpstream(t, nil)
	g, _ := grpcGateway(t, nil)
	g.route(up, `,"protocol":"http2"`, "")
	client := h2cClient(t)
	unary := grpcFrame(t, &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("slow")}})
	stream := grpcFrame(t, &testgrpc.StreamingOutputCallRequest{
		ResponseParameters: []*testgrpc.ResponseParameters{{Size: 1}, {Size: 1, IntervalUs: 2_000_000}}})
	call := func(method string, body []byte, headers ...string) (*http.Response, error) {
		req, _ := http.NewRequest("POST", "http://"+g.addr+"/grpc.testing.TestService/"+method, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/grpc")
		req.Header.Set("Te", "trailers")
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		return client.Do(req)
	}

	t.Run("passed before the head: gatehouse's DEADLINE_EXCEEDED", func(t *testing.T) {
		start := time.Now()
		resp, err := call("UnaryCall", unary, "grpc-timeout", "200m", "x-sleep", "3s")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("answered after %v; want about 200ms", took)
		}
		if resp.StatusCode != 200 || resp.Header.Get("Grpc-Status") != "4" || len(body) != 0 {
			t.Fatalf("status %d grpc-status %q body %q; want 200, 4 and no body", resp.StatusCode, resp.Header.Get("Grpc-Status"), body)
		}
		if msg := resp.Header.Get("Grpc-Message"); msg != "The upstream did not answer within the request's deadline of 200ms." {
			t.Errorf("grpc-message %q", msg)
		}
	})
	// A plain HTTP/2 upstream, which knows nothing of grpc-timeout: only
	// gatehouse can end this stream.
	slow := h2cUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		w.WriteHeader(200)
		w.Write(unary)
		http.NewResponseController(w).Flush()
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
			return
		}
		w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
	})
	g.route(slow, `,"protocol":"http2"`, "")
	for _, tc := range []struct {
		name, contentType string
		wantStatus        string // in the trailers; "" for a reset stream
	}{
		// As a gRPC server ends a call whose deadline passed: a reset
		// stream would read as INTERNAL.
		{"passed after the head: a gRPC client reads DEADLINE_EXCEEDED in the trailers", "application/grpc", "4"},
		{"passed after the head: any other client's stream is reset", "application/octet-stream", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			resp, err := call("StreamingOutputCall", stream, "grpc-timeout", "300m", "Content-Type", tc.contentType)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Grpc-Status") != "" {
				t.Fatalf("status %d grpc-status %q; want the upstream's head", resp.StatusCode, resp.Header.Get("Grpc-Status"))
			}
			_, err = io.ReadAll(resp.Body)
			switch {
			case tc.wantStatus == "" && err == nil:
				t.Fatalf("the stream ended cleanly (trailer %v); want it reset", resp.Trailer)
			case tc.wantStatus != "" && err != nil:
				t.Fatalf("the stream was reset (%v); want grpc-status %s in its trailers", err, tc.wantStatus)
			case resp.Trailer.Get("Grpc-Status") != tc.wantStatus:
				t.Fatalf("trailers %v; want grpc-status %q", resp.Trailer, tc.wantStatus)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("ended after %v; want about 300ms, not the upstream's 3s", took)
			}
		})
	}
}

// h2cUpstream serves h with HTTP/2 with prior knowledge; it returns its
// URL.
func h2cUpstream(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := &http.Server{Handler: h, Protocols: new(http.Protocols)}
	srv.Protocols.SetUnencryptedHTTP2(true)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String()
}

// TestGRPCFieldsReachAnHTTP2Upstream: TE: trailers and grpc-timeout
// travel on to an h2c upstream, and an invalid grpc-timeout bounds
// nothing (as Envoy ignores it), though it travels on too.
func TestGRPCFieldsReachAnHTTP2Upstream(t *testing.T) {
	seen := make(chan http.Header, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		time.Sleep(300 * time.Millisecond)
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Grpc-Status", "0")
	})
	g, _ := grpcGateway(t, nil)
	g.route(h2cUpstream(t, h), `,"protocol":"http2"`, "")
	client := h2cClient(t)
	for _, timeout := range []string{"5S", "1s", "123456789n", "100", "-1S", "1.5S"} {
		t.Run(timeout, func(t *testing.T) {
			req, _ := http.NewRequest("POST", "http://"+g.addr+"/svc/M", bytes.NewReader(make([]byte, 5)))
			req.Header.Set("Content-Type", "application/grpc")
			req.Header.Set("Te", "trailers")
			req.Header.Set("Grpc-Timeout", timeout)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := <-seen
			if got.Get("Te") != "trailers" || got.Get("Grpc-Timeout") != timeout {
				t.Errorf("upstream saw TE %q, grpc-timeout %q; want trailers and %s", got.Get("Te"), got.Get("Grpc-Timeout"), timeout)
			}
			if resp.Header.Get("Grpc-Status") != "0" {
				t.Errorf("got %v; want the upstream's trailers-only answer, grpc-status 0", resp.Header)
			}
		})
	}
}

// TestGRPCDeadlineJudgesNoUpstream: a client's own grpc-timeout passing,
// before the upstream's head or mid-stream, is no failure of the
// upstream's: a circuit breaker that opens on one failure stays closed.
func TestGRPCDeadlineJudgesNoUpstream(t *testing.T) {
	up := h2cUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		slow := func() {
			select {
			case <-time.After(3 * time.Second):
			case <-r.Context().Done():
			}
		}
		switch r.URL.Path {
		case "/slow/Head":
			slow()
		case "/slow/Body":
			w.WriteHeader(200)
			http.NewResponseController(w).Flush()
			slow()
		}
		w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
	})
	m := NewMetrics(prometheus.NewRegistry())
	g := newGatewayWithOptions(t, Options{Metrics: m}, func(o *serve.Options) { o.H2C = true })
	f := newPolicyFixture(t, up).policy(`{"name":"cb","type":"circuit-breaker","config":{"failures":1,"open_seconds":60}}`)
	f.rev.Services[0].Protocol = "http2"
	g.apply(f.rev)
	client := h2cClient(t)
	call := func(path string) (*http.Response, error) {
		req, _ := http.NewRequest("POST", "http://"+g.addr+path, bytes.NewReader(make([]byte, 5)))
		req.Header.Set("Content-Type", "application/grpc")
		req.Header.Set("Grpc-Timeout", "100m")
		resp, err := client.Do(req)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		return resp, err
	}
	if resp, err := call("/slow/Head"); err != nil || resp.Header.Get("Grpc-Status") != "4" {
		t.Fatalf("before the head: %v %v; want grpc-status 4", err, resp)
	}
	if resp, err := call("/slow/Body"); err != nil || resp.Trailer.Get("Grpc-Status") != "4" {
		t.Fatalf("mid-stream: %v %v; want grpc-status 4 in the trailers", err, resp)
	}
	resp, err := call("/fast/Call")
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Trailer.Get("Grpc-Status"); got != "0" {
		t.Errorf("after two client deadlines: grpc-status %q (header %q, %s); want 0: the circuit stays closed",
			got, resp.Header.Get("Grpc-Status"), resp.Header.Get("Grpc-Message"))
	}
	// Nor do the upstream's failure metrics count them: an alert on its
	// 504s would fire for clients' short deadlines.
	if n := testutil.CollectAndCount(m.failures); n != 0 {
		t.Errorf("%d upstream failure series after two client deadlines; want none", n)
	}
	if n := testutil.CollectAndCount(m.broken); n != 0 {
		t.Errorf("%d broken-response series after two client deadlines; want none", n)
	}
}
