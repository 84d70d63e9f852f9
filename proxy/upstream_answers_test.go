package proxy

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testupstream"
)

func TestUpstreamStatusOutsideHTTPsRangeIs502(t *testing.T) {
	for _, status := range []string{"999", "600", "099", "000"} {
		t.Run(status, func(t *testing.T) {
			up := testupstream.Canned(t, []byte("HTTP/1.1 "+status+" Odd\r\nContent-Length: 2\r\n\r\nok"))
			g := newGateway(t)
			g.route(up, `,"retries":0`, "")
			assertProblem(t, g.get("/"), 502)
		})
	}
}

func TestHeadersTheUpstreamsConnectionNamesNeverReachTheClient(t *testing.T) {
	const early = "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
	pad := "X-Pad: " + strings.Repeat("p", 8<<10) + "\r\n" // a head longer than one read
	for _, tc := range []struct{ before, connection string }{
		{"", "Connection: close, X-Secret"},
		{"", "Connection: X-Secret, close"},
		{"", "Connection: CLOSE,x-secret"},
		{"", "Connection: close\r\nConnection: X-Secret"},
		{"", "Connection: keep-alive, X-Secret"},
		{"", "Connection: X-Secret"},
		{early, "Connection: close, X-Secret"},
		{early, pad + "Connection: close, X-Secret\r\n" + pad + "X-Other: 1"},
	} {
		t.Run(tc.connection[:min(len(tc.connection), 40)], func(t *testing.T) {
			up := testupstream.Canned(t, []byte(tc.before+"HTTP/1.1 200 OK\r\n"+tc.connection+
				"\r\nX-Secret: hop\r\nX-Public: end-to-end\r\nContent-Length: 2\r\n\r\nok"))
			g := newGateway(t)
			g.route(up, "", "")
			r := g.get("/")
			if r.status != 200 || string(r.body) != "ok" {
				t.Fatalf("got %d %q; want the upstream's 200", r.status, r.body)
			}
			if v := r.header.Get("X-Secret"); v != "" {
				t.Errorf("X-Secret, named by the upstream's Connection, reached the client: %q", v)
			}
			if v := r.header.Get("X-Public"); v != "end-to-end" {
				t.Errorf("got X-Public %q; want the end-to-end field relayed", v)
			}
		})
	}
}

// TestFailingRequestsDoNotTakeTheServiceOffline: anonymous requests that
// make the only target answer garbage fail themselves (502), but do not
// eject the target: every other request still gets its answer.
func TestFailingRequestsDoNotTakeTheServiceOffline(t *testing.T) {
	up := testupstream.Start(t)
	g := newGateway(t)
	g.route(up.URL, `,"retries":0`, "")
	for range 10 {
		assertProblem(t, g.get("/fault/garbage"), 502)
	}
	if r := g.get("/echo"); r.status != 200 {
		t.Fatalf("after failing requests: got %d %s; want the upstream's 200, not the service taken offline", r.status, r.body)
	}
}
