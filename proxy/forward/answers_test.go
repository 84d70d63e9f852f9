package forward

import (
	"context"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func TestStatusOutsideHTTPsRangeIsAnInvalidAnswerOnEveryTransport(t *testing.T) {
	for _, code := range []int{999, 600, 99} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if code < 100 {
					// net/http's server refuses to write it: hijack.
					c, bw, _ := w.(http.Hijacker).Hijack()
					defer c.Close()
					bw.WriteString("HTTP/1.1 0" + strconv.Itoa(code) + " Odd\r\nContent-Length: 0\r\n\r\n")
					bw.Flush()
					return
				}
				w.WriteHeader(code)
			})
			overEveryTransport(t, h, func(srv string, p *Pool) {
				r := do(t, p, request(t, context.Background(), "GET", "/", nil))
				if r.status != 502 || r.code == "" {
					t.Errorf("%s: got %d (%v); want a 502 for a status outside 100-599", srv, r.status, r.err)
				}
				messageIsClientSafe(t, r.message)
			})
		})
	}
}

// TestFieldsTheUpstreamsConnectionNamesAreDroppedOnEveryTransport: with
// close beside them, the names reach no caller of the pool, over http
// (the h1 transport) or https (net/http's).
func TestFieldsTheUpstreamsConnectionNamesAreDroppedOnEveryTransport(t *testing.T) {
	for _, head := range []string{
		"HTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\nX-Secret: hop\r\nX-Public: end\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nConnection: X-Secret, close\r\nX-Secret: hop\r\nX-Public: end\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\nConnection: close\nConnection: x-secret\nX-Secret: hop\nX-Public: end\nContent-Length: 2\n\nok",
	} {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, bw, _ := w.(http.Hijacker).Hijack()
			defer c.Close()
			bw.WriteString(head)
			bw.Flush()
		})
		overEveryTransport(t, h, func(srv string, p *Pool) {
			resp, _, err := p.RoundTrip(request(t, context.Background(), "GET", "/", nil))
			if err != nil {
				t.Fatalf("%s: %v", srv, err)
			}
			resp.Body.Close()
			if v := resp.Header.Get("X-Secret"); v != "" {
				t.Errorf("%s %q: X-Secret, named by Connection, came through: %q", srv, head[:30], v)
			}
			if v := resp.Header.Get("X-Public"); v != "end" {
				t.Errorf("%s: got X-Public %q; want it kept", srv, v)
			}
		})
	}
}

func TestHeadRecorderStopsAtTheFinalHead(t *testing.T) {
	for _, tc := range []struct {
		desc, in, want string
		upgraded       bool
	}{
		{"one head, body after", "HTTP/1.1 200 OK\r\nA: 1\r\n\r\nbody\r\n\r\n", "HTTP/1.1 200 OK\r\nA: 1\r\n\r\n", false},
		{"1xx skipped", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nB: 2\r\n\r\nx", "HTTP/1.1 201 Created\r\nB: 2\r\n\r\n", false},
		{"bare LF", "HTTP/1.1 200 OK\nA: 1\n\nbody", "HTTP/1.1 200 OK\nA: 1\n\n", false},
		{"101 is final, and the end of HTTP", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n\x81\x00", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			c := &headRecorder{recording: true}
			for i := range len(tc.in) { // byte by byte: a head split anywhere
				c.mu.Lock()
				if c.recording {
					c.take([]byte{tc.in[i]})
				}
				c.mu.Unlock()
			}
			if got := string(c.finalHead(true)); got != tc.want {
				t.Errorf("got head %q; want %q", got, tc.want)
			}
			if c.upgraded != tc.upgraded {
				t.Errorf("got upgraded %v; want %v", c.upgraded, tc.upgraded)
			}
		})
	}
}

// TestHeadTooLongToCheckForConnectionNamesIsInvalidOverNetHTTP: a head
// that says close and is longer than gatehouse keeps a copy of cannot
// have the fields its Connection names dropped when net/http's transport
// read it (https): it is refused (502). The h1 transport reads the names
// itself, from a head of any length: it passes them on dropped. Without
// close it passes on both.
func TestHeadTooLongToCheckForConnectionNamesIsInvalidOverNetHTTP(t *testing.T) {
	pad := "X-Pad: " + strings.Repeat("p", maxRecording) + "\r\n"
	for _, tc := range []struct {
		connection      string
		wantH1, wantTLS int
	}{
		{"Connection: close, X-Secret\r\n", 200, 502},
		{"", 200, 200},
	} {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, bw, _ := w.(http.Hijacker).Hijack()
			defer c.Close()
			bw.WriteString("HTTP/1.1 200 OK\r\n" + pad + tc.connection + "X-Secret: hop\r\nContent-Length: 2\r\n\r\nok")
			bw.Flush()
		})
		overEveryTransport(t, h, func(srv string, p *Pool) {
			want := tc.wantH1
			if strings.HasPrefix(srv, "https:") {
				want = tc.wantTLS
			}
			resp, _, err := p.RoundTrip(request(t, context.Background(), "GET", "/", nil))
			var status int
			if err == nil {
				status = resp.StatusCode
				if v := resp.Header.Get("X-Secret"); tc.connection != "" && v != "" {
					t.Errorf("%s: X-Secret, named by Connection, came through: %q", srv, v)
				}
				resp.Body.Close()
			} else {
				gerr, _ := Classify(context.Background(), err)
				status = statusOf(gerr)
			}
			if status != want {
				t.Errorf("%s %q: got %d (%v); want %d", srv, tc.connection, status, err, want)
			}
		})
	}
}

// overEveryTransport runs check against a pool for an upstream serving h
// over http (gatehouse's h1 transport) and over https (net/http's), each
// named by its URL.
func overEveryTransport(t *testing.T, h http.Handler, check func(url string, p *Pool)) {
	t.Helper()
	plain := httptest.NewServer(h)
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(h)
	defer tlsSrv.Close()
	for _, srv := range []*httptest.Server{plain, tlsSrv} {
		ts := NewTransports()
		ts.roots = x509.NewCertPool()
		ts.roots.AddCert(tlsSrv.Certificate())
		p := NewPool(context.Background(), Config{Targets: []Target{{URL: mustURL(t, srv.URL), Weight: 1}}}, ts)
		check(srv.URL, p)
		p.Close()
	}
}
