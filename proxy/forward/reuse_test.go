package forward

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
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
			u, seen := answersOnlyTheFirstRequestPerConnection(t)
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

// answersOnlyTheFirstRequestPerConnection is an upstream that answers the
// first request on every connection and drops the connection after
// reading the second; seen counts the requests for /target it got.
func answersOnlyTheFirstRequestPerConnection(t *testing.T) (u string, seen func() int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	n := 0
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for i := range 2 {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					if req.URL.Path == "/target" {
						mu.Lock()
						n++
						mu.Unlock()
					}
					if i == 0 {
						io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return "http://" + ln.Addr().String(), func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}
