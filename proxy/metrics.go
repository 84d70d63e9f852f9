package proxy

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
)

// Metrics are the data plane's Prometheus collectors. Everything a request
// touches is resolved when a revision is applied (a route's own counters
// and histogram) or on a status code's first use, so recording costs a few
// atomic adds and no label lookups. A route's series go when a revision
// without it is applied: redeploys do not grow them without bound.
type Metrics struct {
	requests  *prometheus.CounterVec   // route, class
	duration  *prometheus.HistogramVec // route
	responses *prometheus.CounterVec   // code
	codes     [600]atomic.Pointer[prometheus.Counter]
	failures  *prometheus.CounterVec // service, status (gatehouse's 502/503/504)
	// served counts forwarded exchanges by the service that answered;
	// mirrored the shadow requests of mirror policies.
	served   *prometheus.CounterVec // route, service, class
	mirrored *prometheus.CounterVec // route, service, result
	broken   *prometheus.CounterVec // service
	aborted  prometheus.Counter
	revision prometheus.Gauge
	// findings and dropped are the response audit's (Conformance).
	findings *prometheus.CounterVec // route, operation, status, rule, severity
	dropped  prometheus.Counter
	// codesMu guards routeCodes, each route's counters by status code for the
	// live figures (stats.go), kept across revisions as its series are.
	codesMu    sync.Mutex
	routeCodes map[string]*codeCounts
}

// NewMetrics registers the data plane's collectors with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_proxy_requests_total",
			Help: "Requests answered, by route (\"\" when none matched) and status class.",
		}, []string{"route", "class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gatehouse_proxy_request_duration_seconds",
			Help: "Time from the request's head to the end of the response, by route.",
			// The live figures (stats.go) publish these buckets' counts.
			Buckets: gatehouse.StatsLatencyBounds,
		}, []string{"route"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_proxy_upstream_failures_total",
			Help: "Requests gatehouse answered for a failing upstream, by service and status (502, 503, 504).",
		}, []string{"service", "code"}),
		served: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_proxy_service_responses_total",
			Help: "Forwarded exchanges, by route, the service that answered (a traffic split's choice) and status class.",
		}, []string{"route", "service", "class"}),
		mirrored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_proxy_mirror_requests_total",
			Help: "Copies of requests for mirror policies' shadow services, by route, shadow service and result: the shadow's status class, failed, skipped_body (body over max_body_bytes, or never read whole), skipped_busy (max_concurrent in flight).",
		}, []string{"route", "service", "result"}),
		broken: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_proxy_upstream_broken_responses_total",
			Help: "Responses whose upstream broke off mid-body, by service: the status was sent (and is counted), the client's connection was cut.",
		}, []string{"service"}),
		aborted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_proxy_client_aborts_total",
			Help: "Requests whose client went away before the response was complete.",
		}),
		revision: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gatehouse_proxy_revision",
			Help: "Number of the configuration revision being served (0: none or empty).",
		}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_proxy_responses_total",
			Help: "Responses sent by the data plane, by status code.",
		}, []string{"code"}),
	}
	m.findings = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_conformance_findings_total",
		Help: "Upstream responses (or requests, for request-invalid) that broke a rule of the response audit, by route, operation, status and rule. Its series are bounded by the recorder's cap on entries.",
	}, []string{"route", "operation", "status", "rule", "severity"})
	m.dropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gatehouse_conformance_findings_dropped_total",
		Help: "Findings not kept because the recorder's cap on distinct (route, operation, status, rule) entries was reached.",
	})
	reg.MustRegister(m.requests, m.duration, m.responses, m.failures, m.served, m.mirrored, m.broken, m.aborted, m.revision, m.findings, m.dropped)
	return m
}

// Conformance returns the options of an audit.Recorder whose findings
// these metrics count, capped at maxEntries (0: audit.DefaultMaxEntries);
// nil Metrics count nothing.
func (m *Metrics) Conformance(maxEntries int) audit.RecorderOptions {
	o := audit.RecorderOptions{MaxEntries: maxEntries}
	if m == nil {
		return o
	}
	o.Counter = func(k audit.Key, s audit.Severity) audit.Counter {
		return m.findings.WithLabelValues(k.RouteID, k.Operation, strconv.Itoa(k.Status), k.Rule, string(s))
	}
	o.Dropped = m.dropped
	return o
}

