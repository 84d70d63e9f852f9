package proxy

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/serve"
	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// TestHTTP11OverTLSGetsTheChecksOfCleartext: HTTP/1.1 over TLS is read
// through the same layer as cleartext, so what net/http alone would let
// through or answer in plain text gets the same problem: ambiguous framing
// (400 and close, nothing upstream), a malformed head (400), a stalled
// head (408). The request still knows it came over TLS.
func TestHTTP11OverTLSGetsTheChecksOfCleartext(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, certFile, keyFile)
	up := testupstream.Start(t)
	g := newGateway(t, func(o *serve.Options) {
		o.TLSCert, o.TLSKey, o.ReadHeaderTimeout = certFile, keyFile, 500*time.Millisecond
	})
	g.route(up.URL, "", "")
	dial := func(t *testing.T) (net.Conn, *bufio.Reader) {
		c, err := tls.Dial("tcp", g.addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c, bufio.NewReader(c)
	}
	read := func(t *testing.T, br *bufio.Reader) *response {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return &response{status: resp.StatusCode, header: resp.Header, body: b, close: resp.Close}
	}
	for _, tc := range []struct {
		desc, send string
		want       int
	}{
		{"content-length and chunked", "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"HTTP/1.0 with chunked", "POST /x HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"malformed header line", "GET /x HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n", 400},
		{"stalled head", "GET /x HTTP/1.1\r\nHost: x\r\n", 408},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			up.Reset()
			c, br := dial(t)
			io.WriteString(c, tc.send)
			r := read(t, br)
			assertProblem(t, r, tc.want)
			if rest, _ := io.ReadAll(br); len(rest) != 0 {
				t.Fatalf("after the %d, the connection carried %q; want its end", tc.want, rest)
			}
			if n := up.Requests(); n != 0 {
				t.Fatalf("upstream got %d requests; want none", n)
			}
		})
	}
	t.Run("request still knows TLS", func(t *testing.T) {
		c, br := dial(t)
		io.WriteString(c, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
		r := read(t, br)
		if e := r.echo(t); !strings.Contains(strings.Join(e.Headers["X-Forwarded-Proto"], ""), "https") {
			t.Fatalf("X-Forwarded-Proto %v; want https", e.Headers["X-Forwarded-Proto"])
		}
	})
	t.Run("cleartext to the TLS listener", func(t *testing.T) {
		c := g.dial()
		c.send("GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
		assertProblem(t, c.read("GET"), 400)
	})
}
