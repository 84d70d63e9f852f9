package serve

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testenv"
)

// TestServersOwnProblemsReachGRPCClientsAsGRPCStatuses: the answers the
// server stack gives itself (a recovered panic, an invalid Host) go
// through the one problem writer, so a gRPC request gets them in gRPC's
// form: 200, trailers-only, grpc-status as the mapping says.
func TestServersOwnProblemsReachGRPCClientsAsGRPCStatuses(t *testing.T) {
	srv := New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("boom")
	}), Options{Engine: testenv.Engine(), Logger: slog.New(slog.DiscardHandler), NegotiateProblems: true, H2C: true})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Shutdown(context.Background())
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	for _, tc := range []struct {
		desc, host, wantStatus string
	}{
		{desc: "a panic, 500", host: "", wantStatus: "13"},
		{desc: "an invalid Host, 400", host: "bad_host", wantStatus: "13"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			req, _ := http.NewRequest("POST", "http://"+l.Addr().String()+"/svc/M", strings.NewReader("\x00\x00\x00\x00\x00"))
			req.Header.Set("Content-Type", "application/grpc")
			if tc.host != "" {
				req.Host = tc.host
			}
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/grpc" || len(body) != 0 {
				t.Fatalf("got %d %q %q; want 200 application/grpc, no body", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			if got := resp.Header.Get("Grpc-Status"); got != tc.wantStatus || resp.Header.Get("Grpc-Message") == "" || resp.Header.Get("X-Request-Id") == "" {
				t.Errorf("got grpc-status %q, grpc-message %q, X-Request-Id %q; want %s, a message and an id",
					got, resp.Header.Get("Grpc-Message"), resp.Header.Get("X-Request-Id"), tc.wantStatus)
			}
		})
	}
}
