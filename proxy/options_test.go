package proxy

import (
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// TestOptionsAsteriskIsAnsweredByGatehouse: "OPTIONS *" asks about the
// server itself. Gatehouse answers it, with the methods it serves and a
// request id, and never sends it upstream, even behind a catch-all route.
func TestOptionsAsteriskIsAnsweredByGatehouse(t *testing.T) {
	up := testupstream.Start(t)
	g := newGateway(t)
	g.route(up.URL, "", "")
	c := g.dial()
	c.send("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
	r := c.read("OPTIONS")
	if r.status != http.StatusOK || r.header.Get("Allow") != gatehouse.ImplementedMethods ||
		len(r.header.Get("X-Request-Id")) != 32 || len(r.body) != 0 {
		t.Fatalf("got %d Allow %q X-Request-Id %q body %q; want 200, Allow %q, a request id, no body",
			r.status, r.header.Get("Allow"), r.header.Get("X-Request-Id"), r.body, gatehouse.ImplementedMethods)
	}
	if n := up.Requests(); n != 0 {
		t.Fatalf("upstream got %d requests; want none", n)
	}
}
