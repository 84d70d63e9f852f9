package route

import (
	"fmt"
	"testing"
)

// The benchmarks show that the cost of a match does not grow with the
// number of routes. Route i is "svc{i}.example.com" for even i and host-less
// for odd i, so both the exact-host map and the host-less tree are on the
// path, and lists GET and POST.

// BenchmarkMatch cycles through 256 requests, each for a different route,
// as a gateway's traffic would: what growth remains with the table's size is
// cache misses in larger maps, not more work.
func BenchmarkMatch(b *testing.B) { benchmarkMatch(b, 256) }

// BenchmarkMatchSameRequest repeats one request, keeping the table's path
// for it in cache, to show the work itself.
func BenchmarkMatchSameRequest(b *testing.B) { benchmarkMatch(b, 1) }

func benchmarkMatch(b *testing.B, requests int) {
	kinds := []struct {
		name, pattern, path string
		into                bool // MatchInto with a reused buffer
	}{
		{"exact", "/svc%d/users", "/svc%d/users", false},
		{"param", "/svc%d/users/{id}", "/svc%d/users/42", false},
		{"param-into", "/svc%d/users/{id}", "/svc%d/users/42", true},
		{"prefix", "/svc%d/static/*", "/svc%d/static/css/app.css", false},
	}
	for _, n := range []int{10, 1000, 10000} {
		for _, k := range kinds {
			b.Run(fmt.Sprintf("routes=%d/%s", n, k.name), func(b *testing.B) {
				entries := make([]Entry[int], n)
				for i := range entries {
					entries[i] = Entry[int]{Paths: []string{fmt.Sprintf(k.pattern, i)}, Methods: []string{"GET", "POST"}, Order: i, Value: i}
					if i%2 == 0 {
						entries[i].Hosts = []string{fmt.Sprintf("svc%d.example.com", i)}
					}
				}
				tab, err := Compile(entries)
				if err != nil {
					b.Fatal(err)
				}
				type request struct{ host, path string }
				reqs := make([]request, requests)
				for j := range reqs {
					i := (j*n/len(reqs) + 1) % n // odd when requests is 1: the host-less tree
					reqs[j] = request{fmt.Sprintf("svc%d.example.com", i), fmt.Sprintf(k.path, i)}
					if m := tab.Match(reqs[j].host, reqs[j].path, "GET"); m.Outcome != Found || m.Value != i {
						b.Fatalf("Match(%v) = %v %d; want Found %d", reqs[j], m.Outcome, m.Value, i)
					}
				}
				buf := make([]Param, 0, 4)
				b.ReportAllocs()
				j := 0
				for b.Loop() {
					r := reqs[j%len(reqs)]
					j++
					if k.into {
						tab.MatchInto(r.host, r.path, "GET", buf)
					} else {
						tab.Match(r.host, r.path, "GET")
					}
				}
			})
		}
	}
}
