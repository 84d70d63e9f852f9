package admin

import (
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/serve"
)

// These tests speak HTTP/1.1 byte by byte, for what only the wire shows:
// interim responses, stalls, and requests net/http itself refuses.

func TestExpectContinueWithBadCredentialsGets401AndNo100(t *testing.T) {
	api := newTestAPI(t)
	before := api.snapshot()
	c := api.dial()
	body := `{"name":"never-read"}`
	c.send("POST /admin/v1/consumers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n" +
		"Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n")
	r := c.readResponse("POST")
	if r.status != 401 {
		t.Fatalf("got %d before sending the body; want 401 and no 100 Continue", r.status)
	}
	assertProblem(t, r, 401)
	api.unchanged(before)
}

func TestExpectContinueRejectedByHeadersNeverReadsBody(t *testing.T) {
	api := newTestAPI(t)
	tests := []struct {
		desc, head string
		want       int
	}{
		{"unknown method", "BREW /admin/v1/consumers", 501},
		{"unknown path", "POST /admin/v1/nothing", 404},
		{"method not allowed", "PUT /admin/v1/consumers", 405},
		{"wrong media type", "POST /admin/v1/consumers", 415},
		{"declared too large", "POST /admin/v1/consumers", 413},
		{"missing id", "PUT /admin/v1/consumers/ghost", 404},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			ct, length := "application/json", 20
			switch tc.want {
			case 415:
				ct = "text/plain"
			case 413:
				length = 2 << 20
			}
			c := api.dial()
			c.send(fmt.Sprintf("%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n",
				tc.head, api.token, ct, length))
			r := c.readResponse("POST")
			if r.status != tc.want {
				t.Fatalf("got %d; want %d with no 100 Continue first", r.status, tc.want)
			}
		})
	}
}

func TestExpectContinueWithGoodCredentialsGets100Then201(t *testing.T) {
	api := newTestAPI(t)
	c := api.dial()
	body := `{"name":"continued"}`
	c.send("POST /admin/v1/consumers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + api.token +
		"\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n")
	if r := c.readResponse("POST"); r.status != 100 {
		t.Fatalf("got %d; want 100 Continue before the body is sent", r.status)
	}
	c.send(body)
	if r := c.readResponse("POST"); r.status != 201 {
		t.Fatalf("got %d after the body; want 201: %s", r.status, r.body)
	}
}

func TestStalledClientGets408(t *testing.T) {
	api := newTestAPI(t, withServeOptions(serve.Options{
		ReadHeaderTimeout: 200 * time.Millisecond,
		ReadTimeout:       400 * time.Millisecond,
		IdleTimeout:       300 * time.Millisecond,
	}))
	t.Run("half the headers", func(t *testing.T) {
		c := api.dial()
		c.send("GET /admin/v1/services HTTP/1.1\r\nHost: x\r\nAuthori")
		r := c.readResponse("GET")
		assertProblem(t, r, 408)
		if !r.close {
			t.Fatal("408 without Connection: close")
		}
	})
	t.Run("half the body", func(t *testing.T) {
		before := api.snapshot()
		c := api.dial()
		c.send("POST /admin/v1/consumers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + api.token +
			"\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"name\":")
		r := c.readResponse("POST")
		assertProblem(t, r, 408)
		if !r.close {
			t.Fatal("408 without Connection: close")
		}
		api.unchanged(before)
	})
	t.Run("idle keep-alive is closed without a response", func(t *testing.T) {
		c := api.dial()
		c.send("GET /admin/v1/services HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + api.token + "\r\n\r\n")
		if r := c.readResponse("GET"); r.status != 200 {
			t.Fatalf("got %d; want 200", r.status)
		}
		buf := make([]byte, 1)
		if n, err := c.R.Read(buf); n != 0 || err == nil {
			t.Fatalf("idle connection got %q, %v; want a close and no bytes", buf[:n], err)
		}
	})
}

func TestMalformedRequestGets400Problem(t *testing.T) {
	api := newTestAPI(t)
	for _, tc := range []struct{ desc, raw string }{
		{"header without colon", "GET /admin/v1/services HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"},
		{"no Host", "GET /admin/v1/services HTTP/1.1\r\n\r\n"},
		{"two lengths", "GET /admin/v1/services HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"},
		{"bad request line", "GET\r\nHost: x\r\n\r\n"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			c := api.dial()
			c.send(tc.raw)
			assertProblem(t, c.readResponse("GET"), 400)
		})
	}
}

func TestRequestsNetHTTPRefusesBeforeAnyHandlerGetProblems(t *testing.T) {
	api := newTestAPI(t)
	tests := []struct {
		desc, raw string
		want      int
	}{
		{"unknown expectation", "POST /admin/v1/consumers HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Length: 2\r\n\r\n{}", 417},
		{"HTTP/2 request line without TLS", "GET /admin/v1/services HTTP/2.0\r\nHost: x\r\n\r\n", 505},
		{"unknown transfer coding", "POST /admin/v1/consumers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			before := api.snapshot()
			c := api.dial()
			c.send(tc.raw)
			assertProblem(t, c.readResponse("POST"), tc.want)
			api.unchanged(before)
		})
	}
}

func TestHandlerErrorsAfterKeepAliveAreNotRewritten(t *testing.T) {
	// A 4xx a handler writes on a reused connection is the handler's own,
	// with its own headers, never mistaken for one of net/http's.
	api := newTestAPI(t)
	c := api.dial()
	for range 3 {
		c.send("GET /admin/v1/services/nope HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + api.token + "\r\n\r\n")
		r := c.readResponse("GET")
		p := assertProblem(t, r, 404)
		if p["instance"] != "/admin/v1/services/nope" || r.close {
			t.Fatalf("got instance %v close %v; want the handler's own 404 on a kept-alive connection", p["instance"], r.close)
		}
	}
}

func TestExpectContinueThenAnErrorDecidedFromTheBody(t *testing.T) {
	// After 100 Continue, an error found in the body is still the right
	// status with its problem, not something the server stack rewrote.
	api := newTestAPI(t)
	api.must(201, "POST", "/admin/v1/consumers", `{"id":"taken","name":"taken"}`)
	for _, tc := range []struct {
		desc, body string
		want       int
	}{
		{"existing id", `{"id":"taken","name":"other"}`, 409},
		{"bad field", `{"name":7}`, 400},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			before := api.snapshot()
			c := api.dial()
			c.send("POST /admin/v1/consumers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + api.token +
				"\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: " + fmt.Sprint(len(tc.body)) + "\r\n\r\n")
			if r := c.readResponse("POST"); r.status != 100 {
				t.Fatalf("got %d; want 100 first", r.status)
			}
			c.send(tc.body)
			assertProblem(t, c.readResponse("POST"), tc.want)
			api.unchanged(before)
			// The connection goes on serving requests.
			c.send("GET /admin/v1/consumers/taken HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + api.token + "\r\n\r\n")
			if r := c.readResponse("GET"); r.status != 200 {
				t.Fatalf("next request on the connection: got %d", r.status)
			}
		})
	}
}
