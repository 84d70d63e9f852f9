package forward

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

func TestScheduleIsSmoothWeightedRoundRobin(t *testing.T) {
	tests := []struct {
		desc    string
		weights []int
		want    string // one cycle, targets named a, b, c, ...
	}{
		{desc: "nginx's example 5:1:1", weights: []int{5, 1, 1}, want: "aabacaa"},
		{desc: "equal weights alternate", weights: []int{1, 1}, want: "ab"},
		{desc: "weights reduced by their gcd", weights: []int{100, 100, 100}, want: "abc"},
		{desc: "2:1", weights: []int{200, 100}, want: "aba"},
		{desc: "weight 0 never scheduled", weights: []int{3, 0, 1}, want: "aaca"},
		{desc: "single target", weights: []int{7}, want: "a"},
		{desc: "nothing live", weights: []int{0, 0}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			s := newSchedule(tt.weights)
			var got strings.Builder
			for _, i := range s.order {
				got.WriteByte('a' + i)
			}
			if got.String() != tt.want {
				t.Errorf("got %q; want %q", got.String(), tt.want)
			}
		})
	}
}

func TestScheduleOfHugeWeightsIsBounded(t *testing.T) {
	s := newSchedule([]int{1_000_003, 999_983, 1}) // coprime: no gcd to reduce by
	if len(s.order) > maxSchedule {
		t.Fatalf("got %d entries; want at most %d", len(s.order), maxSchedule)
	}
	var n [3]int
	for _, i := range s.order {
		n[i]++
	}
	if n[2] == 0 || n[0] < n[1] {
		t.Errorf("got counts %v; want every target, a at least b", n)
	}
}

func TestRoundTripBalancesByWeight(t *testing.T) {
	a, b, c, drained := newUpstream(t, "a"), newUpstream(t, "b"), newUpstream(t, "c"), newUpstream(t, "drained")
	p := newTestPool(t, Config{Targets: []Target{a.target(t, 5), drained.target(t, 0), b.target(t, 1), c.target(t, 1)}})
	const cycles = 3
	var got strings.Builder
	for range 7 * cycles {
		r := get(t, p)
		if r.status != http.StatusOK {
			t.Fatalf("got status %d (%v); want 200", r.status, r.err)
		}
		got.WriteString(r.upstream)
	}
	if want := strings.Repeat("aabacaa", cycles); got.String() != want {
		t.Errorf("got order %q; want %q", got.String(), want)
	}
	if n := drained.hits.Load(); n != 0 {
		t.Errorf("weight-0 target got %d requests; want 0", n)
	}
}

func TestPickDoesNotAllocate(t *testing.T) {
	tests := []struct {
		desc    string
		weights []int
		tried   uint64
	}{
		{desc: "single target", weights: []int{1}},
		{desc: "weighted", weights: []int{5, 1, 1}},
		{desc: "retry skipping a tried target", weights: []int{5, 1, 1}, tried: 1},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			p := poolOfWeights(t, tt.weights...)
			allocs := testing.AllocsPerRun(1000, func() {
				if _, ok := p.pick(tt.tried); !ok {
					t.Fatal("pick found no target")
				}
			})
			if allocs != 0 {
				t.Errorf("got %v allocations per pick; want 0", allocs)
			}
		})
	}
}

// poolOfWeights builds a pool whose targets are never dialled.
func poolOfWeights(t testing.TB, weights ...int) *Pool {
	var ts []Target
	for i, w := range weights {
		ts = append(ts, Target{URL: mustURL(t, "http://10.0.0."+string(rune('1'+i))+":80"), Weight: w})
	}
	p := NewPool(context.Background(), Config{Targets: ts}, nil)
	t.Cleanup(p.Close)
	return p
}
