package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkOverloadAtTwiceUpstreamCapacity offers an upstream twice the
// requests it can serve and reports what the clients see, without a
// policy and with each of the two overload policies:
//
//	go test -run '^$' -bench OverloadAtTwice -benchtime 1x ./proxy/
//
// The upstream serves overloadSlots requests at a time, each taking
// overloadServiceTime, and queues the rest: a capacity of 400 req/s. The
// load is open loop: a request starts every 1/800 s whatever became of
// the earlier ones, as independent clients send them, and latency is
// counted from when it was due to start, so that a slow generator cannot
// hide queueing. Each run offers load for overloadDuration, then waits
// for every answer. Metrics:
//
//	accepted/s        answered 200, per second from the first request to the last 200
//	accepted-p50-ms   latency of those
//	accepted-p99-ms
//	shed-fraction     of requests answered 503 by the gateway
//	shed-p99-ms       latency of those
//	other-fraction    of requests answered otherwise, or failed
//
// Without a policy every request is accepted, and the queue, growing by
// the excess every second, is each one's latency. With a policy the
// excess is shed at once and the accepted latency stays near the service
// time. b.N is ignored: one run is one load test of a few seconds.
func BenchmarkOverloadAtTwiceUpstreamCapacity(b *testing.B) {
	for _, bc := range []struct{ name, policy string }{
		{"none", ""},
		{"concurrency-limit", `{"name":"cap","type":"concurrency-limit","config":{"max":8}}`},
		{"adaptive-concurrency", `{"name":"shed","type":"adaptive-concurrency","config":{}}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			up := saturableUpstream(b)
			g := newGateway(b)
			f := newPolicyFixture(b, up)
			if bc.policy != "" {
				f.policy(bc.policy)
			}
			g.apply(f.rev)
			var res overloadResult
			for range b.N {
				res = offerLoad(b, g.base+"/", 2*overloadCapacity, overloadDuration)
			}
			b.ReportMetric(0, "ns/op") // one run is a load test, not an op
			b.ReportMetric(res.acceptedPerSecond, "accepted/s")
			b.ReportMetric(ms(res.accepted, 0.50), "accepted-p50-ms")
			b.ReportMetric(ms(res.accepted, 0.99), "accepted-p99-ms")
			b.ReportMetric(float64(len(res.shed))/float64(res.total), "shed-fraction")
			b.ReportMetric(ms(res.shed, 0.99), "shed-p99-ms")
			b.ReportMetric(float64(res.other)/float64(res.total), "other-fraction")
		})
	}
}

const (
	overloadSlots       = 4
	overloadServiceTime = 10 * time.Millisecond
	overloadCapacity    = overloadSlots * int(time.Second/overloadServiceTime) // req/s
	overloadDuration    = 2 * time.Second
)

// saturableUpstream serves overloadSlots requests at a time, each taking
// overloadServiceTime; the others wait their turn, as in an upstream's
// accept queue or worker pool.
func saturableUpstream(b *testing.B) string {
	slots := make(chan struct{}, overloadSlots)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case slots <- struct{}{}:
		case <-r.Context().Done():
			return
		}
		time.Sleep(overloadServiceTime)
		<-slots
		io.WriteString(w, "ok\n")
	}))
	b.Cleanup(srv.Close)
	return srv.URL
}

type overloadResult struct {
	total             int
	accepted, shed    []time.Duration
	other             int
	acceptedPerSecond float64
}

// offerLoad starts rate requests a second for d, open loop, and waits for
// them all.
func offerLoad(b *testing.B, url string, rate int, d time.Duration) overloadResult {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4 * rate}, Timeout: 60 * time.Second}
	defer client.CloseIdleConnections()
	n := int(d.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	type outcome struct {
		status  int
		latency time.Duration
		end     time.Time
	}
	outcomes := make([]outcome, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(due))
		wg.Go(func() {
			resp, err := client.Get(url)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				outcomes[i].status = resp.StatusCode
			}
			outcomes[i].end = time.Now()
			outcomes[i].latency = outcomes[i].end.Sub(due)
		})
	}
	wg.Wait()
	res := overloadResult{total: n}
	var last time.Time
	for _, o := range outcomes {
		switch o.status {
		case http.StatusOK:
			res.accepted = append(res.accepted, o.latency)
			if o.end.After(last) {
				last = o.end
			}
		case http.StatusServiceUnavailable:
			res.shed = append(res.shed, o.latency)
		default:
			res.other++
		}
	}
	if len(res.accepted) > 0 {
		res.acceptedPerSecond = float64(len(res.accepted)) / last.Sub(start).Seconds()
	}
	if res.other > 0 {
		b.Logf("%d of %d requests neither accepted nor shed", res.other, n)
	}
	return res
}

// ms returns the q-quantile of ds in milliseconds, 0 if ds is empty.
func ms(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return float64(ds[int(q*float64(len(ds)-1))]) / float64(time.Millisecond)
}
