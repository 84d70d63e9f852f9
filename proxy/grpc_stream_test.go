package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/gatehouse/gatehouse/internal/serve"
	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// streamReadTimeout is the gateway's --read-timeout in the stream tests:
// the streams below talk every streamGap (a fifth of it, so that a busy
// machine's delays do not make a gap look like silence) and live for
// streamLife, five timeouts.
const (
	streamReadTimeout = 500 * time.Millisecond
	streamGap         = 100 * time.Millisecond
	streamLife        = 5 * streamReadTimeout
)

// shortReadTimeoutGRPCGateway is an h2c gateway with a read timeout of
// streamReadTimeout in front of testService, and a gRPC client of it.
func shortReadTimeoutGRPCGateway(t *testing.T) testgrpc.TestServiceClient {
	t.Helper()
	up := grpcUpstream(t, nil)
	g := newGateway(t, func(o *serve.Options) { o.H2C, o.ReadTimeout = true, streamReadTimeout })
	g.route(up, http2Service(t, up, nil), "")
	cc, err := grpc.NewClient("passthrough:///"+g.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return testgrpc.NewTestServiceClient(cc)
}

func payload(s string) *testgrpc.Payload { return &testgrpc.Payload{Body: []byte(s)} }

// TestReadTimeoutIsTheLongestSilenceOfAGRPCStream: --read-timeout bounds
// the time between a gRPC client's messages, not its whole stream. A
// client or bidi stream talking more often than that lives for several
// timeouts and ends OK; one silent for longer, after the upstream's head
// or before it, ends with the status gatehouse answers any stalled body
// with (408's: UNKNOWN), its message saying so.
func TestReadTimeoutIsTheLongestSilenceOfAGRPCStream(t *testing.T) {
	client := shortReadTimeoutGRPCGateway(t)
	silent := func(t *testing.T, err error) {
		t.Helper()
		st := status.Convert(err)
		if st.Code() != codes.Unknown || !strings.Contains(st.Message(), "not received in time") {
			t.Fatalf("silent stream ended with %v %q; want Unknown, the body not received in time", st.Code(), st.Message())
		}
	}
	tests := []struct {
		desc string
		run  func(t *testing.T)
	}{
		{"bidi stream, a message every gap, lives several timeouts and ends OK", func(t *testing.T) {
			stream, err := client.FullDuplexCall(callCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			for end := time.Now().Add(streamLife); time.Now().Before(end); time.Sleep(streamGap) {
				if err := stream.Send(&testgrpc.StreamingOutputCallRequest{Payload: payload("ping")}); err != nil {
					t.Fatalf("send: %v", err)
				}
				resp, err := stream.Recv()
				if err != nil {
					t.Fatalf("receive: %v", err)
				}
				if got := string(resp.Payload.GetBody()); got != "ping" {
					t.Fatalf("echo %q; want ping", got)
				}
			}
			stream.CloseSend()
			if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
				t.Fatalf("end of stream: %v; want OK (io.EOF)", err)
			}
		}},
		{"client stream, a message every gap, lives several timeouts and ends OK", func(t *testing.T) {
			stream, err := client.StreamingInputCall(callCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			sent := 0
			for end := time.Now().Add(streamLife); time.Now().Before(end); time.Sleep(streamGap) {
				if err := stream.Send(&testgrpc.StreamingInputCallRequest{Payload: payload("abc")}); err != nil {
					t.Fatalf("send: %v", err)
				}
				sent += 3
			}
			resp, err := stream.CloseAndRecv()
			if err != nil {
				t.Fatalf("close: %v; want OK", err)
			}
			if int(resp.AggregatedPayloadSize) != sent {
				t.Fatalf("upstream received %d bytes; want %d", resp.AggregatedPayloadSize, sent)
			}
		}},
		{"bidi stream silent past the timeout after the upstream's head", func(t *testing.T) {
			stream, err := client.FullDuplexCall(callCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.Send(&testgrpc.StreamingOutputCallRequest{Payload: payload("ping")}); err != nil {
				t.Fatal(err)
			}
			if _, err := stream.Recv(); err != nil {
				t.Fatalf("first echo: %v", err)
			}
			_, err = stream.Recv() // and say nothing more
			silent(t, err)
		}},
		{"client stream silent past the timeout before the upstream's head", func(t *testing.T) {
			stream, err := client.StreamingInputCall(callCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.Send(&testgrpc.StreamingInputCallRequest{Payload: payload("abc")}); err != nil {
				t.Fatal(err)
			}
			// Waiting for the answer without closing the stream.
			silent(t, stream.RecvMsg(new(testgrpc.StreamingInputCallResponse)))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, tc.run)
	}
}

// TestReadTimeoutStillBoundsAWholeHTTP2RequestThatIsNotGRPC: a request
// that is not gRPC keeps --read-timeout as the bound on its whole body,
// however often its client sends: 408.
func TestReadTimeoutStillBoundsAWholeHTTP2RequestThatIsNotGRPC(t *testing.T) {
	up := testupstream.Start(t)
	g := newGateway(t, func(o *serve.Options) { o.H2C, o.ReadTimeout = true, streamReadTimeout })
	g.route(up.URL, "", "")
	pr, pw := io.Pipe()
	go func() {
		for end := time.Now().Add(streamLife); time.Now().Before(end); time.Sleep(streamGap) {
			if _, err := pw.Write([]byte("chunk\n")); err != nil {
				return
			}
		}
		pw.Close()
	}()
	defer pr.Close()
	req, err := http.NewRequest(http.MethodPost, g.base+"/upload", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain")
	resp, err := h2cClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("status %d; want 408", resp.StatusCode)
	}
}

// earlyEnd's bidi call ends, OK, after its first message, whatever the
// client still sends.
type earlyEnd struct{ testService }

func (earlyEnd) FullDuplexCall(stream grpc.BidiStreamingServer[testgrpc.StreamingOutputCallRequest, testgrpc.StreamingOutputCallResponse]) error {
	_, err := stream.Recv()
	return err
}

// TestGRPCStreamItsUpstreamEndsWhileItsClientStillSendsEndsOK: the
// transport may still read a client's stream after the exchange is over;
// extending its read deadline then must not touch the finished response
// (net/http's HTTP/2 writer panics, and the process with it). Many calls,
// each with a client sending as fast as it can, all end with the
// upstream's OK.
func TestGRPCStreamItsUpstreamEndsWhileItsClientStillSendsEndsOK(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(s, earlyEnd{})
	go s.Serve(l)
	t.Cleanup(s.Stop)
	g := newGateway(t, func(o *serve.Options) { o.H2C, o.ReadTimeout = true, streamReadTimeout })
	g.route("http://"+l.Addr().String(), `,"protocol":"http2"`, "")
	cc, err := grpc.NewClient("passthrough:///"+g.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	client := testgrpc.NewTestServiceClient(cc)
	msg := &testgrpc.StreamingOutputCallRequest{Payload: &testgrpc.Payload{Body: make([]byte, 100)}}
	for i := range 100 {
		stream, err := client.FullDuplexCall(callCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		sending := make(chan struct{})
		go func() {
			defer close(sending)
			for stream.Send(msg) == nil {
			}
		}()
		if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
			t.Fatalf("call %d ended %v; want OK (io.EOF)", i, err)
		}
		<-sending
	}
}
