package serve

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
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

// TestAccessLogOfAKeptAliveConnectionsRequestsIsEachOnesOwn: requests
// one after another on one connection (whose recorder the fast engine
// reuses) are each logged with their own status, id, route and service:
// nothing of an earlier request's record carries over.
func TestAccessLogOfAKeptAliveConnectionsRequestsIsEachOnesOwn(t *testing.T) {
	c, records := dialLogged(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/annotated-503":
			Annotate(w, "r1", "s1")
			w.WriteHeader(503)
		case "/route-only":
			Annotate(w, "r2", "")
			w.Write([]byte("ok"))
		case "/hijacked":
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n")
			brw.Flush()
		}
	}), 1)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	ids := map[string]bool{}
	for _, tc := range []struct {
		path           string
		status         int64
		route, service any // nil: absent
	}{
		{"/annotated-503", 503, "r1", "s1"},
		{"/plain", 200, nil, nil},
		{"/route-only", 200, "r2", nil},
		{"/plain", 200, nil, nil},
		{"/annotated-503", 503, "r1", "s1"},
		{"/hijacked", 101, nil, nil},
	} {
		io.WriteString(c, "GET "+tc.path+" HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		io.Copy(io.Discard, resp.Body)
		var rec map[string]any
		select {
		case rec = <-records:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no access log record", tc.path)
		}
		id, _ := rec["request_id"].(string)
		if rec["status"] != tc.status || rec["route"] != tc.route || rec["service"] != tc.service ||
			rec["path"] != tc.path || rec["aborted"] != nil || ids[id] {
			t.Fatalf("%s: logged %v; want status %d route %v service %v, not aborted, an id not logged before",
				tc.path, rec, tc.status, tc.route, tc.service)
		}
		if sent := resp.Header.Get("X-Request-Id"); tc.status != 101 && sent != id {
			t.Fatalf("%s: logged request_id %q; the response has %q", tc.path, id, sent)
		}
		ids[id] = true
	}
}

// TestNestedServerChainsEachLogTheirRequest: a server's handler chain
// inside another's, on one request, each keep their own record (the
// inner does not take the recorder the outer holds).
func TestNestedServerChainsEachLogTheirRequest(t *testing.T) {
	records := make(chan map[string]any, 2)
	logger := slog.New(recordHandler{slog.DiscardHandler, records})
	inner := New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Annotate(w, "r1", "s1")
		w.WriteHeader(418)
	}), Options{Engine: testenv.Engine(), Logger: logger, Name: "inner"})
	outer := New(inner.http.Handler, Options{Engine: testenv.Engine(), Logger: logger, Name: "outer"})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go outer.Serve(l)
	t.Cleanup(func() { outer.Shutdown(context.Background()) })
	resp, err := http.Get("http://" + l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 418 {
		t.Fatalf("got status %d; want 418", resp.StatusCode)
	}
	want := map[any]any{"inner": "r1", "outer": nil} // Annotate tells the innermost
	for range 2 {
		var rec map[string]any
		select {
		case rec = <-records:
		case <-time.After(10 * time.Second):
			t.Fatal("no access log record")
		}
		route, ok := want[rec["listener"]]
		if !ok || rec["status"] != int64(418) || rec["route"] != route {
			t.Fatalf("logged %v; want listener inner or outer once each, status 418, route %v", rec, route)
		}
		delete(want, rec["listener"])
	}
}

// discardWriter is a ResponseWriter that keeps nothing but its header.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// TestWrapAllocatesOnlyWhatItMust: with the connection's recorder (the
// fast engine's) and an id the client sent, wrap allocates nothing; a
// recorder of its own costs one allocation, an id it makes another.
func TestWrapAllocatesOnlyWhatItMust(t *testing.T) {
	srv := New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }),
		Options{Engine: EngineFast, Logger: slog.New(slog.DiscardHandler)})
	for _, tc := range []struct {
		desc        string
		connRec, id bool
		allocs      float64
	}{
		{"connection's recorder, client's id", true, true, 0},
		{"connection's recorder, new id", true, false, 1},
		{"own recorder, client's id", false, true, 1},
		{"own recorder, new id", false, false, 2},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tc.connRec {
				r = r.WithContext(context.WithValue(r.Context(), recorderKey{}, new(connRecorder)))
			}
			w := &discardWriter{h: http.Header{}}
			clientID := []string{"client-id"}
			got := testing.AllocsPerRun(100, func() {
				if tc.id {
					r.Header["X-Request-Id"] = clientID
				} else {
					delete(r.Header, "X-Request-Id")
				}
				srv.http.Handler.ServeHTTP(w, r)
			})
			if got != tc.allocs {
				t.Errorf("got %v allocations per request; want %v", got, tc.allocs)
			}
		})
	}
}
