package proxy

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the data plane's Prometheus collectors. Everything a request
// touches is resolved when a revision is applied (a route's own counters
// and histogram) or at start (one counter per status code), so recording
// costs a few atomic adds and no label lookups.
type Metrics struct {
	requests  *prometheus.CounterVec   // route, class
	duration  *prometheus.HistogramVec // route
	responses [600]prometheus.Counter  // by status code
	failures  *prometheus.CounterVec   // service, status (gatehouse's 502/503/504)
	aborted   prometheus.Counter
	revision  prometheus.Gauge
}

// NewMetrics registers the data plane's collectors with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_proxy_requests_total",
			Help: "Requests answered, by route (\"\" when none matched) and status class.",
		}, []string{"route", "class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_proxy_request_duration_seconds",
			Help:    "Time from the request's head to the end of the response, by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_proxy_upstream_failures_total",
			Help: "Requests gatehouse answered for a failing upstream, by service and status (502, 503, 504).",
		}, []string{"service", "code"}),
		aborted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_proxy_client_aborts_total",
			Help: "Requests whose client went away before the response was complete.",
		}),
		revision: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gatehouse_proxy_revision",
			Help: "Number of the configuration revision being served (0: none or empty).",
		}),
	}
	responses := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_proxy_responses_total",
		Help: "Responses sent by the data plane, by status code.",
	}, []string{"code"})
	for code := 100; code < len(m.responses); code++ {
		m.responses[code] = responses.WithLabelValues(strconv.Itoa(code))
	}
	reg.MustRegister(m.requests, m.duration, responses, m.failures, m.aborted, m.revision)
	return m
}

// routeMetrics are one route's collectors, resolved at Apply.
type routeMetrics struct {
	classes  [6]prometheus.Counter // index status/100
	duration prometheus.Observer
}

func (m *Metrics) forRoute(id string) *routeMetrics {
	if m == nil {
		return nil
	}
	rm := &routeMetrics{duration: m.duration.WithLabelValues(id)}
	for c := 1; c <= 5; c++ {
		rm.classes[c] = m.requests.WithLabelValues(id, strconv.Itoa(c)+"xx")
	}
	return rm
}

// observe records one answered request.
func (m *Metrics) observe(rm *routeMetrics, status int, start time.Time) {
	if m == nil {
		return
	}
	if status <= 0 {
		m.aborted.Inc()
		return
	}
	if status < len(m.responses) && m.responses[status] != nil {
		m.responses[status].Inc()
	}
	if rm != nil && status >= 100 && status < 600 {
		rm.classes[status/100].Inc()
		rm.duration.Observe(time.Since(start).Seconds())
	}
}

// upstreamFailed counts a 502, 503 or 504 that gatehouse answered for a
// service.
func (m *Metrics) upstreamFailed(service string, status int) {
	if m == nil {
		return
	}
	m.failures.WithLabelValues(service, strconv.Itoa(status)).Inc()
}
