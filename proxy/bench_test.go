package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/serve"
	"github.com/gatehouse/gatehouse/internal/testupstream"
	"github.com/gatehouse/gatehouse/internal/wiretest"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkProxy measures one proxied GET of 1 KiB through the whole data
// plane (server stack, decision, upstream pool, streaming) over loopback,
// keep-alive on both sides. Its allocs/op include the client's and the
// upstream's, which run in the same process.
//
//	go test -run '^$' -bench Proxy -benchmem ./proxy/
func BenchmarkProxy(b *testing.B) {
	up := testupstream.Start(b, testupstream.WithNoRecord())
	g := newGateway(b)
	g.route(up.URL, "", "")
	req, _ := http.NewRequest("GET", g.base+"/bytes/1024", nil)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := g.client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// discardWriter is a ResponseWriter that keeps nothing but its header map.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }

// BenchmarkServeHTTP is the data plane's handler alone, per proxied GET:
// decision, outbound request, upstream exchange, response copy. The
// server side of net/http is not in it; the upstream allocates nothing.
// Its allocs/op are the data plane's per-request allocations.
//
//	go test -run '^$' -bench ServeHTTP -benchmem ./proxy/
func BenchmarkServeHTTP(b *testing.B) {
	g := &gateway{t: b, handler: New(Options{})}
	b.Cleanup(g.handler.Close)
	g.route(testupstream.Canned(b, okKiB), "", "")
	benchServeHTTP(b, g.handler, nil)
}

// okKiB is the response of the ServeHTTP benchmarks' upstream: a 200 of
// 1 KiB.
var okKiB = []byte("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1024\r\n\r\n" + strings.Repeat("x", 1024))

// benchServeHTTP is the loop of the ServeHTTP benchmarks: h alone, on a
// GET of /bytes/1024 that set (if not nil) prepares before each call,
// into a writer that keeps nothing; anything but a 200 fails.
func benchServeHTTP(b *testing.B, h http.Handler, set func(*http.Request)) {
	req := httptest.NewRequest("GET", "http://gw.example.com/bytes/1024", nil)
	req.Header.Set("X-Request-Id", "bench")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		if set != nil {
			set(req)
		}
		h.ServeHTTP(w, req)
		if w.status != 200 {
			b.Fatalf("status %d", w.status)
		}
	}
}

// BenchmarkServeHTTPWithMetrics is BenchmarkServeHTTP recording into
// Prometheus collectors and the live figures, as gatehouse serve does.
func BenchmarkServeHTTPWithMetrics(b *testing.B) {
	g := &gateway{t: b, handler: New(Options{Metrics: NewMetrics(prometheus.NewRegistry())})}
	b.Cleanup(g.handler.Close)
	g.route(testupstream.Canned(b, okKiB), "", "")
	benchServeHTTP(b, g.handler, nil)
}

// BenchmarkFastEnginePlainPath is issue 14's plain path: a GET of 1 KiB
// through the fast engine (internal/h1, built by serve as gatehouse serve
// builds it, its handler chain included) and the proxy with its metrics,
// logging at warn as bench/run.sh runs it, on one kept-alive client
// connection, to an upstream that answers with canned bytes. The client
// writes the same request bytes and reads the response through a fixed
// buffer, and the upstream allocates nothing, so allocs/op are the
// gateway's alone (issue 14's target: at most 2).
//
//	go test -run '^$' -bench FastEnginePlainPath -benchmem -benchtime 2000x ./proxy/
func BenchmarkFastEnginePlainPath(b *testing.B) {
	h := New(Options{Metrics: NewMetrics(prometheus.NewRegistry())})
	b.Cleanup(h.Close)
	warn := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	_, addr := wiretest.Serve(b, h, serve.Options{Name: "proxy", Engine: serve.EngineFast, Logger: warn})
	g := &gateway{t: b, handler: h}
	g.route(testupstream.Canned(b, okKiB), "", "")

	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	req := []byte("GET /bytes/1024 HTTP/1.1\r\nHost: gw.example.com\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	br := bufio.NewReaderSize(c, 8<<10)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if err := readPlainResponse(br); err != nil {
			b.Fatal(err)
		}
	}
}

// readPlainResponse reads one response of a 200 with a Content-Length
// from br, body included, without allocating.
func readPlainResponse(br *bufio.Reader) error {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("status line %q", line)
	}
	length := -1
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if name, value, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(name), "Content-Length") {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(value))); err != nil {
				return err
			}
		}
	}
	if length < 0 {
		return errors.New("no Content-Length")
	}
	_, err = br.Discard(length)
	return err
}
