package forward

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRequestsMetByAConnectionClosedAfterTheyArrivedAreReplayedOnlyIfIdempotent:
// a kept-alive connection passes the check at reuse, the request is
// written, and the upstream closes it without answering. The upstream may
// have acted on the request: a GET is resent on a fresh connection (by
// net/http's rule), a POST never is.
func TestRequestsMetByAConnectionClosedAfterTheyArrivedAreReplayedOnlyIfIdempotent(t *testing.T) {
	for _, tc := range []struct {
		method     string
		wantOK     bool
		wantCopies int // how many times the upstream saw the request
	}{
		{"GET", true, 2},
		{"HEAD", true, 2},
		{"POST", false, 1},
		{"PATCH", false, 1},
	} {
		t.Run(tc.method, func(t *testing.T) {
			// The first request on every connection is answered; the
			// second is read, then the connection dropped.
			var conns, second atomic.Int64
			raw := rawUpstream(t, func(c net.Conn) {
				conns.Add(1)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
					second.Add(1)
				}
			})
			u := raw.String()
			// The primed connection got the request second; every later
			// connection got it first: a replay.
			seen := func() int { return int(second.Load() + conns.Load() - 1) }
			tr := newH1(t, u, 5*time.Second)
			resp, err := tr.RoundTrip(newReq(t, context.Background(), "GET", u+"/prime", nil))
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)
			if n := tr.idleLen(); n != 1 {
				t.Fatalf("got %d idle connections; want the primed one", n)
			}

			var body io.Reader
			if tc.method != "GET" && tc.method != "HEAD" {
				body = strings.NewReader("once") // GetBody set: replayable as far as the body goes
			}
			resp, err = tr.RoundTrip(newReq(t, context.Background(), tc.method, u+"/target", body))
			if err == nil {
				readAll(t, resp)
			}
			if ok := err == nil; ok != tc.wantOK {
				t.Errorf("%s: got error %v; want success %v", tc.method, err, tc.wantOK)
			}
			if n := seen(); n != tc.wantCopies {
				t.Errorf("%s: the upstream got it %d times; want %d", tc.method, n, tc.wantCopies)
			}
		})
	}
}
