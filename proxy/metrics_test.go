package proxy

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testupstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// metricsGateway is a gateway recording into m, registered with reg, and
// an upstream for it.
func metricsGateway(t *testing.T) (*prometheus.Registry, *Metrics, *gateway, *testupstream.Upstream) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	g := newGatewayWithOptions(t, Options{Metrics: m})
	return reg, m, g, testupstream.Start(t)
}

func TestMetricsCountRequestsByRouteStatusAndFailure(t *testing.T) {
	_, m, g, up := metricsGateway(t)
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
		{"responses 200", m.response(200), 3},
		{"responses 501", m.response(501), 1},
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

// Redeploys must not grow the series without bound: a removed route's
// (and service's) go with the revision that removes it, and a status code
// has a series only once it was sent.
func TestMetricsOfARemovedRouteAreDeletedOnApply(t *testing.T) {
	reg, _, g, up := metricsGateway(t)
	svc := func(id string) string { return fmt.Sprintf(`{"id":%q,"name":%q,"url":%q,"retries":0}`, id, id, up.URL) }
	g.apply(revision(t, 1, []string{svc("s1"), `{"id":"gone","name":"gone","url":"http://` + closedPort(t) + `","retries":0}`},
		[]string{`{"id":"old","service_id":"s1","paths":["/old/*"]}`, `{"id":"kept","service_id":"s1","paths":["/kept/*"]}`,
			`{"id":"dead","service_id":"gone","paths":["/dead/*"]}`}))
	g.get("/old/status/200")
	g.get("/kept/status/200")
	g.get("/dead/x") // a 502 counted for service "gone"
	g.apply(revision(t, 2, []string{svc("s1")}, []string{`{"id":"kept","service_id":"s1","paths":["/kept/*"]}`}))

	series := seriesOf(t, reg)
	for _, s := range series {
		if strings.Contains(s, `route="old"`) || strings.Contains(s, `route="dead"`) || strings.Contains(s, `service="gone"`) {
			t.Errorf("series %s outlived its route or service", s)
		}
	}
	if !slices.Contains(series, `gatehouse_proxy_requests_total{class="2xx",route="kept"}`) {
		t.Errorf("the kept route's series went too: %v", series)
	}
	var codes []string
	for _, s := range series {
		if strings.HasPrefix(s, "gatehouse_proxy_responses_total{") {
			codes = append(codes, s)
		}
	}
	if want := []string{`gatehouse_proxy_responses_total{code="200"}`, `gatehouse_proxy_responses_total{code="502"}`}; !slices.Equal(codes, want) {
		t.Errorf("response series %v; want one per code sent: %v", codes, want)
	}
}

// seriesOf lists every series in reg as name{labels}, sorted.
func seriesOf(t *testing.T, reg *prometheus.Registry) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			out = append(out, mf.GetName()+"{"+strings.Join(labels, ",")+"}")
		}
	}
	slices.Sort(out)
	return out
}

func TestUpstreamBreakingOffMidBodyIsNotAClientAbort(t *testing.T) {
	_, m, g, up := metricsGateway(t)
	g.route(up.URL, "", "")
	resp, err := g.client.Get(g.base + "/fault/reset-mid-response")
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// The handler records before it cuts the connection, and the client
	// reads until the cut: the counts are in.
	if got := testutil.ToFloat64(m.aborted); got != 0 {
		t.Errorf("client aborts %v; want 0: the upstream broke off", got)
	}
	if got := testutil.ToFloat64(m.broken.WithLabelValues("s")); got != 1 {
		t.Errorf("broken upstream responses of s %v; want 1", got)
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues("r", "2xx")); got != 1 {
		t.Errorf("route r 2xx %v; want 1: the status was sent", got)
	}
}
