package forward

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/h1"
	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// TestH1ClientGoneOnTheFastEngineAbortsTheUpstreamExchange proxies over
// the fast engine, whose request context registers the upstream
// connection's abort without an allocation (h1.Aborter): a client that
// goes away mid-exchange still closes the upstream connection, after a
// first request on its connection that completed and gave the place back.
func TestH1ClientGoneOnTheFastEngineAbortsTheUpstreamExchange(t *testing.T) {
	up := testupstream.Start(t)
	tr := newH1(t, up.URL, time.Minute)
	type result struct {
		aborter bool
		err     error
		took    time.Duration
	}
	results := make(chan result, 2)
	front := &h1.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, aborter := r.Context().(h1.Aborter)
		start := time.Now()
		resp, err := tr.RoundTrip(newReq(t, r.Context(), "GET", up.URL+r.URL.Path, nil))
		if err == nil {
			readAll(t, resp)
			w.Write([]byte("ok"))
		}
		results <- result{aborter, err, time.Since(start)}
	}), ReadHeaderTimeout: 5 * time.Second}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go front.Serve(l)
	t.Cleanup(func() { front.Close() })

	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("GET /ok HTTP/1.1\r\nHost: front\r\n\r\n"))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if r := <-results; r.err != nil || !r.aborter {
		t.Fatalf("first request: got error %v, context an h1.Aborter %v; want no error, true", r.err, r.aborter)
	}

	c.Write([]byte("GET /fault/stall HTTP/1.1\r\nHost: front\r\n\r\n"))
	time.Sleep(50 * time.Millisecond) // the request reaches the upstream
	c.Close()
	select {
	case r := <-results:
		if r.err == nil {
			t.Fatal("got a response from a stalled upstream; want the exchange aborted")
		}
		if f := classify(context.Background(), r.err); f != failCanceled {
			t.Errorf("got failure %d (%v); want failCanceled: the client went away", f, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the exchange went on after the client went away")
	}
	if n := tr.idleLen(); n != 0 {
		t.Errorf("got %d idle connections; want the aborted one closed", n)
	}
}

// TestH1WatchOfTheFastEnginesContextAllocatesNothing pins the two
// allocations of context.AfterFunc saved on every exchange.
func TestH1WatchOfTheFastEnginesContextAllocatesNothing(t *testing.T) {
	ctxs := make(chan context.Context, 1)
	release := make(chan struct{})
	front := &h1.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctxs <- r.Context()
		<-release
	}), ReadHeaderTimeout: 5 * time.Second}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go front.Serve(l)
	t.Cleanup(func() { front.Close() })
	defer close(release)
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("GET / HTTP/1.1\r\nHost: front\r\n\r\n"))
	ctx := <-ctxs
	pc := &h1Conn{abort: func() {}}
	if n := testing.AllocsPerRun(100, func() {
		pc.watch(ctx)
		if !pc.unwatch() {
			t.Fatal("stop got false on a live context; want true")
		}
	}); n != 0 {
		t.Errorf("got %v allocations per watch; want 0", n)
	}
}
