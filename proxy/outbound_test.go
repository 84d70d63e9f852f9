package proxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// The upstream's request is built in an outbound that the next request
// reuses once the exchange is over (outbound.release): these tests prove
// that no request sees another's fields or interim responses.

// TestInterimResponsesReachTheClientOfTheirOwnRequest: an upstream's 103
// reaches the client before the answer, request after request on one
// connection, whichever transport serves the upstream; a 100 the client
// did not ask for does not.
func TestInterimResponsesReachTheClientOfTheirOwnRequest(t *testing.T) {
	for _, tc := range []struct {
		desc    string
		up      *testupstream.Upstream
		service string
	}{
		{"http upstream", testupstream.Start(t), ""},
		{"https upstream", testupstream.Start(t, testupstream.WithTLS()), tlsJSON(t, map[string]any{"verify": false})},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			g := newGateway(t)
			g.route(tc.up.URL, tc.service, "")
			c := g.dial()
			for i := range 3 {
				hint := fmt.Sprintf("hint-%d", i)
				c.send("GET /status/103?set=X-Hint:" + hint + " HTTP/1.1\r\nHost: gw.example.com\r\n\r\n")
				if r := c.read("GET"); r.status != 103 || r.header.Get("X-Hint") != hint {
					t.Fatalf("request %d: got %d with X-Hint %q; want the upstream's 103 with %q", i, r.status, r.header.Get("X-Hint"), hint)
				}
				if r := c.read("GET"); r.status != 200 {
					t.Fatalf("request %d: got %d after the 103; want the upstream's 200", i, r.status)
				}
				c.send("GET /status/100 HTTP/1.1\r\nHost: gw.example.com\r\n\r\n")
				if r := c.read("GET"); r.status != 200 {
					t.Fatalf("request %d without Expect: got %d; want the 200 alone, no 100", i, r.status)
				}
			}
		})
	}
}

