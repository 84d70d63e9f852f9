package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/serve"
	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// TestASlowLorisClientGets408AtTheReadHeaderTimeout: a client that keeps
// its request head coming a byte at a time, each in good time, is still
// bound by the read-header timeout for the whole head: it gets the 408
// problem when that runs out, long before its head would end, and nothing
// reaches the upstream; on a fresh connection, and on a kept-alive one
// after a first request.
func TestASlowLorisClientGets408AtTheReadHeaderTimeout(t *testing.T) {
	const timeout, every = 400 * time.Millisecond, 40 * time.Millisecond
	up := testupstream.Start(t)
	g := newGateway(t, func(o *serve.Options) { o.ReadHeaderTimeout = timeout })
	g.route(up.URL, "", "")
	// 200 bytes at one per 40 ms would take 8 s.
	head := "GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 160) + "\r\n\r\n"
	for _, tc := range []struct{ desc, before string }{
		{"a fresh connection", ""},
		{"a kept-alive connection", "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			up.Reset()
			c, err := net.Dial("tcp", g.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)
			if tc.before != "" {
				io.WriteString(c, tc.before)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("first request: got %d; want 200", resp.StatusCode)
				}
				up.Reset()
			}
			start := time.Now()
			done := make(chan struct{})
			defer close(done)
			go func() {
				for i := 0; i < len(head); i++ {
					if _, err := c.Write([]byte{head[i]}); err != nil {
						return
					}
					select {
					case <-done:
						return
					case <-time.After(every):
					}
				}
			}()
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("after %v: %v; want the 408", time.Since(start), err)
			}
			elapsed := time.Since(start)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assertProblem(t, &response{status: resp.StatusCode, header: resp.Header, body: b, close: resp.Close}, http.StatusRequestTimeout)
			// The timer may start at the accept (the fast engine, on a
			// fresh connection: a little before start), at the first
			// byte, or a few bytes in (net/http waits for 4 on a
			// kept-alive connection); it must not start over at each byte.
			if elapsed < timeout-every || elapsed > timeout+10*every+500*time.Millisecond {
				t.Fatalf("the 408 came %v after the first byte; want about %v", elapsed, timeout)
			}
			if !resp.Close {
				t.Fatal("408 without Connection: close")
			}
			if n := up.Requests(); n != 0 {
				t.Fatalf("upstream got %d requests; want none", n)
			}
		})
	}
}
