package proxy

import (
	"io"
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// TestAmbiguousRequestFramingIsRefusedAndEndsTheConnection: on the data
// plane, a request framed both by Content-Length and Transfer-Encoding, or
// an HTTP/1.0 request with Transfer-Encoding, is a 400 problem, nothing
// reaches the upstream, and no request pipelined behind it is read.
func TestAmbiguousRequestFramingIsRefusedAndEndsTheConnection(t *testing.T) {
	smuggled := "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, tc := range []struct{ desc, bad string }{
		{"content-length and chunked",
			"POST /bad HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"HTTP/1.0 with chunked",
			"POST /bad HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			up := testupstream.Start(t)
			g := newGateway(t)
			g.route(up.URL, "", "")
			c := g.dial()
			c.send("GET /first HTTP/1.1\r\nHost: x\r\n\r\n" + tc.bad + smuggled)
			if r := c.read("GET"); r.status != http.StatusOK {
				t.Fatalf("request before the refused one: got %d; want 200", r.status)
			}
			r := c.read("POST")
			assertProblem(t, r, http.StatusBadRequest)
			if !r.close {
				t.Fatal("refusal without Connection: close")
			}
			if rest, _ := io.ReadAll(c.R); len(rest) != 0 {
				t.Fatalf("after the 400, the connection carried %q; want EOF", rest)
			}
			if n := up.Requests(); n != 1 {
				t.Fatalf("upstream got %d requests; want only the first", n)
			}
		})
	}
}
