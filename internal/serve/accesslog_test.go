package serve

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testenv"
)

// recordHandler passes each access log record to a channel.
type recordHandler struct {
	slog.Handler
	records chan map[string]any
}

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "request" {
		return nil
	}
	m := map[string]any{}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.Any(); return true })
	h.records <- m
	return nil
}

// dialLogged serves h with the access log sampled at sample and returns a
// connection to it and the log's records; both end with the test.
func dialLogged(t *testing.T, h http.Handler, sample float64) (net.Conn, chan map[string]any) {
	t.Helper()
	records := make(chan map[string]any, 1)
	srv := New(h, Options{Engine: testenv.Engine(), Logger: slog.New(recordHandler{slog.DiscardHandler, records}), AccessLogSample: sample})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, records
}

// TestAccessLogRecordsAbortedRequestsAsTheyHappened: an exchange the
// handler aborted, or whose client went away mid-response, is logged with
// the status actually sent (0 for none) and aborted=true, even when
// sampling would skip it; a complete one carries no aborted attribute.
func TestAccessLogRecordsAbortedRequestsAsTheyHappened(t *testing.T) {
	for _, tc := range []struct {
		desc    string
		handler http.HandlerFunc
		hangUp  bool // the client closes after the response head
		status  int64
		aborted bool
	}{
		{desc: "complete", status: 204,
			handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }},
		{desc: "aborted before a response", status: 0, aborted: true,
			handler: func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) }},
		{desc: "aborted mid-body", status: 200, aborted: true,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "100")
				w.Write([]byte("partial"))
				http.NewResponseController(w).Flush()
				panic(http.ErrAbortHandler)
			}},
		{desc: "panic mid-body", status: 206, aborted: true,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(206)
				http.NewResponseController(w).Flush()
				panic("boom")
			}},
		{desc: "client gone mid-body", status: 200, aborted: true, hangUp: true,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				chunk := []byte(strings.Repeat("x", 32<<10))
				for {
					if _, err := w.Write(chunk); err != nil {
						return
					}
					if http.NewResponseController(w).Flush() != nil {
						return
					}
				}
			}},
	} {
		// Sampling that logs nothing but 5xx (-1) must still log aborted
		// exchanges.
		for _, sample := range []float64{1, -1} {
			t.Run(fmt.Sprintf("%s/sample %v", tc.desc, sample), func(t *testing.T) {
				c, records := dialLogged(t, tc.handler, sample)
				c.SetDeadline(time.Now().Add(10 * time.Second))
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
				if tc.hangUp {
					if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
						t.Fatal(err)
					}
					c.(*net.TCPConn).SetLinger(0) // a reset: the next writes fail
					c.Close()
				} else if tc.aborted {
					io.Copy(io.Discard, c) // until the connection is cut
				} else if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || int64(resp.StatusCode) != tc.status {
					t.Fatalf("got %v, %v; want %d", resp, err, tc.status)
				}
				if sample < 0 && !tc.aborted && tc.status < 500 {
					select {
					case rec := <-records:
						t.Fatalf("sampled-out complete request logged: %v", rec)
					default:
					}
					return
				}
				var rec map[string]any
				select {
				case rec = <-records:
				case <-time.After(10 * time.Second):
					t.Fatal("no access log record")
				}
				if rec["status"] != tc.status || (rec["aborted"] == true) != tc.aborted {
					t.Fatalf("logged status %v aborted %v; want %d aborted %v", rec["status"], rec["aborted"], tc.status, tc.aborted)
				}
			})
		}
	}
}

// TestAccessLogRecordsWhatAHijackingHandlerAnswered: a handler that takes
// the connection over answers on it, out of net/http's sight: the access
// log records the 101 of an upgrade and the 200 of a CONNECT, not the 200
// net/http would assume.
func TestAccessLogRecordsWhatAHijackingHandlerAnswered(t *testing.T) {
	for _, tc := range []struct {
		request, answer string
		status          int64
	}{
		{"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
			"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 101},
		{"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
			"HTTP/1.1 200 Connection established\r\n\r\n", 200},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			c, records := dialLogged(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, brw, err := http.NewResponseController(w).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				brw.WriteString(tc.answer)
				brw.Flush()
			}), 1)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, tc.request)
			io.Copy(io.Discard, c)
			select {
			case rec := <-records:
				if rec["status"] != tc.status || rec["aborted"] == true {
					t.Fatalf("logged status %v aborted %v; want %d, not aborted", rec["status"], rec["aborted"], tc.status)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no access log record")
			}
		})
	}
}

// unwrapping is a ResponseWriter of a middleware between the server's
// stack and the handler that annotates.
type unwrapping struct{ http.ResponseWriter }

func (u unwrapping) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// TestAccessLogNamesTheRouteAndServiceTheHandlerAnnotated: the data plane
// tells the log which route took a request and which service answered
// it, through any writer that unwraps to the server's; a request nobody
// annotated has neither attribute.
func TestAccessLogNamesTheRouteAndServiceTheHandlerAnnotated(t *testing.T) {
	for _, tc := range []struct {
		desc           string
		handler        http.HandlerFunc
		route, service any // nil: absent
	}{
		{"annotated", func(w http.ResponseWriter, r *http.Request) {
			Annotate(w, "r1", "canary")
			w.WriteHeader(204)
		}, "r1", "canary"},
		{"annotated through a wrapping writer", func(w http.ResponseWriter, r *http.Request) {
			Annotate(unwrapping{w}, "r1", "stable")
			w.WriteHeader(204)
		}, "r1", "stable"},
		{"a route and no service (refused before forwarding)", func(w http.ResponseWriter, r *http.Request) {
			Annotate(w, "r1", "")
			w.WriteHeader(403)
		}, "r1", nil},
		{"not annotated", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }, nil, nil},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			c, records := dialLogged(t, tc.handler, 1)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
				t.Fatal(err)
			}
			select {
			case rec := <-records:
				if rec["route"] != tc.route || rec["service"] != tc.service {
					t.Fatalf("logged route %v service %v; want %v %v", rec["route"], rec["service"], tc.route, tc.service)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no access log record")
			}
		})
	}
}
