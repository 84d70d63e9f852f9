package forward

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestTransportsAreSharedByEqualSettings(t *testing.T) {
	base := Config{Targets: []Target{{URL: mustURL(t, "http://10.0.0.1:80/a"), Weight: 1}}, ConnectTimeout: time.Second, ReadTimeout: 2 * time.Second}
	tests := []struct {
		desc     string
		change   func(c *Config)
		wantSame bool
	}{
		{desc: "same settings, other pool", change: func(c *Config) {}, wantSame: true},
		{desc: "other base path and weight, same host", change: func(c *Config) {
			c.Targets = []Target{{URL: mustURL(t, "http://10.0.0.1:80/b"), Weight: 9}}
		}, wantSame: true},
		{desc: "other retries and passive health", change: func(c *Config) { c.Retries, c.MaxFails = 3, 9 }, wantSame: true},
		{desc: "other read timeout", change: func(c *Config) { c.ReadTimeout = 3 * time.Second }},
		{desc: "other connect timeout", change: func(c *Config) { c.ConnectTimeout = 3 * time.Second }},
		{desc: "other host", change: func(c *Config) { c.Targets = []Target{{URL: mustURL(t, "http://10.0.0.2:80/a"), Weight: 1}} }},
		{desc: "other scheme", change: func(c *Config) { c.Targets = []Target{{URL: mustURL(t, "https://10.0.0.1:80/a"), Weight: 1}} }},
		{desc: "TLS settings on an http target, which does not speak TLS", change: func(c *Config) { c.TLS = mustTLS(t, TLSSettings{ServerName: "a.example"}) }, wantSame: true},
	}
	https := []Target{{URL: mustURL(t, "https://10.0.0.1:443/a"), Weight: 1}}
	tests = append(tests, []struct {
		desc     string
		change   func(c *Config)
		wantSame bool
	}{
		{desc: "https, equal TLS settings compiled apart", change: func(c *Config) {
			c.Targets, c.TLS = https, mustTLS(t, TLSSettings{ServerName: "a.example"})
		}, wantSame: true},
		{desc: "https, other server name", change: func(c *Config) { c.Targets, c.TLS = https, mustTLS(t, TLSSettings{ServerName: "b.example"}) }},
		{desc: "https, verification off", change: func(c *Config) {
			c.Targets, c.TLS = https, mustTLS(t, TLSSettings{ServerName: "a.example", SkipVerify: true})
		}},
		{desc: "https, other minimum version", change: func(c *Config) {
			c.Targets, c.TLS = https, mustTLS(t, TLSSettings{ServerName: "a.example", MinVersion: tls.VersionTLS13})
		}},
	}...)
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			ts := NewTransports()
			from := base
			if strings.HasPrefix(tt.desc, "https") {
				from.Targets, from.TLS = https, mustTLS(t, TLSSettings{ServerName: "a.example"})
			}
			old := NewPool(context.Background(), from, ts)
			cfg := from
			tt.change(&cfg)
			next := NewPool(context.Background(), cfg, ts) // a redeploy: build the next, then close the old
			old.Close()
			if same := old.targets[0].rt == next.targets[0].rt; same != tt.wantSame {
				t.Errorf("got shared %v; want %v", same, tt.wantSame)
			}
			wantLeft := 1
			if n := len(ts.m); n != wantLeft {
				t.Errorf("got %d transports held after closing the old pool; want %d", n, wantLeft)
			}
			next.Close()
			next.Close() // idempotent
			if n := len(ts.m); n != 0 {
				t.Errorf("got %d transports after closing every pool; want 0", n)
			}
		})
	}
}

func TestTransportIsTuned(t *testing.T) {
	p := newTestPool(t, Config{Targets: []Target{
		{URL: mustURL(t, "http://10.0.0.1"), Weight: 1},
		{URL: mustURL(t, "https://10.0.0.1"), Weight: 1},
	}, ReadTimeout: 7 * time.Second})

	h1, ok := p.targets[0].rt.(*h1Transport)
	if !ok {
		t.Fatalf("http upstream got %T; want *h1Transport", p.targets[0].rt)
	}
	if h1.addr != "10.0.0.1:80" {
		t.Errorf("dials %q; want the default port, 10.0.0.1:80", h1.addr)
	}
	if h1.read != 7*time.Second {
		t.Errorf("read timeout %v; want 7s", h1.read)
	}

	nt, ok := p.targets[1].rt.(netHTTPTransport)
	if !ok {
		t.Fatalf("https upstream got %T; want netHTTPTransport", p.targets[1].rt)
	}
	tr := nt.Transport
	switch {
	case tr.Proxy != nil:
		t.Error("Proxy is set; want upstreams addressed directly")
	case tr.MaxIdleConnsPerHost != maxIdleConnsPerHost, tr.IdleConnTimeout != idleConnTimeout:
		t.Errorf("idle pool %d/%v; want %d/%v", tr.MaxIdleConnsPerHost, tr.IdleConnTimeout, maxIdleConnsPerHost, idleConnTimeout)
	case !tr.DisableCompression:
		t.Error("compression enabled; want bodies passed through as encoded")
	case tr.ForceAttemptHTTP2:
		t.Error("HTTP/2 attempted; want HTTP/1.1")
	case tr.ResponseHeaderTimeout != 7*time.Second:
		t.Errorf("ResponseHeaderTimeout %v; want the read timeout, 7s", tr.ResponseHeaderTimeout)
	}
}

func TestHTTPSUpstream(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Proto", r.Proto)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	defer srv.Close()
	tests := []struct {
		desc       string
		trusted    bool
		wantStatus int
	}{
		{desc: "trusted certificate", trusted: true, wantStatus: 200},
		{desc: "untrusted certificate is a connection failure", trusted: false, wantStatus: 502},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			ts := NewTransports()
			ts.roots = x509.NewCertPool()
			if tt.trusted {
				ts.roots.AddCert(srv.Certificate())
			}
			p := NewPool(context.Background(), Config{Targets: []Target{{URL: mustURL(t, srv.URL), Weight: 1}}}, ts)
			defer p.Close()
			resp, _, err := p.RoundTrip(request(t, context.Background(), "GET", "/", nil))
			if err != nil {
				gerr, _ := Classify(context.Background(), err)
				if got := statusOf(gerr); got != tt.wantStatus {
					t.Fatalf("got %d (%v); want %d", got, err, tt.wantStatus)
				}
				if f := classify(context.Background(), err); !failures[f].retryable {
					t.Errorf("a failed handshake is not retryable; want it retried like a refused dial")
				}
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("got %d; want %d", resp.StatusCode, tt.wantStatus)
			}
			if got := resp.Header.Get("X-Proto"); got != "HTTP/1.1" {
				t.Errorf("upstream spoke %s; want HTTP/1.1", got)
			}
		})
	}
}

func mustTLS(t *testing.T, s TLSSettings) *TLS {
	t.Helper()
	c, err := NewTLS(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
