package audit

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type counter struct{ n atomic.Int64 }

func (c *counter) Inc() { c.n.Add(1) }

func TestRecorderAggregatesPerRouteOperationStatusAndRule(t *testing.T) {
	rc := NewRecorder(RecorderOptions{})
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for _, f := range []Finding{
		{Rule: AllowMissing, RouteID: "a", Status: 405, RequestID: "1", Path: "/p", Method: "GET", Detail: "d1", At: t0},
		{Rule: AllowMissing, RouteID: "a", Status: 405, RequestID: "2", Path: "/q", Method: "PUT", Detail: "d2", At: t0.Add(time.Minute)},
		{Rule: AllowMissing, RouteID: "b", Status: 405, RequestID: "3", At: t0},
		{Rule: LocationMissing, RouteID: "a", Status: 201, RequestID: "4", At: t0},
	} {
		rc.Record(&f)
	}
	all := rc.Entries(Filter{})
	if len(all) != 3 {
		t.Fatalf("got %d entries; want 3", len(all))
	}
	e := rc.Entries(Filter{RouteID: "a", Rule: AllowMissing})
	if len(e) != 1 || e[0].Count != 2 || !e[0].FirstSeen.Equal(t0) || !e[0].LastSeen.Equal(t0.Add(time.Minute)) ||
		e[0].Sample.RequestID != "2" || e[0].Sample.Path != "/q" || e[0].Severity != Error {
		t.Fatalf("got %+v; want count 2, first and last seen, the latest sample", e)
	}
	if e := rc.Entries(Filter{Severity: Warning}); len(e) != 1 || e[0].Rule != LocationMissing {
		t.Fatalf("severity filter: got %+v", e)
	}
	if e := rc.Entries(Filter{Status: 405}); len(e) != 2 {
		t.Fatalf("status filter: got %d entries; want 2", len(e))
	}
}

func TestRecorderFloodOfDistinctFindingsStaysWithinTheCapAndIsCounted(t *testing.T) {
	dropped := &counter{}
	series := map[Key]bool{}
	var mu sync.Mutex
	rc := NewRecorder(RecorderOptions{MaxEntries: 100, Dropped: dropped, Counter: func(k Key, _ Severity) Counter {
		mu.Lock()
		series[k] = true
		mu.Unlock()
		return &counter{}
	}})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2500 {
				rc.Record(&Finding{Rule: ErrorWithoutBody, RouteID: "r" + strconv.Itoa(w*2500+i), Status: 500, At: time.Now()})
			}
		}()
	}
	wg.Wait()
	if n := rc.Len(); n != 100 {
		t.Fatalf("%d entries; want the cap, 100", n)
	}
	if len(series) != 100 {
		t.Fatalf("%d metric series; want 100", len(series))
	}
	if rc.Dropped() != 9900 || dropped.n.Load() != 9900 {
		t.Fatalf("dropped %d (metric %d); want 9900", rc.Dropped(), dropped.n.Load())
	}
	// A kept key still counts.
	k := rc.Entries(Filter{})[0]
	rc.Record(&Finding{Rule: k.Rule, RouteID: k.RouteID, Status: k.Status, At: time.Now()})
	if e := rc.Entries(Filter{RouteID: k.RouteID}); e[0].Count != 2 || rc.Dropped() != 9900 {
		t.Fatalf("kept key: count %d, dropped %d; want 2 and 9900", e[0].Count, rc.Dropped())
	}
}
