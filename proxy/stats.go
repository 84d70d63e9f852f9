package proxy

import (
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/gatehouse/gatehouse"
)

// The live figures (gatehouse.NodeStats) are read from the counters a
// request already touches, its route's collectors (routeMetrics), plus
// one table of counts by status code per route: a request costs one more
// atomic add, and reading the figures, done once an interval, pays for
// the rest.

// codeCounts counts a route's responses by status code in a fixed table
// of gatehouse.StatsMaxCodes slots, claimed by codes as they are first
// answered: recording takes a few atomic loads and one add, no lock and
// no allocation. A code that finds the table full counts in its class
// only (routeMetrics.classes).
type codeCounts struct {
	slots [gatehouse.StatsMaxCodes]struct {
		code atomic.Uint32
		n    atomic.Uint64
	}
}

func (c *codeCounts) add(status int) {
	code := uint32(status)
	for i := range c.slots {
		s := &c.slots[i]
		got := s.code.Load()
		if got == 0 {
			if s.code.CompareAndSwap(0, code) {
				got = code
			} else {
				got = s.code.Load() // another code claimed it first
			}
		}
		if got == code {
			s.n.Add(1)
			return
		}
	}
}

// read returns the counts, nil if none.
func (c *codeCounts) read() map[int]uint64 {
	var m map[int]uint64
	for i := range c.slots {
		s := &c.slots[i]
		// A slot is claimed before its count is added: skip it until then.
		if code, n := s.code.Load(), s.n.Load(); code != 0 && n != 0 {
			if m == nil {
				m = map[int]uint64{}
			}
			m[int(code)] = n
		}
	}
	return m
}

// codesOf returns route id's counts by code, made on first use and kept
// until forget drops the route, so that a redeploy keeping the route keeps
// its counts as it keeps its series.
func (m *Metrics) codesOf(id string) *codeCounts {
	m.codesMu.Lock()
	defer m.codesMu.Unlock()
	c := m.routeCodes[id]
	if c == nil {
		if m.routeCodes == nil {
			m.routeCodes = map[string]*codeCounts{}
		}
		c = &codeCounts{}
		m.routeCodes[id] = c
	}
	return c
}

// counters reads the route's cumulative figures (without a rate).
func (rm *routeMetrics) counters() gatehouse.RouteCounters {
	c := gatehouse.RouteCounters{RouteID: rm.id, Codes: rm.codes.read()}
	var d dto.Metric
	for class := 1; class <= 5; class++ {
		d.Reset()
		if rm.classes[class].Write(&d) == nil {
			c.Classes[class-1] = uint64(d.GetCounter().GetValue())
		}
	}
	d.Reset()
	if h, ok := rm.duration.(prometheus.Metric); ok && h.Write(&d) == nil {
		hist := d.GetHistogram()
		c.Requests, c.LatencySum = hist.GetSampleCount(), hist.GetSampleSum()
		for _, b := range hist.GetBucket() {
			c.LatencyBuckets = append(c.LatencyBuckets, b.GetCumulativeCount())
		}
	}
	return c
}

// sampler keeps what the rates are measured against: the requests of each
// route (and of none, under key unmatchedKey) at the previous sample.
type sampler struct {
	mu     sync.Mutex
	at     time.Time
	counts map[string]uint64
	// rates are those measured at the last sample, over window.
	rates  map[string]float64
	window time.Duration
	// last is the last sample's result.
	last *gatehouse.NodeStats
}

// unmatchedKey is the sampler's key of requests no route took: no route
// id is empty.
const unmatchedKey = ""

// Stats returns the live figures of the revision being served, bounded by
// Options.StatsMaxRoutes, with the rates SampleStats last measured (none
// before it ran twice). Without Metrics there are none.
func (h *Handler) Stats() gatehouse.NodeStats {
	s := h.collect(time.Now())
	h.sampler.mu.Lock()
	s.WindowSeconds = h.sampler.window.Seconds()
	rates := h.sampler.rates
	h.sampler.mu.Unlock()
	h.rated(&s, rates)
	return s
}

// SampleStats is Stats, measuring the rates anew: each route's requests
// since the previous call, per second of the time between the two (a
// route whose counts went back, removed and added again, counts from 0).
// It is called once an interval, by the node that publishes the figures.
// Its At and WindowSeconds stay the previous call's while nothing else
// changed, so that an idle node's snapshot stays the same and is not
// published again.
func (h *Handler) SampleStats() gatehouse.NodeStats {
	now := time.Now()
	s := h.collect(now)
	counts := map[string]uint64{unmatchedKey: s.Unmatched.Requests}
	for _, r := range s.Routes {
		counts[r.RouteID] = r.Requests
	}
	h.sampler.mu.Lock()
	defer h.sampler.mu.Unlock()
	p := &h.sampler
	var rates map[string]float64
	if !p.at.IsZero() && now.After(p.at) {
		p.window = now.Sub(p.at)
		rates = make(map[string]float64, len(counts))
		for id, n := range counts {
			if before := p.counts[id]; before <= n {
				n -= before
			}
			rates[id] = float64(n) / p.window.Seconds()
		}
	}
	p.at, p.counts, p.rates = now, counts, rates
	s.WindowSeconds = p.window.Seconds()
	h.rated(&s, rates)
	if p.last != nil {
		// Idle, only the time and the window move: the rates are 0 over
		// any window.
		at, window := s.At, s.WindowSeconds
		s.At, s.WindowSeconds = p.last.At, p.last.WindowSeconds
		if !reflect.DeepEqual(&s, p.last) {
			s.At, s.WindowSeconds = at, window
		}
	}
	p.last = &s
	return s
}

// collect reads the cumulative figures of every route of the revision
// being served.
func (h *Handler) collect(now time.Time) gatehouse.NodeStats {
	s := gatehouse.NodeStats{At: now.UTC(), Routes: []gatehouse.RouteCounters{}}
	st := h.state.Load()
	if st == nil || st.unmatched == nil {
		return s
	}
	s.Revision = st.core.Revision
	s.Unmatched = st.unmatched.counters()
	for _, rm := range st.routes {
		s.Routes = append(s.Routes, rm.counters())
	}
	// In one order, so that figures that did not change encode the same.
	slices.SortFunc(s.Routes, func(a, b gatehouse.RouteCounters) int { return strings.Compare(a.RouteID, b.RouteID) })
	s.Services, s.DroppedServices = targetsHealth(st)
	return s
}

// targetsHealth reads the targets' health of every pool of st, bounded by
// gatehouse.StatsMaxTargets: once an interval, never per request.
func targetsHealth(st *state) ([]gatehouse.ServiceHealth, int) {
	if len(st.pools) == 0 {
		return nil, 0
	}
	services := make([]gatehouse.ServiceHealth, 0, len(st.pools))
	for id, p := range st.pools {
		targets, active, passive := p.Health()
		services = append(services, gatehouse.ServiceHealth{ServiceID: id, ActiveChecks: active, PassiveChecks: passive, Targets: targets})
	}
	return gatehouse.BoundHealth(services, gatehouse.StatsMaxTargets)
}

// rated sets the rates of s's routes, then bounds it: the bound sums the
// rates of the routes it drops too.
func (h *Handler) rated(s *gatehouse.NodeStats, rates map[string]float64) {
	s.Unmatched.Rate = rates[unmatchedKey]
	for i := range s.Routes {
		s.Routes[i].Rate = rates[s.Routes[i].RouteID]
	}
	n := h.opts.StatsMaxRoutes
	if n <= 0 {
		n = gatehouse.StatsMaxRoutes
	}
	s.Bound(n)
}
