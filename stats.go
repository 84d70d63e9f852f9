package gatehouse

import (
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// KindStats is the collection of the data plane's live figures that the
// nodes serving traffic publish, one record per node (its id the node's),
// for the admin API's GET /stats of the whole cluster. Nodes write them
// like their findings. The body is a NodeStats.
const KindStats Kind = "stats"

// StatsLatencyBounds are the upper bounds, in seconds, of the latency
// buckets: those of the data plane's request duration histogram, whose
// counts the published figures are, so that they merge across nodes.
var StatsLatencyBounds = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Bounds of a node's published figures.
const (
	// StatsMaxRoutes is how many routes a node's snapshot holds by
	// default: the busiest (most requests); the others are summed into
	// NodeStats.Other, so that the totals stay whole.
	StatsMaxRoutes = 500
	// StatsMaxCodes is how many distinct status codes a route's counters
	// keep, the first it answered; the requests of other codes count in
	// their class only.
	StatsMaxCodes = 16
)

// NodeStats is one node's data plane figures: cumulative counters per
// route since the route's figures began (the node's start, or the deploy
// that added the route), and the rates of the last interval.
type NodeStats struct {
	// At is when the figures were taken, by the node's clock: when they
	// last changed, for a published snapshot (an idle node's stays).
	At       time.Time `json:"at"`
	Revision int64     `json:"revision"`
	// WindowSeconds is the interval the rates were measured over: the
	// difference of two samples taken that far apart (0: no rate yet).
	WindowSeconds float64         `json:"window_seconds"`
	Routes        []RouteCounters `json:"routes"`
	// Unmatched are the requests no route took (404, 405, 400 ...).
	Unmatched RouteCounters `json:"unmatched"`
	// Other sums the routes over the snapshot's cap, DroppedRoutes many.
	Other         *RouteCounters `json:"other,omitempty"`
	DroppedRoutes int            `json:"dropped_routes,omitempty"`
	// Services are the upstream targets' health of the services of the
	// revision being served, by id, bounded by StatsMaxTargets;
	// DroppedServices counts those left out.
	Services        []ServiceHealth `json:"services,omitempty"`
	DroppedServices int             `json:"dropped_services,omitempty"`
}

// RouteCounters are one route's cumulative figures on one node (or
// summed over several).
type RouteCounters struct {
	RouteID  string `json:"route_id,omitempty"`
	Requests uint64 `json:"requests"`
	// Rate is requests per second over the last interval.
	Rate float64 `json:"rate"`
	// Classes counts the responses by class: index 0 is 1xx, 4 is 5xx.
	Classes [5]uint64 `json:"classes"`
	// Codes counts the responses by status code, at most StatsMaxCodes.
	Codes map[int]uint64 `json:"codes,omitempty"`
	// LatencySum is the responses' total duration in seconds;
	// LatencyBuckets the cumulative counts at StatsLatencyBounds (those
	// over the last bound are Requests minus the last).
	LatencySum     float64  `json:"latency_sum_seconds"`
	LatencyBuckets []uint64 `json:"latency_buckets"`
}

// Add adds o's figures to c's.
func (c *RouteCounters) Add(o *RouteCounters) {
	c.Requests += o.Requests
	c.Rate += o.Rate
	for i := range c.Classes {
		c.Classes[i] += o.Classes[i]
	}
	for code, n := range o.Codes {
		if c.Codes == nil {
			c.Codes = map[int]uint64{}
		}
		c.Codes[code] += n
	}
	c.LatencySum += o.LatencySum
	if len(c.LatencyBuckets) < len(o.LatencyBuckets) {
		c.LatencyBuckets = append(c.LatencyBuckets, make([]uint64, len(o.LatencyBuckets)-len(c.LatencyBuckets))...)
	}
	for i, n := range o.LatencyBuckets {
		c.LatencyBuckets[i] += n
	}
}

// Bound keeps the n busiest routes of s (ties by id), summing the others
// into s.Other; the routes kept stay ordered by id.
func (s *NodeStats) Bound(n int) {
	if len(s.Routes) <= n {
		return
	}
	slices.SortStableFunc(s.Routes, func(a, b RouteCounters) int {
		if a.Requests != b.Requests {
			if a.Requests > b.Requests {
				return -1
			}
			return 1
		}
		return strings.Compare(a.RouteID, b.RouteID)
	})
	other := RouteCounters{}
	if s.Other != nil {
		other = *s.Other
	}
	for i := range s.Routes[n:] {
		other.Add(&s.Routes[n+i])
	}
	s.DroppedRoutes += len(s.Routes) - n
	s.Routes = s.Routes[:n]
	s.Other = &other
	slices.SortFunc(s.Routes, func(a, b RouteCounters) int { return strings.Compare(a.RouteID, b.RouteID) })
}

// ClusterStats is the body of the admin API's GET /stats: the figures of
// every live node serving traffic, summed.
type ClusterStats struct {
	// At is when the answer was made, by the answering node's clock.
	At time.Time `json:"at"`
	// Total is every request of the nodes included, routes over a
	// snapshot's cap and unmatched requests included.
	Total StatsFigures `json:"total"`
	// Unmatched are the requests no route took.
	Unmatched StatsFigures `json:"unmatched"`
	// Routes are the routes with figures, by id.
	Routes []RouteStats `json:"routes"`
	// Nodes are the nodes that serve traffic: those live are included,
	// those down are left out (and said so).
	Nodes []NodeShare `json:"nodes"`
	// DroppedRoutes counts the routes the nodes' snapshots left out over
	// their cap, whose figures are in Total only.
	DroppedRoutes int `json:"dropped_routes"`
	// Services are the services' targets' health as the included nodes
	// see them (SumHealth), by id; DroppedServices counts those a node
	// left out over its cap (StatsMaxTargets), summed over the nodes.
	Services        []ServiceHealthView `json:"services"`
	DroppedServices int                 `json:"dropped_services"`
}

// StatsFigures are summed figures of one route or of all.
type StatsFigures struct {
	Requests uint64 `json:"requests"`
	// Rate is requests per second over each node's last interval, summed.
	Rate float64 `json:"rate"`
	// Classes counts the responses by class ("2xx": n), Codes by status
	// code ("200": n).
	Classes map[string]uint64 `json:"classes"`
	Codes   map[string]uint64 `json:"codes"`
	Latency LatencyFigures    `json:"latency"`
}

// LatencyFigures summarise the responses' durations, in seconds.
type LatencyFigures struct {
	Count       uint64  `json:"count"`
	SumSeconds  float64 `json:"sum_seconds"`
	MeanSeconds float64 `json:"mean_seconds"`
	// P50, P90 and P99 are estimated from the buckets as Prometheus's
	// histogram_quantile does: linearly within the bucket the quantile
	// falls in (the last bound when it falls beyond it).
	P50 float64 `json:"p50_seconds"`
	P90 float64 `json:"p90_seconds"`
	P99 float64 `json:"p99_seconds"`
	// Buckets are the cumulative counts of responses that took at most
	// LE seconds.
	Buckets []LatencyBucket `json:"buckets"`
}

// LatencyBucket is one bucket of LatencyFigures.
type LatencyBucket struct {
	LE    float64 `json:"le"`
	Count uint64  `json:"count"`
}

// RouteStats are one route's figures, and each node's part in them.
type RouteStats struct {
	RouteID string `json:"route_id"`
	StatsFigures
	Nodes []RouteShare `json:"nodes"`
}

// RouteShare is one node's part in a route's figures.
type RouteShare struct {
	Node     string  `json:"node"`
	Requests uint64  `json:"requests"`
	Rate     float64 `json:"rate"`
	// Share is the node's fraction of the route's requests (0 to 1).
	Share float64 `json:"share"`
}

// NodeShare is one node's part in the cluster's figures.
type NodeShare struct {
	Node string `json:"node"`
	// State is the node's (NodeLive or NodeDown); Included whether its
	// figures are counted, and Excluded why not when they are not: a
	// node that is down is left out, as is a live one that has published
	// none yet or whose published figures cannot be read.
	State    string `json:"state"`
	Included bool   `json:"included"`
	Excluded string `json:"excluded,omitempty"`
	// SnapshotAt is when its figures were taken (zero: none).
	SnapshotAt time.Time `json:"snapshot_at,omitzero"`
	Revision   int64     `json:"revision"`
	Requests   uint64    `json:"requests"`
	Rate       float64   `json:"rate"`
	// Share is the node's fraction of the cluster's requests (0 to 1).
	Share         float64 `json:"share"`
	DroppedRoutes int     `json:"dropped_routes"`
}

// Figures turns summed counters into the figures an answer shows.
func (c *RouteCounters) Figures() StatsFigures {
	f := StatsFigures{Requests: c.Requests, Rate: roundRate(c.Rate), Classes: map[string]uint64{}, Codes: map[string]uint64{}}
	for i, n := range c.Classes {
		if n > 0 {
			f.Classes[strconv.Itoa(i+1)+"xx"] = n
		}
	}
	for _, code := range slices.Sorted(maps.Keys(c.Codes)) {
		f.Codes[strconv.Itoa(code)] = c.Codes[code]
	}
	l := LatencyFigures{Count: c.Requests, SumSeconds: c.LatencySum, Buckets: []LatencyBucket{}}
	for i, le := range StatsLatencyBounds {
		var n uint64
		if i < len(c.LatencyBuckets) {
			n = c.LatencyBuckets[i]
		}
		l.Buckets = append(l.Buckets, LatencyBucket{LE: le, Count: n})
	}
	if l.Count > 0 {
		l.MeanSeconds = l.SumSeconds / float64(l.Count)
		l.P50, l.P90, l.P99 = quantile(.5, l.Buckets, l.Count), quantile(.9, l.Buckets, l.Count), quantile(.99, l.Buckets, l.Count)
	}
	f.Latency = l
	return f
}

// quantile estimates the q-quantile of count observations from their
// cumulative buckets, interpolating linearly within the bucket it falls
// in (from 0 for the first); beyond the last bound it is the last bound.
func quantile(q float64, buckets []LatencyBucket, count uint64) float64 {
	rank := q * float64(count)
	var lower float64
	var below uint64
	for _, b := range buckets {
		if float64(b.Count) >= rank {
			in := b.Count - below
			if in == 0 {
				return b.LE
			}
			return lower + (b.LE-lower)*(rank-float64(below))/float64(in)
		}
		lower, below = b.LE, b.Count
	}
	return lower
}

// roundRate keeps a rate to three decimals: the rest is noise of the
// clocks.
func roundRate(r float64) float64 { return math.Round(r*1000) / 1000 }

// Why a node's figures are left out of the cluster's (NodeShare.Excluded).
const (
	ExcludedDown       = "down"       // the node is down: its figures are stale
	ExcludedNone       = "none"       // it is live but has published no figures yet
	ExcludedUnreadable = "unreadable" // its published figures do not decode
)

// NodeFigures are one node's published figures as SumStats reads them:
// Node says who it is and its state, Stats its figures (nil: left out,
// Node.Excluded saying why).
type NodeFigures struct {
	Node  NodeShare
	Stats *NodeStats
}

// SumStats sums the figures of the nodes that have them into the
// cluster's; routeID, if set, keeps that route's figures only in Routes
// (Total and Nodes stay the cluster's).
func SumStats(at time.Time, nodes []NodeFigures, routeID string) *ClusterStats {
	cs := &ClusterStats{At: at.UTC(), Routes: []RouteStats{}, Nodes: []NodeShare{}}
	var total, unmatched RouteCounters
	routes := map[string]*RouteCounters{}
	shares := map[string][]RouteShare{}
	for _, nf := range nodes {
		n := nf.Node
		s := nf.Stats
		n.Included = s != nil
		if s == nil {
			n.SnapshotAt = time.Time{}
			cs.Nodes = append(cs.Nodes, n)
			continue
		}
		n.SnapshotAt, n.Revision, n.DroppedRoutes = s.At.UTC(), s.Revision, s.DroppedRoutes
		var own RouteCounters
		own.Add(&s.Unmatched)
		if s.Other != nil {
			own.Add(s.Other)
		}
		for i := range s.Routes {
			r := &s.Routes[i]
			own.Add(r)
			if routeID != "" && r.RouteID != routeID {
				continue
			}
			sum := routes[r.RouteID]
			if sum == nil {
				sum = &RouteCounters{}
				routes[r.RouteID] = sum
			}
			sum.Add(r)
			shares[r.RouteID] = append(shares[r.RouteID], RouteShare{Node: n.Node, Requests: r.Requests, Rate: roundRate(r.Rate)})
		}
		unmatched.Add(&s.Unmatched)
		total.Add(&own)
		n.Requests, n.Rate = own.Requests, roundRate(own.Rate)
		cs.DroppedRoutes += s.DroppedRoutes
		cs.DroppedServices += s.DroppedServices
		cs.Nodes = append(cs.Nodes, n)
	}
	for i := range cs.Nodes {
		cs.Nodes[i].Share = fraction(cs.Nodes[i].Requests, total.Requests)
	}
	slices.SortFunc(cs.Nodes, func(a, b NodeShare) int { return strings.Compare(a.Node, b.Node) })
	for _, id := range slices.Sorted(maps.Keys(routes)) {
		sum := routes[id]
		rs := RouteStats{RouteID: id, StatsFigures: sum.Figures(), Nodes: shares[id]}
		for i := range rs.Nodes {
			rs.Nodes[i].Share = fraction(rs.Nodes[i].Requests, sum.Requests)
		}
		slices.SortFunc(rs.Nodes, func(a, b RouteShare) int { return strings.Compare(a.Node, b.Node) })
		cs.Routes = append(cs.Routes, rs)
	}
	cs.Total, cs.Unmatched = total.Figures(), unmatched.Figures()
	cs.Services = SumHealth(nodes, "")
	return cs
}

// fraction is n of total, to four decimals; 0 of nothing.
func fraction(n, total uint64) float64 {
	if total == 0 {
		return 0
	}
	return math.Round(float64(n)/float64(total)*10000) / 10000
}
