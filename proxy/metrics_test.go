package proxy

import (
	"context"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testupstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetricsCountRequestsByRouteStatusAndFailure(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	g := newGateway(t)
	g.handler.opts.Metrics = m
	up := testupstream.Start(t)
	g.route(up.URL, `,"retries":0`, "")
	for range 3 {
		g.get("/status/200")
	}
	g.get("/status/404")
	g.do("BREW", "/x", nil)
	g.handler.Apply(context.Background(), revision(t, 2, []string{`{"id":"s","name":"s","url":"http://` + closedPort(t) + `","retries":0}`},
		[]string{`{"id":"r","service_id":"s","paths":["/*"]}`}))
	g.get("/echo")
	for _, tc := range []struct {
		desc string
		c    prometheus.Collector
		want float64
	}{
		{"route r 2xx", m.requests.WithLabelValues("r", "2xx"), 3},
		{"route r 4xx", m.requests.WithLabelValues("r", "4xx"), 1},
		{"route r 5xx (the 502)", m.requests.WithLabelValues("r", "5xx"), 1},
		{"unmatched 5xx (the 501)", m.requests.WithLabelValues("", "5xx"), 1},
		{"responses 200", m.responses[200], 3},
		{"responses 501", m.responses[501], 1},
		{"upstream failures", m.failures.WithLabelValues("s", "502"), 1},
		{"revision", m.revision, 2},
	} {
		if got := testutil.ToFloat64(tc.c); got != tc.want {
			t.Errorf("%s: got %v; want %v", tc.desc, got, tc.want)
		}
	}
	if n := testutil.CollectAndCount(m.duration); n == 0 {
		t.Error("no duration histogram series")
	}
}
