// Package wiretest helps tests speak HTTP over real sockets: a server
// started through gatehouse's own server stack, a raw connection for what a
// well-behaved client would never send, and the check every gatehouse
// problem document must pass.
package wiretest

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/serve"
)

// Serve serves h through internal/serve on a loopback port until the test
// ends, and returns the server and its address. Options without an Engine
// serve on serve's default, std, as the admin and egress listeners do in
// production whatever --engine says: a data-plane test names the engine
// the test run picks (testenv.Engine), as cmd/gatehouse does for the
// proxy listener alone.
func Serve(t testing.TB, h http.Handler, opts serve.Options) (*serve.Server, string) {
	t.Helper()
	srv := serve.New(h, opts)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv, l.Addr().String()
}

// Response is a fully read response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	// Close is Connection: close, which net/http takes out of Header.
	Close bool
}

// Conn writes bytes as it pleases and reads responses, interim or final.
type Conn struct {
	t    testing.TB
	conn net.Conn
	// R is the buffered reader responses are read from.
	R *bufio.Reader
}

// Dial connects to addr for the rest of the test, with a 10 s deadline.
func Dial(t testing.TB, addr string) *Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &Conn{t: t, conn: c, R: bufio.NewReader(c)}
}

// DialTLS is Dial over TLS, HTTP/1.1 by ALPN, trusting any certificate.
func DialTLS(t testing.TB, addr string) *Conn {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &Conn{t: t, conn: c, R: bufio.NewReader(c)}
}

// CloseWrite half-closes the connection: the peer reads EOF, and can still
// answer.
func (c *Conn) CloseWrite() {
	if cw, ok := c.conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// Send writes s as is.
func (c *Conn) Send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatal(err)
	}
}

// Read reads one response to a request of method.
func (c *Conn) Read(method string) *Response {
	c.t.Helper()
	resp, err := http.ReadResponse(c.R, &http.Request{Method: method})
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b, Close: resp.Close}
}

// Problem fails the test unless the response is a gatehouse problem of
// status: application/problem+json with every field the contract names,
// its status, and the request id of the X-Request-Id header. It returns
// the document.
func Problem(t testing.TB, status int, header http.Header, body []byte, want int) map[string]any {
	t.Helper()
	if status != want {
		t.Fatalf("got status %d; want %d; body %s", status, want, body)
	}
	if ct := header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("got Content-Type %q; want application/problem+json; body %s", ct, body)
	}
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem body: %v: %s", err, body)
	}
	for _, f := range []string{"type", "title", "status", "detail", "request_id"} {
		if p[f] == nil || p[f] == "" {
			t.Fatalf("problem lacks %q: %s", f, body)
		}
	}
	if s, _ := p["status"].(float64); int(s) != want {
		t.Fatalf("problem status %v; want %d", p["status"], want)
	}
	if p["request_id"] != header.Get("X-Request-Id") {
		t.Fatalf("problem request_id %v; X-Request-Id %q", p["request_id"], header.Get("X-Request-Id"))
	}
	return p
}
