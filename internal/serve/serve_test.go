package serve

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testenv"
)

func start(t *testing.T, h http.Handler) (*Server, string) {
	t.Helper()
	srv := New(h, Options{Engine: testenv.Engine(), Logger: slog.New(slog.DiscardHandler)})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv, "http://" + l.Addr().String()
}

func TestRequestIDIsPropagatedOrGenerated(t *testing.T) {
	_, base := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	tests := []struct {
		desc, sent string
		kept       bool
	}{
		{"printable id is kept", "abc-123", true},
		{"absent id is generated", "", false},
		{"id with spaces is replaced", "a b", false},
		{"overlong id is replaced", strings.Repeat("x", 129), false},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			req, _ := http.NewRequest("GET", base, nil)
			if tc.sent != "" {
				req.Header.Set("X-Request-Id", tc.sent)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := resp.Header.Get("X-Request-Id")
			if tc.kept && got != tc.sent {
				t.Fatalf("got X-Request-Id %q; want %q", got, tc.sent)
			}
			if !tc.kept && (len(got) != 32 || got == tc.sent) {
				t.Fatalf("got X-Request-Id %q; want a generated 32-hex id", got)
			}
		})
	}
}

func TestPanicBeforeResponseIs500AndConnectionStaysUsable(t *testing.T) {
	_, base := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("boom")
		}
	}))
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for _, path := range []string{"/panic", "/ok"} {
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		want := map[string]int{"/panic": 500, "/ok": 200}[path]
		if resp.StatusCode != want {
			t.Fatalf("%s: got %d; want %d", path, resp.StatusCode, want)
		}
		if path == "/panic" && (resp.Header.Get("Content-Type") != "application/problem+json" || strings.Contains(string(body), "boom")) {
			t.Fatalf("panic response: %s %s", resp.Header.Get("Content-Type"), body)
		}
	}
}

func TestPanicAfterResponseStartedAbortsConnection(t *testing.T) {
	_, base := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		w.Write([]byte("partial"))
		http.NewResponseController(w).Flush()
		panic("mid-stream")
	}))
	resp, err := http.Get(base)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err == nil {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("got a complete body (%d %q); want the connection cut short", resp.StatusCode, b)
	}
}

// countingHandler counts the access log records it receives.
type countingHandler struct {
	slog.Handler
	n *atomic.Int64
}

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "request" {
		h.n.Add(1)
	}
	return nil
}

func TestAccessLogSampling(t *testing.T) {
	for _, tc := range []struct {
		desc         string
		sample       float64
		status, want int
	}{
		{"all by default", 0, 200, 10},
		{"one in two", 0.5, 200, 5},
		{"none but errors", -1, 200, 0},
		{"errors always", -1, 503, 10},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var n atomic.Int64
			logger := slog.New(countingHandler{slog.NewTextHandler(io.Discard, nil), &n})
			srv := New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(tc.status) }),
				Options{Engine: testenv.Engine(), Logger: logger, AccessLogSample: tc.sample})
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go srv.Serve(l)
			defer srv.Shutdown(context.Background())
			for range 10 {
				resp, err := http.Get("http://" + l.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			}
			if got := n.Load(); got != int64(tc.want) {
				t.Fatalf("got %d access log lines for 10 requests; want %d", got, tc.want)
			}
		})
	}
}

func TestPanicProblemIsNegotiatedAndCarriesNoHeadersOfTheAbandonedAnswer(t *testing.T) {
	srv := New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET")
		w.Header().Set("ETag", `"7"`)
		panic("boom")
	}), Options{Engine: testenv.Engine(), Logger: slog.New(slog.DiscardHandler), NegotiateProblems: true})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Shutdown(context.Background())
	req, _ := http.NewRequest("GET", "http://"+l.Addr().String(), nil)
	req.Header.Set("Accept", "application/xml")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 || resp.Header.Get("Content-Type") != "application/problem+xml" {
		t.Fatalf("got %d %q; want 500 application/problem+xml", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp.Header.Get("Allow") != "" || resp.Header.Get("ETag") != "" || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("500 headers: %v", resp.Header)
	}
}

// TestBodyStalledAfterTheResponseGetsNoSecondAnswer: a handler answers
// without reading the body; net/http then discards the rest of it, and a
// client that stalls there must not get a 408 after the complete 200.
func TestBodyStalledAfterTheResponseGetsNoSecondAnswer(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	srv := New(h, Options{Engine: testenv.Engine(), Logger: slog.New(slog.DiscardHandler), ReadTimeout: 300 * time.Millisecond})
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
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly ten b")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: "POST"})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("response %v, %v; want 200", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	rest, _ := io.ReadAll(br) // until net/http closes the connection
	if len(rest) != 0 {
		t.Fatalf("after the 200, the connection carried %q; want nothing", rest)
	}
}

// TestGeneratedRequestIDsOutliveTheirRequests: a generated id that
// something kept (a log line, an audit sample) stays its request's after
// later requests, in the request's header and the response's alike: the
// id and its header value are never reused.
func TestGeneratedRequestIDsOutliveTheirRequests(t *testing.T) {
	var kept []string
	var keptValues [][]string
	_, base := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kept = append(kept, r.Header.Get("X-Request-Id"))
		keptValues = append(keptValues, w.Header()["X-Request-Id"])
	}))
	const n = 50
	var got []string
	for range n {
		resp, err := http.Get(base)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got = append(got, resp.Header.Get("X-Request-Id"))
	}
	seen := map[string]bool{}
	for i := range n {
		if kept[i] != got[i] || len(keptValues[i]) != 1 || keptValues[i][0] != got[i] {
			t.Fatalf("request %d: kept id %q, kept header value %q; want the id sent, %q", i, kept[i], keptValues[i], got[i])
		}
		if seen[got[i]] {
			t.Fatalf("request %d: id %q was given before", i, got[i])
		}
		seen[got[i]] = true
	}
}

// TestNewRequestIDsIsOneAllocation: the id and the header value holding
// it come in one allocation, and an append to that value copies it
// rather than writing past the id.
func TestNewRequestIDsIsOneAllocation(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { newRequestIDs() }); n != 1 {
		t.Errorf("got %v allocations per id; want 1", n)
	}
	ids := newRequestIDs()
	id := strings.Clone(ids[0])
	more := append(ids, "x")
	more[0] = "changed"
	if len(ids) != 1 || ids[0] != id || len(id) != 32 {
		t.Errorf("after an append: got %q; want [%q], a 32-hex id", ids, id)
	}
}
