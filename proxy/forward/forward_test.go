package forward

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// oneShot is a body that cannot be replayed: NewRequest leaves GetBody nil.
type oneShot struct{ io.Reader }

func TestRetriesOnlyReplayableRequestsOnOtherTargets(t *testing.T) {
	tests := []struct {
		desc       string
		method     string
		body       string // "" none; otherwise sent
		replayable bool   // body with GetBody
		trailer    bool   // the request announces a trailer
		retries    int
		wantStatus int
		wantOKHits int64
	}{
		{desc: "GET retried on the other target", method: "GET", retries: 1, wantStatus: 200, wantOKHits: 1},
		{desc: "GET without retries fails", method: "GET", retries: 0, wantStatus: 502},
		{desc: "HEAD retried", method: "HEAD", retries: 1, wantStatus: 200, wantOKHits: 1},
		{desc: "DELETE retried", method: "DELETE", retries: 1, wantStatus: 200, wantOKHits: 1},
		{desc: "PUT with a replayable body retried, body intact", method: "PUT", body: "payload", replayable: true, retries: 1, wantStatus: 200, wantOKHits: 1},
		{desc: "PUT with a replayable body and a trailer not retried", method: "PUT", body: "payload", replayable: true, trailer: true, retries: 1, wantStatus: 502},
		{desc: "PUT with a one-shot body not retried", method: "PUT", body: "payload", retries: 1, wantStatus: 502},
		{desc: "POST not retried", method: "POST", body: "payload", retries: 1, wantStatus: 502},
		{desc: "POST with a replayable body still not retried", method: "POST", body: "payload", replayable: true, retries: 1, wantStatus: 502},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			ok := newUpstream(t, "ok")
			// Equal weights: a fresh pool tries the refused target first.
			p := newTestPool(t, Config{Targets: []Target{{URL: refusedURL(t), Weight: 1}, ok.target(t, 1)}, Retries: tt.retries})
			var body io.Reader
			switch {
			case tt.body != "" && tt.replayable:
				body = strings.NewReader(tt.body)
			case tt.body != "":
				body = oneShot{strings.NewReader(tt.body)}
			}
			r := request(t, context.Background(), tt.method, "/", body)
			if tt.trailer {
				r.Trailer = http.Header{"X-Checksum": nil}
			}
			if tt.replayable != (r.GetBody != nil) && tt.body != "" {
				t.Fatalf("test setup: GetBody set = %v; want %v", r.GetBody != nil, tt.replayable)
			}
			resp, _, err := p.RoundTrip(r)
			status := 0
			if err == nil {
				status = resp.StatusCode
				if got := resp.Header.Get("X-Body"); got != tt.body {
					t.Errorf("upstream got body %q; want %q", got, tt.body)
				}
				resp.Body.Close()
			} else {
				gerr, _ := Classify(r.Context(), err)
				status = statusOf(gerr)
				if errors.Unwrap(gerr) == nil {
					t.Errorf("classified error lost its cause")
				}
			}
			if status != tt.wantStatus {
				t.Errorf("got status %d (%v); want %d", status, err, tt.wantStatus)
			}
			if n := ok.hits.Load(); n != tt.wantOKHits {
				t.Errorf("healthy target got %d requests; want %d", n, tt.wantOKHits)
			}
		})
	}
}

func TestRetriesNeverRepeatATarget(t *testing.T) {
	p := newTestPool(t, Config{Targets: []Target{{URL: refusedURL(t), Weight: 1}}, Retries: 3})
	r := get(t, p)
	if r.status != http.StatusBadGateway {
		t.Errorf("got status %d (%v); want 502: the one target's failure, not 503", r.status, r.err)
	}
	if got := r.err.Error(); !strings.Contains(got, "attempt 1:") {
		t.Errorf("got %q; want the first and only attempt", got)
	}
}

