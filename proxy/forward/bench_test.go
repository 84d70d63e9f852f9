package forward

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
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
// keep-alive upstream; the allocations are net/http's.
func BenchmarkRoundTrip(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	// The baseline: the same transport without the pool.
	b.Run("bare-transport", func(b *testing.B) {
		p := newTestPool(b, Config{Targets: []Target{{URL: mustURL(b, srv.URL), Weight: 1}}})
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