// response returns the counter of a status code (100-599), made on its
// first use: a series exists only for codes that were sent.
func (m *Metrics) response(code int) prometheus.Counter {
	if c := m.codes[code].Load(); c != nil {
		return *c
	}
	// WithLabelValues returns the same child to racing callers.
	c := m.responses.WithLabelValues(strconv.Itoa(code))
	m.codes[code].Store(&c)
	return c
}

// forget deletes the series of routes and services that a new revision no
// longer has. A request still finishing on the old revision counts into a
// detached series, which is lost: nothing scrapes it any more.
func (m *Metrics) forget(routes, services []string) {
	if m == nil {
		return
	}
	m.codesMu.Lock()
	for _, id := range routes {
		delete(m.routeCodes, id)
	}
	m.codesMu.Unlock()
	for _, id := range routes {
		m.requests.DeletePartialMatch(prometheus.Labels{"route": id})
		m.duration.DeleteLabelValues(id)
		m.served.DeletePartialMatch(prometheus.Labels{"route": id})
		m.mirrored.DeletePartialMatch(prometheus.Labels{"route": id})
	}
	for _, id := range services {
		m.failures.DeletePartialMatch(prometheus.Labels{"service": id})
		m.broken.DeleteLabelValues(id)
		m.served.DeletePartialMatch(prometheus.Labels{"service": id})
		m.mirrored.DeletePartialMatch(prometheus.Labels{"service": id})
	}
}

// routeMetrics are one route's collectors, resolved at Apply.
type routeMetrics struct {
	id       string
	classes  [6]prometheus.Counter // index status/100
	duration prometheus.Observer
	codes    *codeCounts
	// service is the route's own service, own its exchanges' counters;
	// others are those of the services its traffic split may choose.
	service string
	own     *classCounters
	others  map[string]*classCounters
}

// classCounters are counters by status class, index status/100.
type classCounters [6]prometheus.Counter

func (m *Metrics) forRoute(id string) *routeMetrics {
	if m == nil {
		return nil
	}
	rm := &routeMetrics{id: id, duration: m.duration.WithLabelValues(id), codes: m.codesOf(id)}
	for c := 1; c <= 5; c++ {
		rm.classes[c] = m.requests.WithLabelValues(id, strconv.Itoa(c)+"xx")
	}
	return rm
}

// forServices resolves the counters of the exchanges route rm forwards to
// its own service and to those its traffic split names (others).
func (m *Metrics) forServices(rm *routeMetrics, route, own string, others []string) {
	if m == nil || rm == nil {
		return
	}
	counters := func(service string) *classCounters {
		var cc classCounters
		for c := 1; c <= 5; c++ {
			cc[c] = m.served.WithLabelValues(route, service, strconv.Itoa(c)+"xx")
		}
		return &cc
	}
	rm.service, rm.own = own, counters(own)
	for _, s := range others {
		if s != own {
			if rm.others == nil {
				rm.others = map[string]*classCounters{}
			}
			rm.others[s] = counters(s)
		}
	}
}

// answered records one forwarded exchange of route rm, answered by
// service with status (0: none, not counted).
func (m *Metrics) answered(rm *routeMetrics, service string, status int) {
	if m == nil || rm == nil || status < 100 || status >= 600 {
		return
	}
	cc := rm.own
	if service != rm.service {
		if cc = rm.others[service]; cc == nil {
			return
		}
	}
	cc[status/100].Inc()
}

// mirrorMetrics are one mirror target's counters, resolved at Apply.
type mirrorMetrics struct {
	classes                          classCounters
	failed, skippedBody, skippedBusy prometheus.Counter
}

func (m *Metrics) forMirror(route, service string) *mirrorMetrics {
	if m == nil {
		return nil
	}
	mm := &mirrorMetrics{
		failed:      m.mirrored.WithLabelValues(route, service, "failed"),
		skippedBody: m.mirrored.WithLabelValues(route, service, "skipped_body"),
		skippedBusy: m.mirrored.WithLabelValues(route, service, "skipped_busy"),
	}
	for c := 1; c <= 5; c++ {
		mm.classes[c] = m.mirrored.WithLabelValues(route, service, strconv.Itoa(c)+"xx")
	}
	return mm
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
	if status < 100 || status >= 600 {
		return
	}
	m.response(status).Inc()
	if rm != nil {
		rm.classes[status/100].Inc()
		rm.codes.add(status)
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

// upstreamBroke counts a response whose upstream broke off mid-body: an
// upstream's failure, not the client's abort.
func (m *Metrics) upstreamBroke(service string) {
	if m == nil {
		return
	}
	m.broken.WithLabelValues(service).Inc()
}
