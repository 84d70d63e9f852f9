package forward

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/problem"
)

// newClock is a settable time for passive-health tests.
func newClock() *testenv.Clock { return testenv.NewClock(time.Unix(1_700_000_000, 0)) }

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// upstream is an httptest server that names itself in X-Upstream and
// counts its requests.
type upstream struct {
	*httptest.Server
	name string
	hits atomic.Int64
}

func newUpstream(t testing.TB, name string) *upstream {
	u := &upstream{name: name}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Upstream", name)
		w.Header().Set("X-Request-URI", r.RequestURI)
		w.Header().Set("X-Body", string(body))
		io.WriteString(w, name)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) target(t testing.TB, weight int) Target {
	return Target{URL: mustURL(t, u.URL), Weight: weight}
}

// refusedURL returns an address with nothing listening: listened on,
// then closed.
func refusedURL(t testing.TB) *url.URL {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return mustURL(t, "http://"+addr)
}

// rawUpstream accepts connections and hands each, with its first request
// read, to serve; the connection is closed when serve returns.
func rawUpstream(t testing.TB, serve func(c net.Conn)) *url.URL {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				serve(c)
			})
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-accepting
		wg.Wait()
	})
	return mustURL(t, "http://"+ln.Addr().String())
}

// blockingUpstream answers only when released or when the request is
// abandoned; arrived receives once per request that reached it.
func blockingUpstream(t testing.TB) (u *url.URL, arrived chan struct{}, release func()) {
	arrived = make(chan struct{}, 16)
	gate := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-gate:
			io.WriteString(w, "late")
		case <-r.Context().Done():
		}
	}))
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(srv.Close)
	t.Cleanup(release) // runs first: handlers return, so Close does not wait
	return mustURL(t, srv.URL), arrived, release
}

// newTestPool builds a pool closed at the end of the test.
func newTestPool(t testing.TB, cfg Config) *Pool {
	ts := NewTransports()
	p := NewPool(context.Background(), cfg, ts)
	t.Cleanup(func() {
		p.Close()
		ts.CloseIdle()
	})
	return p
}

// request builds an outgoing request; its URL's host is a placeholder
// that RoundTrip replaces.
func request(t testing.TB, ctx context.Context, method, target string, body io.Reader) *http.Request {
	t.Helper()
	r, err := http.NewRequestWithContext(ctx, method, "http://placeholder.invalid"+target, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// result is a round trip boiled down to what tests compare.
type result struct {
	status   int // the upstream's, or the contract's for a classified error
	upstream string
	code     gatehouse.Code
	message  string
	err      error
	gone     bool
}

func do(t testing.TB, p *Pool, r *http.Request) result {
	t.Helper()
	resp, tg, err := p.RoundTrip(r)
	if err == nil {
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		if tg == nil {
			t.Fatal("RoundTrip returned a response without its target")
		}
		return result{status: resp.StatusCode, upstream: resp.Header.Get("X-Upstream")}
	}
	gerr, gone := Classify(r.Context(), err)
	if gone {
		return result{gone: true, err: err}
	}
	code := gatehouse.ErrorCode(gerr)
	return result{status: statusOf(gerr), code: code, message: gatehouse.ErrorMessage(gerr), err: gerr}
}

func get(t testing.TB, p *Pool) result {
	t.Helper()
	return do(t, p, request(t, context.Background(), http.MethodGet, "/", nil))
}

// messageIsClientSafe fails t if msg carries an address or Go error text.
func messageIsClientSafe(t testing.TB, msg string) {
	t.Helper()
	for _, leak := range []string{"127.0.0.1", "dial", "tcp", "EOF", "net/http", "read:", "malformed"} {
		if strings.Contains(msg, leak) {
			t.Errorf("message %q leaks %q", msg, leak)
		}
	}
}

// statusOf maps a classified error to its status, by the one table.
func statusOf(err error) int { return problem.Status(gatehouse.ErrorCode(err)) }
