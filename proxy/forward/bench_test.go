package forward

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// BenchmarkPick measures selection alone; it must not allocate.
func BenchmarkPick(b *testing.B) {
	for _, bc := range []struct {
		name    string
		weights []int
	}{
		{"single", []int{1}},
		{"weighted-5-1-1", []int{5, 1, 1}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := poolOfWeights(b, bc.weights...)
			b.ReportAllocs()
			for b.Loop() {
				p.pick(0)
			}
		})
		b.Run(bc.name+"-parallel", func(b *testing.B) {
			p := poolOfWeights(b, bc.weights...)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					p.pick(0)
				}
			})
		})
	}
}

// BenchmarkRoundTrip measures a whole RoundTrip against a local
// keep-alive upstream; the allocations include the httptest server's.
func BenchmarkRoundTrip(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	// The baseline: the same transport without the pool.
	b.Run("bare-transport", func(b *testing.B) {
		p := newTestPool(b, Config{Targets: []Target{{URL: mustURL(b, srv.URL), Weight: 1}}})
		if _, ok := p.targets[0].rt.(*h1Transport); !ok {
			b.Fatalf("http upstream on %T; want *h1Transport", p.targets[0].rt)
		}
		req, _ := http.NewRequest("GET", srv.URL+"/x", nil)
		b.ReportAllocs()
		for b.Loop() {
			resp, err := p.targets[0].rt.RoundTrip(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	for _, bc := range []struct {
		name string
		base string
	}{
		{"no-base-path", ""},
		{"base-path", "/base"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := newTestPool(b, Config{Targets: []Target{{URL: mustURL(b, srv.URL+bc.base), Weight: 1}}})
			req := request(b, context.Background(), "GET", "/x", nil)
			b.ReportAllocs()
			for b.Loop() {
				req.URL.Path = "/x"
				resp, _, err := p.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}

// BenchmarkRoundTripCanned measures the transports alone: the upstream
// answers every request with the same bytes from a raw socket, allocating
// nothing per request, so allocs/op are the client's. Run with -cpu 1 to
// see the cost of goroutine handoffs.
func BenchmarkRoundTripCanned(b *testing.B) {
	u := cannedUpstream(b, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1024\r\n\r\n"+string(bytes.Repeat([]byte("x"), 1024)))
	k := transportKey{scheme: "http", host: u.Host, connect: time.Second, read: time.Minute}
	for _, bc := range []struct {
		name string
		rt   roundTripper
	}{
		{"h1", newH1Transport(k)},
		{"net-http", newNetHTTPTransport(k, nil, nil)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			defer bc.rt.CloseIdleConnections()
			ctx, cancel := context.WithCancel(context.Background()) // as the engine's: cancelable
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", u.String()+"/bytes/1024?q=1", nil)
			req.Header = http.Header{
				"Accept":          {"*/*"},
				"User-Agent":      {"bench/1.0"},
				"X-Forwarded-For": {"127.0.0.1"},
				"X-Request-Id":    {"0123456789abcdef"},
			}
			buf := make([]byte, 32<<10)
			b.ReportAllocs()
			for b.Loop() {
				resp, err := bc.rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				for {
					if _, err := resp.Body.Read(buf); err != nil {
						break
					}
				}
				resp.Body.Close()
			}
		})
	}
}

// cannedUpstream answers each request head (a GET: no body) with resp.
func cannedUpstream(tb testing.TB, resp string) *url.URL {
	return mustURL(tb, testupstream.Canned(tb, []byte(resp)))
}