func TestBasePathIsPrefixed(t *testing.T) {
	tests := []struct {
		desc     string
		base     string // target URL's path
		target   string // request target
		wantPath string
		wantRaw  string
		wantURI  string // what the upstream sees
	}{
		{desc: "no base", base: "", target: "/x", wantPath: "/x", wantURI: "/x"},
		{desc: "root base", base: "/", target: "/x", wantPath: "/x", wantURI: "/x"},
		{desc: "base", base: "/base", target: "/x", wantPath: "/base/x", wantURI: "/base/x"},
		{desc: "base with trailing slash", base: "/base/", target: "/x", wantPath: "/base/x", wantURI: "/base/x"},
		{desc: "query kept", base: "/base", target: "/x?q=1&r=%2F", wantPath: "/base/x", wantURI: "/base/x?q=1&r=%2F"},
		{desc: "escaped slash in the path kept", base: "/base", target: "/a%2Fb", wantPath: "/base/a/b", wantRaw: "/base/a%2Fb", wantURI: "/base/a%2Fb"},
		{desc: "escaped slash in the base kept", base: "/b%2Fc", target: "/x", wantPath: "/b/c/x", wantRaw: "/b%2Fc/x", wantURI: "/b%2Fc/x"},
		{desc: "escaped slashes in both", base: "/b%2Fc/", target: "/a%2Fb", wantPath: "/b/c/a/b", wantRaw: "/b%2Fc/a%2Fb", wantURI: "/b%2Fc/a%2Fb"},
		{desc: "trailing slash of the request kept", base: "/base", target: "/", wantPath: "/base/", wantURI: "/base/"},
	}
	up := newUpstream(t, "up")
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			p := newTestPool(t, Config{Targets: []Target{{URL: mustURL(t, up.URL+tt.base), Weight: 1}}})
			r := request(t, context.Background(), "GET", tt.target, nil)
			resp, _, err := p.RoundTrip(r)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if r.URL.Path != tt.wantPath || r.URL.RawPath != tt.wantRaw {
				t.Errorf("got Path %q RawPath %q; want %q %q", r.URL.Path, r.URL.RawPath, tt.wantPath, tt.wantRaw)
			}
			if got := resp.Header.Get("X-Request-URI"); got != tt.wantURI {
				t.Errorf("upstream saw %q; want %q", got, tt.wantURI)
			}
		})
	}
}

func TestRetryRecomputesThePathForTheNextTarget(t *testing.T) {
	ok := newUpstream(t, "ok")
	refused := refusedURL(t)
	refused.Path = "/first"
	p := newTestPool(t, Config{Targets: []Target{{URL: refused, Weight: 1}, {URL: mustURL(t, ok.URL+"/second"), Weight: 1}}, Retries: 1})
	resp, tg, err := p.RoundTrip(request(t, context.Background(), "GET", "/x", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-URI"); got != "/second/x" {
		t.Errorf("upstream saw %q; want /second/x", got)
	}
	if tg.URL.Path != "/second" {
		t.Errorf("got target %v; want the one that answered", tg.URL)
	}
}

func TestNoLiveTargetIs503(t *testing.T) {
	p := newTestPool(t, Config{Targets: []Target{{URL: mustURL(t, "http://10.0.0.1"), Weight: 0}, {URL: nil, Weight: 5}}})
	_, tg, err := p.RoundTrip(request(t, context.Background(), "GET", "/", nil))
	if !errors.Is(err, ErrNoHealthyTarget) || tg != nil {
		t.Fatalf("got %v, target %v; want ErrNoHealthyTarget and no target", err, tg)
	}
	if d, ok := RetryAfter(err); !ok || d != noTargetRetryAfter {
		t.Errorf("got Retry-After %v %v; want %v", d, ok, noTargetRetryAfter)
	}
}

func TestResetIsRetriedButTimeoutIsNot(t *testing.T) {
	tests := []struct {
		desc       string
		first      func(t *testing.T) *url.URL
		wantStatus int
		wantOKHits int64
	}{
		{desc: "reset before the response: retried", first: func(t *testing.T) *url.URL {
			return rawUpstream(t, func(c net.Conn) { c.(*net.TCPConn).SetLinger(0) })
		}, wantStatus: 200, wantOKHits: 1},
		{desc: "read timeout: not retried", first: func(t *testing.T) *url.URL {
			u, _, _ := blockingUpstream(t)
			return u
		}, wantStatus: 504},
		{desc: "invalid answer: not retried", first: func(t *testing.T) *url.URL {
			return rawUpstream(t, func(c net.Conn) { io.WriteString(c, "not http\r\n\r\n") })
		}, wantStatus: 502},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			ok := newUpstream(t, "ok")
			p := newTestPool(t, Config{Targets: []Target{{URL: tt.first(t), Weight: 1}, ok.target(t, 1)}, Retries: 1, ReadTimeout: 50 * time.Millisecond})
			if r := get(t, p); r.status != tt.wantStatus {
				t.Errorf("got status %d (%v); want %d", r.status, r.err, tt.wantStatus)
			}
			if n := ok.hits.Load(); n != tt.wantOKHits {
				t.Errorf("second target got %d requests; want %d", n, tt.wantOKHits)
			}
		})
	}
}
