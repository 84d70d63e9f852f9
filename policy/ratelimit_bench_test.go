package policy

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/redistest"
)

// rlWriter is a ResponseWriter that only has headers: the Step never
// writes.
type rlWriter struct{ h http.Header }

func (w *rlWriter) Header() http.Header         { return w.h }
func (w *rlWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *rlWriter) WriteHeader(int)             {}

// benchRateLimit runs the route's chain in parallel; addrs are the client
// addresses, which each goroutine walks from its own starting point.
func benchRateLimit(b *testing.B, set *Set, addrs []netip.Addr, wantAdmitted bool) {
	chain := set.Chain("r1")
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7919))
		r := &Request{W: &rlWriter{h: http.Header{}}, R: httptest.NewRequest("GET", "/", nil), RouteID: "r1"}
		for pb.Next() {
			r.Client = addrs[i%len(addrs)]
			i++
			if err := chain.Run(r); (err == nil) != wantAdmitted {
				b.Fatalf("admitted=%v: %v", err == nil, err)
			}
		}
	})
}

func manyAddrs(n int) []netip.Addr {
	addrs := make([]netip.Addr, n)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	}
	return addrs
}

func BenchmarkRateLimitLocal(b *testing.B) {
	b.Run("many keys", func(b *testing.B) {
		set := rlCompile(b, rlRevision(b, `{"id":"p","name":"api","type":"rate-limit","config":{"requests":1000000000,"per":"second","by":"ip"}}`),
			&Env{State: NewState()})
		benchRateLimit(b, set, manyAddrs(1<<16), true)
	})
	b.Run("hot key", func(b *testing.B) {
		set := rlCompile(b, rlRevision(b, `{"id":"p","name":"api","type":"rate-limit","config":{"requests":1000000000,"per":"second","by":"route"}}`),
			&Env{State: NewState()})
		benchRateLimit(b, set, manyAddrs(1), true)
	})
	b.Run("hot key refused", func(b *testing.B) {
		set := rlCompile(b, rlRevision(b, `{"id":"p","name":"api","type":"rate-limit","config":{"requests":1,"per":"hour","by":"ip"}}`),
			&Env{State: NewState()})
		rlSend(b, set, "r1", rlClient{addr: "10.0.0.0"})
		benchRateLimit(b, set, manyAddrs(1), false)
	})
}

func BenchmarkRateLimitRedis(b *testing.B) {
	srv := redistest.Start(b)
	for _, tc := range []struct {
		desc string
		by   string
		n    int
		// honours: the client bounds its I/O by the context's deadline,
		// so the call runs on the request's goroutine.
		honours bool
	}{
		{"many keys", "ip", 1 << 16, false},
		{"hot key", "route", 1, false},
		{"hot key, ContextTimeoutEnabled", "route", 1, true},
	} {
		b.Run(tc.desc, func(b *testing.B) {
			set := newRLNode(b, srv, nil, func(o *redis.Options) { o.ContextTimeoutEnabled = tc.honours }).compile(b,
				`{"id":"p","name":"api","type":"rate-limit","config":{"requests":1000000,"per":"second","by":"`+tc.by+`","store":"redis"}}`)
			benchRateLimit(b, set, manyAddrs(tc.n), true)
		})
	}
}
