package admin

import (
	"io"
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// TestAmbiguousRequestFramingIsRefusedAndEndsTheConnection: the admin
// listener refuses a request framed both by Content-Length and
// Transfer-Encoding, or an HTTP/1.0 request with Transfer-Encoding, with
// the 400 problem, and reads no request pipelined behind it.
func TestAmbiguousRequestFramingIsRefusedAndEndsTheConnection(t *testing.T) {
	for _, tc := range []struct{ desc, head, body string }{
		{"content-length and chunked",
			"POST /admin/v1/consumers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"},
		{"HTTP/1.0 with chunked",
			"POST /admin/v1/consumers HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n", ""},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			api := newTestAPI(t)
			before := api.snapshot()
			c := api.dial()
			auth := "Authorization: Bearer " + api.token + "\r\n"
			c.send(tc.head + auth + "\r\n" + tc.body +
				"GET /admin/v1/consumers HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n")
			r := c.readResponse("POST")
			assertProblem(t, r, http.StatusBadRequest)
			if !r.close {
				t.Fatal("refusal without Connection: close")
			}
			if rest, _ := io.ReadAll(c.R); len(rest) != 0 {
				t.Fatalf("after the 400, the connection carried %q; want EOF", rest)
			}
			api.unchanged(before)
		})
	}
}

// TestInvalidHostIs400: the admin listener answers a Host that names no
// host with the 400 problem, before authentication or routing.
func TestInvalidHostIs400(t *testing.T) {
	api := newTestAPI(t)
	for _, host := range []string{"admin.example.com:80:80", "a..example.com", "a.example.com:0"} {
		c := api.dial()
		c.send("GET /admin/v1/consumers HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: Bearer " + api.token + "\r\n\r\n")
		assertProblem(t, c.readResponse("GET"), http.StatusBadRequest)
	}
}

// TestOptionsAsteriskIsAnsweredByGatehouse: "OPTIONS *" on the admin
// listener gets gatehouse's answer, with a request id, not net/http's.
func TestOptionsAsteriskIsAnsweredByGatehouse(t *testing.T) {
	api := newTestAPI(t)
	c := api.dial()
	c.send("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
	r := c.readResponse("OPTIONS")
	if r.status != http.StatusOK || r.header.Get("Allow") != gatehouse.ImplementedMethods || len(r.header.Get("X-Request-Id")) != 32 {
		t.Fatalf("got %d Allow %q X-Request-Id %q; want 200, Allow %q and a request id",
			r.status, r.header.Get("Allow"), r.header.Get("X-Request-Id"), gatehouse.ImplementedMethods)
	}
}