// TestForwardingFieldsOfConsecutiveRequestsAreEachTheirOwn: requests one
// after another on one connection, from a trusted proxy, each with other
// fields: the upstream sees each request's own forwarding fields, exactly,
// and none of an earlier request's fields.
func TestForwardingFieldsOfConsecutiveRequestsAreEachTheirOwn(t *testing.T) {
	up := testupstream.Start(t)
	g := newGatewayWithOptions(t, Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	g.route(up.URL, "", "")
	c := g.dial()
	for _, tc := range []struct {
		desc  string
		lines string
		want  map[string]string // "" for none
	}{
		{"plain", "Host: a.example\r\nX-Only-First: 1\r\n", map[string]string{
			"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": "a.example",
			"Forwarded": "for=127.0.0.1;host=a.example;proto=http", "X-Only-First": "1"}},
		{"another host, with a port", "Host: b.example:8080\r\n", map[string]string{
			"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": "b.example:8080",
			"Forwarded": `for=127.0.0.1;host="b.example:8080";proto=http`, "X-Only-First": ""}},
		{"both extended", "Host: b.example:8080\r\nX-Forwarded-For: 203.0.113.7, 198.51.100.1\r\nForwarded: for=203.0.113.7\r\n", map[string]string{
			"X-Forwarded-For": "203.0.113.7, 198.51.100.1, 127.0.0.1",
			"Forwarded":       `for=203.0.113.7, for=127.0.0.1;host="b.example:8080";proto=http`}},
		{"fields of several lines", "Host: b.example\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-For: 203.0.113.8\r\nForwarded: for=a\r\nForwarded: for=b\r\n", map[string]string{
			"X-Forwarded-For": "203.0.113.7, 203.0.113.8, 127.0.0.1",
			"Forwarded":       "for=a, for=b, for=127.0.0.1;host=b.example;proto=http"}},
		{"X-Forwarded-For alone extended", "Host: b.example\r\nX-Forwarded-For: 203.0.113.7\r\n", map[string]string{
			"X-Forwarded-For": "203.0.113.7, 127.0.0.1", "Forwarded": "for=127.0.0.1;host=b.example;proto=http"}},
		{"Forwarded alone extended", "Host: b.example\r\nForwarded: for=203.0.113.7\r\n", map[string]string{
			"X-Forwarded-For": "127.0.0.1", "Forwarded": "for=203.0.113.7, for=127.0.0.1;host=b.example;proto=http"}},
		{"the proxy's host kept", "Host: b.example\r\nX-Forwarded-Host: shop.example\r\n", map[string]string{
			"X-Forwarded-Host": "shop.example", "Forwarded": "for=127.0.0.1;host=b.example;proto=http"}},
		{"the first host again", "Host: a.example\r\n", map[string]string{
			"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": "a.example",
			"Forwarded": "for=127.0.0.1;host=a.example;proto=http", "X-Only-First": ""}},
	} {
		c.send("GET /echo HTTP/1.1\r\n" + tc.lines + "\r\n")
		r := c.read("GET")
		if r.status != 200 {
			t.Fatalf("%s: status %d: %s", tc.desc, r.status, r.body)
		}
		e := r.echo(t)
		for k, want := range tc.want {
			if got := strings.Join(e.Headers[k], ", "); got != want {
				t.Errorf("%s: upstream saw %s %q; want %q", tc.desc, k, got, want)
			}
		}
	}
}

// TestConcurrentRequestsEachForwardTheirOwnFields: many clients at once,
// each request with a host and a field of its own: every upstream request
// carries its own and no other's.
func TestConcurrentRequestsEachForwardTheirOwnFields(t *testing.T) {
	up := testupstream.Start(t, testupstream.WithNoRecord())
	g := newGateway(t)
	g.route(up.URL, "", "")
	const clients, requests = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Go(func() {
			// Not g.dial: its failures end the test's goroutine, not this one.
			c, err := net.Dial("tcp", g.addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)
			for j := range requests {
				host := fmt.Sprintf("c%d-r%d.example", i, j)
				mark := fmt.Sprintf("X-Mark-%d: %d", i, j)
				if _, err := io.WriteString(c, "GET /echo HTTP/1.1\r\nHost: "+host+"\r\n"+mark+"\r\n\r\n"); err != nil {
					errs <- err
					return
				}
				var e testupstream.Echo
				resp, err := http.ReadResponse(br, nil)
				if err == nil {
					err = json.NewDecoder(resp.Body).Decode(&e)
					io.Copy(io.Discard, resp.Body)
				}
				if err != nil || resp.StatusCode != 200 {
					errs <- fmt.Errorf("%s: %v (%v)", host, resp, err)
					return
				}
				marks := 0
				for k := range e.Headers {
					if strings.HasPrefix(k, "X-Mark-") {
						marks++
					}
				}
				got := fmt.Sprintf("%s|%s|%s|%d", strings.Join(e.Headers["X-Forwarded-Host"], ","),
					strings.Join(e.Headers["Forwarded"], ","), strings.Join(e.Headers[fmt.Sprintf("X-Mark-%d", i)], ","), marks)
				if want := fmt.Sprintf("%s|for=127.0.0.1;host=%s;proto=http|%d|1", host, host, j); got != want {
					errs <- fmt.Errorf("upstream saw %q; want %q", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestForwardedNamesEachClientAsRFC7239Says: an IPv6 node is bracketed
// and quoted, a host with a port quoted, a request without Host names
// none; built one after another in the same outbound, each its own.
func TestForwardedNamesEachClientAsRFC7239Says(t *testing.T) {
	o := &outbound{}
	for _, tc := range []struct{ remote, host, want string }{
		{"[2001:db8::1]:4711", "gw.example.com", `for="[2001:db8::1]";host=gw.example.com;proto=http`},
		{"[2001:db8::1]:4711", "", `for="[2001:db8::1]";proto=http`},
		{"192.0.2.1:4711", "", "for=192.0.2.1;proto=http"},
		{"192.0.2.1:4711", "gw.example.com:8443", `for=192.0.2.1;host="gw.example.com:8443";proto=http`},
		{"192.0.2.2:4711", "gw.example.com:8443", `for=192.0.2.2;host="gw.example.com:8443";proto=http`},
		{"[2001:db8::1]:4711", "gw.example.com", `for="[2001:db8::1]";host=gw.example.com;proto=http`},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr, r.Host = tc.remote, tc.host
		if got := strings.Join(o.outboundHeader(r, "")["Forwarded"], ", "); got != tc.want {
			t.Errorf("%s to %q: Forwarded %q; want %q", tc.remote, tc.host, got, tc.want)
		}
		clear(o.header)
	}
}
