package forward

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

// TestH1ResponseFramingAsRFC9112Says: what the h1 transport makes of
// each response an upstream may send (RFC 9112 §6.3): the body it reads,
// the fields it passes on, and whether the connection serves another
// request; or a 502 for a response that is not one to relay.
func TestH1ResponseFramingAsRFC9112Says(t *testing.T) {
	long := strings.Repeat("a", 6000) // past the connection's 4 KiB buffer
	for _, tc := range []struct {
		name    string
		method  string
		resp    string
		close   bool // the upstream closes after the response
		want502 bool
		body    string
		fields  map[string][]string // nil: must be absent
		trailer map[string]string
		reused  bool
	}{
		{name: "a Content-Length body, and the connection kept",
			resp: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
			body: "hello", fields: map[string][]string{"Content-Type": {"text/plain"}, "Content-Length": {"5"}}, reused: true},
		{name: "a chunked body, its trailer in resp.Trailer",
			resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\nX-Sum: 42\r\n\r\n",
			body: "hello", fields: map[string][]string{"Transfer-Encoding": nil, "Trailer": nil}, trailer: map[string]string{"X-Sum": "42"}, reused: true},
		{name: "Transfer-Encoding with Content-Length is chunked, and the connection ends",
			resp: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
			body: "hello", fields: map[string][]string{"Content-Length": nil}},
		{name: "neither: the body runs to the close",
			resp: "HTTP/1.1 200 OK\r\n\r\nhello", close: true, body: "hello"},
		{name: "HTTP/1.0 without keep-alive ends the connection",
			resp: "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello", body: "hello"},
		{name: "HTTP/1.0 with keep-alive keeps it",
			resp: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello", body: "hello", reused: true},
		{name: "a response to HEAD has no body, whatever its length",
			method: "HEAD", resp: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", fields: map[string][]string{"Content-Length": {"5"}}, reused: true},
		{name: "a 204 has no body",
			resp: "HTTP/1.1 204 No Content\r\n\r\n", reused: true},
		{name: "a 304 has no body, whatever its length",
			resp: "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", reused: true},
		{name: "the fields Connection: close names are dropped with it",
			resp:   "HTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\nX-Public: 2\r\nContent-Length: 2\r\n\r\nok",
			body:   "ok",
			fields: map[string][]string{"Connection": nil, "X-Secret": nil, "X-Public": {"2"}}},
		{name: "a head longer than the connection's buffer",
			resp: "HTTP/1.1 200 OK\r\nX-Long: " + long + "\r\nset-cookie: a\r\nSet-Cookie: b\r\nContent-Length: 2\r\n\r\nok",
			body: "ok", fields: map[string][]string{"X-Long": {long}, "Set-Cookie": {"a", "b"}}, reused: true},
		{name: "obsolete line folding is 502",
			resp: "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n", want502: true},
		{name: "a transfer coding other than chunked is 502",
			resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", want502: true},
		{name: "Transfer-Encoding on HTTP/1.0 is 502",
			resp: "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", want502: true},
		{name: "Content-Lengths that differ are 502",
			resp: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nok", want502: true},
		{name: "an invalid Content-Length is 502 even without a body",
			resp: "HTTP/1.1 304 Not Modified\r\nContent-Length: x\r\n\r\n", want502: true},
		{name: "a version other than HTTP/1.x is 502",
			resp: "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", want502: true},
		{name: "a head cut short is 502",
			resp: "HTTP/1.1 200 OK\r\nContent-Le", close: true, want502: true},
		{name: "a space before a field's colon is 502",
			resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\nContent-Length: 0\r\n\r\n", want502: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := rawUpstream(t, func(c net.Conn) {
				io.WriteString(c, tc.resp)
				if !tc.close {
					io.Copy(io.Discard, c) // until the transport closes it
				}
			})
			tr := newH1(t, u.String(), 5*time.Second)
			method := tc.method
			if method == "" {
				method = "GET"
			}
			resp, err := tr.RoundTrip(newReq(t, context.Background(), method, u.String()+"/", nil))
			if tc.want502 {
				gerr, _ := Classify(context.Background(), err)
				if err == nil || statusOf(gerr) != 502 {
					t.Fatalf("got %v; want a 502", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := string(readAll(t, resp)); got != tc.body {
				t.Errorf("got body %q; want %q", got, tc.body)
			}
			for k, want := range tc.fields {
				if got := resp.Header[k]; !slices.Equal(got, want) {
					t.Errorf("got %s %q; want %q", k, got, want)
				}
			}
			for k, want := range tc.trailer {
				if got := resp.Trailer.Get(k); got != want {
					t.Errorf("got trailer %s %q; want %q", k, got, want)
				}
			}
			if got := tr.idleLen() == 1; got != tc.reused {
				t.Errorf("connection kept: %v; want %v", got, tc.reused)
			}
		})
	}
}

// TestH1ResponseBodyFailures: a body the upstream cuts short, or whose
// chunked encoding is malformed, fails the read; the failure is not a
// *gatehouse.Error, whose kind (a client's bad request, 400) would
// misname an upstream's fault.
func TestH1ResponseBodyFailures(t *testing.T) {
	for _, tc := range []struct {
		name, resp string
		want       error // nil: any error
	}{
		{"a length body cut short", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", io.ErrUnexpectedEOF},
		{"a chunked body cut short", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", io.ErrUnexpectedEOF},
		{"a malformed chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5x\r\nhello\r\n0\r\n\r\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := rawUpstream(t, func(c net.Conn) { io.WriteString(c, tc.resp) })
			tr := newH1(t, u.String(), 5*time.Second)
			resp, err := tr.RoundTrip(newReq(t, context.Background(), "GET", u.String()+"/", nil))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			_, err = io.ReadAll(resp.Body)
			switch {
			case err == nil:
				t.Fatal("read the whole body; want an error")
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Errorf("got %v; want %v", err, tc.want)
			case errors.As(err, new(*gatehouse.Error)):
				t.Errorf("got %v, a *gatehouse.Error (%s)", err, gatehouse.ErrorCode(err))
			}
			if n := tr.idleLen(); n != 0 {
				t.Errorf("got %d idle connections; want none", n)
			}
		})
	}
}

// TestH1ResponseHeadArrivingByteByByte: a head split anywhere reads as
// one.
func TestH1ResponseHeadArrivingByteByByte(t *testing.T) {
	const head = "HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 2\r\n\r\nok"
	u := rawUpstream(t, func(c net.Conn) {
		for i := range len(head) {
			if _, err := c.Write([]byte{head[i]}); err != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
		io.Copy(io.Discard, c)
	})
	tr := newH1(t, u.String(), 5*time.Second)
	resp, err := tr.RoundTrip(newReq(t, context.Background(), "GET", u.String()+"/", nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(readAll(t, resp)); got != "ok" || resp.Header.Get("X-A") != "1" {
		t.Errorf("got body %q, X-A %q; want \"ok\", \"1\"", got, resp.Header.Get("X-A"))
	}
}

// TestH1ResponseHeadCostsThreeAllocations: reading a typical head into
// an *http.Response costs the h1Response (response, body, values, head
// bytes) and the header map, which Go's maps allocate in two: three in
// all, where http.ReadResponse took eight (BenchmarkRoundTripCanned/h1).
func TestH1ResponseHeadCostsThreeAllocations(t *testing.T) {
	const head = "HTTP/1.1 200 OK\r\nDate: Sat, 05 Dec 2026 06:00:00 GMT\r\nContent-Type: application/json\r\n" +
		"content-length: 2\r\nCache-Control: no-store\r\nX-Request-Id: 0123456789abcdef\r\n\r\n"
	src := strings.NewReader(head)
	pc := &h1Conn{br: bufio.NewReaderSize(src, h1BufferSize)}
	out := newReq(t, context.Background(), "GET", "http://a/", nil)
	read := func() {
		src.Reset(head)
		pc.br.Reset(src)
		r, _, err := pc.readResponse(out, maxResponseHeaderBytes)
		if err != nil || r.resp.Header.Get("Content-Length") != "2" {
			t.Fatalf("got %v, %v", r, err)
		}
	}
	read()
	if n := testing.AllocsPerRun(100, read); n > 3 {
		t.Errorf("got %v allocations; want at most 3", n)
	}
}
