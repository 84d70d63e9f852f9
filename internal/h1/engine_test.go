package h1_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/h1"
	"github.com/gatehouse/gatehouse/internal/wiretest"
)

// countingListener counts the writes made to its connections.
type countingListener struct {
	net.Listener
	writes atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{c, &l.writes}, nil
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c *countingConn) CloseWrite() error { return c.Conn.(*net.TCPConn).CloseWrite() }

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// start serves h with the engine on loopback until the test ends.
func start(t testing.TB, h http.Handler, tune func(*h1.Server)) (*h1.Server, *countingListener) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: l}
	var n atomic.Int64
	s := &h1.Server{Handler: h, ReadHeaderTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second,
		IdleTimeout: 5 * time.Second, MaxHeaderBytes: 8 << 10,
		RequestID: func() string { return fmt.Sprintf("id%d", n.Add(1)) }}
	if tune != nil {
		tune(s)
	}
	go s.Serve(cl)
	t.Cleanup(func() { s.Close() })
	return s, cl
}

func addr(l net.Listener) string { return l.Addr().String() }

// echo answers with the method, path, query and body it read.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "%s %s %s %s", r.Method, r.URL.Path, r.URL.RawQuery, b)
})

func TestPipelinedRequestsAreAnsweredInOrderOnOneConnection(t *testing.T) {
	_, l := start(t, echo, nil)
	c := wiretest.Dial(t, addr(l))
	c.Send("GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n" +
		"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc" +
		"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n1\r\nf\r\n0\r\n\r\n" +
		"GET /d HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
	for _, want := range []string{"GET /a x=1 ", "POST /b  abc", "POST /c  def", "GET /d  "} {
		r := c.Read(strings.Fields(want)[0])
		if r.Status != 200 || string(r.Body) != want {
			t.Fatalf("got %d %q; want 200 %q", r.Status, r.Body, want)
		}
	}
	if rest, _ := io.ReadAll(c.R); len(rest) != 0 {
		t.Fatalf("after Connection: close, got %q; want EOF", rest)
	}
}

func TestTheRequestCarriesWhatNetHTTPWouldGiveTheHandler(t *testing.T) {
	got := make(chan *http.Request, 1)
	_, l := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Clone(context.Background())
	}), nil)
	for _, tc := range []struct{ raw, target string }{
		{"GET /p%20q/r?s=t HTTP/1.1\r\nhost: example.com:8080\r\nx-custom: a\r\nX-Custom: b\r\naccept: */*\r\n\r\n", "/p%20q/r?s=t"},
		{"GET /plain/path?q= HTTP/1.1\r\nHost: example.com:8080\r\nX-Custom: a\r\nX-Custom: b\r\nAccept: */*\r\n\r\n", "/plain/path?q="},
		{"GET http://example.com:8080/abs HTTP/1.1\r\nHost: other\r\nX-Custom: a\r\nX-Custom: b\r\nAccept: */*\r\n\r\n", "http://example.com:8080/abs"},
	} {
		want, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tc.raw)))
		if err != nil {
			t.Fatal(err)
		}
		c := wiretest.Dial(t, addr(l))
		c.Send(tc.raw)
		c.Read("GET")
		r := <-got
		if r.Method != want.Method || r.RequestURI != tc.target || r.URL.String() != want.URL.String() ||
			r.URL.Path != want.URL.Path || r.URL.RawPath != want.URL.RawPath || r.Host != want.Host ||
			r.Proto != "HTTP/1.1" || r.ProtoMinor != 1 || r.RemoteAddr == "" {
			t.Fatalf("%q: got %s %q %q host %q; want %s %q %q host %q", tc.raw, r.Method, r.RequestURI, r.URL, r.Host,
				want.Method, want.RequestURI, want.URL, want.Host)
		}
		if fmt.Sprint(r.Header) != fmt.Sprint(want.Header) {
			t.Fatalf("%q: header %v; want %v", tc.raw, r.Header, want.Header)
		}
	}
}

func TestABodyThatFitsGoesOutWithItsLengthInOneWrite(t *testing.T) {
	_, l := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		for range 10 {
			io.WriteString(w, strings.Repeat("x", 100))
		}
	}), nil)
	c := wiretest.Dial(t, addr(l))
	c.Send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	r := c.Read("GET")
	if r.Status != 200 || len(r.Body) != 1000 || r.Header.Get("Content-Length") != "1000" || r.Header.Get("Date") == "" {
		t.Fatalf("got %d %v, %d bytes; want 200 with Content-Length 1000 and a Date", r.Status, r.Header, len(r.Body))
	}
	if n := l.writes.Load(); n != 1 {
		t.Fatalf("the response took %d writes; want 1", n)
	}
}

func TestALongOrFlushedBodyIsChunkedOnHTTP11AndCloseDelimitedOnHTTP10(t *testing.T) {
	long := strings.Repeat("y", 100<<10)
	_, l := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/flush" {
			io.WriteString(w, "a")
			w.(http.Flusher).Flush()
			io.WriteString(w, "b")
			return
		}
		io.WriteString(w, long)
	}), nil)
	for _, tc := range []struct {
		req, want string
		chunked   bool
	}{
		{"GET /long HTTP/1.1\r\nHost: h\r\n\r\n", long, true},
		{"GET /flush HTTP/1.1\r\nHost: h\r\n\r\n", "ab", true},
		{"GET /long HTTP/1.0\r\n\r\n", long, false},
	} {
		c := wiretest.Dial(t, addr(l))
		c.Send(tc.req)
		resp, err := http.ReadResponse(c.R, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		chunked := len(resp.TransferEncoding) == 1 && resp.TransferEncoding[0] == "chunked"
		if string(b) != tc.want || chunked != tc.chunked || resp.ContentLength != -1 {
			t.Fatalf("%q: got %d bytes, chunked %v, length %d; want %d bytes, chunked %v, no length",
				tc.req, len(b), chunked, resp.ContentLength, len(tc.want), tc.chunked)
		}
		if !tc.chunked && !resp.Close {
			t.Fatalf("%q: an HTTP/1.0 body without a length must end with the connection", tc.req)
		}
	}
}

// Responses without a body send none and no Content-Length; a 204 keeps
// its Content-Type and a 304 drops it, as net/http writes them.
func TestResponsesWithoutABodySendNone(t *testing.T) {
	_, l := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		}
		_, err := io.WriteString(w, "body")
		if (r.URL.Path == "/204" || r.URL.Path == "/304") && err != http.ErrBodyNotAllowed {
			panic("a write to a response without a body succeeded")
		}
	}), nil)
	c := wiretest.Dial(t, addr(l))
	c.Send("HEAD /head HTTP/1.1\r\nHost: h\r\n\r\nGET /204 HTTP/1.1\r\nHost: h\r\n\r\nGET /304 HTTP/1.1\r\nHost: h\r\n\r\nGET /after HTTP/1.1\r\nHost: h\r\n\r\n")
	for i, tc := range []struct {
		method string
		status int
		body   string
		typ    string
	}{{"HEAD", 200, "", "text/plain"}, {"GET", 204, "", "text/plain"}, {"GET", 304, "", ""}, {"GET", 200, "body", "text/plain"}} {
		r := c.Read(tc.method)
		if r.Status != tc.status || string(r.Body) != tc.body || (tc.status != 200 && r.Header.Get("Content-Length") != "") {
			t.Fatalf("response %d: got %d %v %q; want %d %q without Content-Length", i, r.Status, r.Header, r.Body, tc.status, tc.body)
		}
		if got := r.Header.Get("Content-Type"); got != tc.typ {
			t.Errorf("response %d (%d): Content-Type %q; want %q", i, tc.status, got, tc.typ)
		}
	}
}

func TestExpectContinueIsSentOnlyWhenTheHandlerReadsTheBody(t *testing.T) {
	_, l := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/reject" {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		echo(w, r)
	}), nil)
	c := wiretest.Dial(t, addr(l))
	c.Send("POST /read HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
	if r := c.Read("POST"); r.Status != http.StatusContinue {
		t.Fatalf("got %d; want 100 before the body", r.Status)
	}
	c.Send("abc")
	if r := c.Read("POST"); r.Status != 200 || string(r.Body) != "POST /read  abc" {
		t.Fatalf("got %d %q", r.Status, r.Body)
	}
	c.Send("POST /reject HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
	if r := c.Read("POST"); r.Status != http.StatusForbidden || !r.Close {
		t.Fatalf("got %d close=%v; want 403 and the connection closed (the body never asked for)", r.Status, r.Close)
	}
}

func TestEarlyHintsGoOutBeforeTheResponse(t *testing.T) {
	_, l := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</s.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		io.WriteString(w, "done")
	}), nil)
	c := wiretest.Dial(t, addr(l))
	c.Send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	if r := c.Read("GET"); r.Status != http.StatusEarlyHints || r.Header.Get("Link") == "" {
		t.Fatalf("got %d %v; want 103 with the Link", r.Status, r.Header)
	}
	if r := c.Read("GET"); r.Status != 200 || string(r.Body) != "done" || r.Header.Get("Link") != "" {
		t.Fatalf("got %d %v %q; want 200 done without the Link", r.Status, r.Header, r.Body)
	}
}

func TestWritingMoreThanTheContentLengthFails(t *testing.T) {
	errs := make(chan error, 1)
	_, l := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "3")
		_, err := io.WriteString(w, "abcd")
		errs <- err
	}), nil)
	c := wiretest.Dial(t, addr(l))
	c.Send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	c.Read("GET")
	if err := <-errs; err != http.ErrContentLength {
		t.Fatalf("got %v; want http.ErrContentLength", err)
	}
}

func TestHijackGivesTheBytesReadPastTheRequest(t *testing.T) {
	_, l := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		line, _ := brw.ReadString('\n')
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\necho:" + line)
		brw.Flush()
	}), nil)
	c := wiretest.Dial(t, addr(l))
	c.Send("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\nhello\n")
	if r := c.Read("GET"); r.Status != http.StatusSwitchingProtocols {
		t.Fatalf("got %d", r.Status)
	}
	if rest, _ := io.ReadAll(c.R); string(rest) != "echo:hello\n" {
		t.Fatalf("got %q after the 101; want the pipelined bytes echoed", rest)
	}
}

func TestAnUnreadBodyIsDroppedUpToALimitElseTheConnectionCloses(t *testing.T) {
	_, l := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	}), nil)
	for _, tc := range []struct {
		size int
		keep bool
	}{{1000, true}, {300 << 10, false}} {
		c := wiretest.Dial(t, addr(l))
		go c.Send(fmt.Sprintf("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s", tc.size, strings.Repeat("z", tc.size)) +
			"GET /b HTTP/1.1\r\nHost: h\r\n\r\n")
		r := c.Read("POST")
		if r.Close == tc.keep {
			t.Fatalf("%d bytes unread: close=%v; want %v", tc.size, r.Close, !tc.keep)
		}
		if tc.keep {
			if r := c.Read("GET"); string(r.Body) != "/b" {
				t.Fatalf("the next request: got %q", r.Body)
			}
		}
	}
}

func TestHeadProblemsAndTimeouts(t *testing.T) {
	_, l := start(t, echo, func(s *h1.Server) {
		s.ReadHeaderTimeout = 200 * time.Millisecond
		s.IdleTimeout = 200 * time.Millisecond
		s.MaxHeaderBytes = 1024
	})
	for _, tc := range []struct {
		desc, send string
		status     int // 0: the connection closes without a word
	}{
		{"a stalled head", "GET / HTTP/1.1\r\nHost: h\r\n", http.StatusRequestTimeout},
		{"a head over the limit", "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("b", 2000) + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"a head over the small buffer and the limit", "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("b", 5000) + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"a malformed head", "GET / HTTP/1.1\r\nHost h\r\n\r\n", http.StatusBadRequest},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", http.StatusBadRequest},
		{"an unknown coding", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", http.StatusNotImplemented},
		{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", http.StatusHTTPVersionNotSupported},
		{"an unknown expectation", "GET / HTTP/1.1\r\nHost: h\r\nExpect: tea\r\n\r\n", http.StatusExpectationFailed},
		{"nothing, idle", "", 0},
		{"after a response, idle", "GET / HTTP/1.1\r\nHost: h\r\n\r\n", -1},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			c := wiretest.Dial(t, addr(l))
			c.Send(tc.send)
			if tc.status == -1 {
				c.Read("GET")
				tc.status = 0
			}
			if tc.status != 0 {
				r := c.Read("GET")
				wiretest.Problem(t, r.Status, r.Header, r.Body, tc.status)
				if !r.Close {
					t.Fatal("want Connection: close")
				}
			}
			if rest, err := io.ReadAll(c.R); len(rest) != 0 || err != nil {
				t.Fatalf("then got %q, %v; want EOF", rest, err)
			}
		})
	}
}

func TestAHeadLongerThanTheSmallBufferIsServed(t *testing.T) {
	_, l := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Big")[:3])
	}), nil)
	c := wiretest.Dial(t, addr(l))
	c.Send("GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("b", 6000) + "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\nX-Big: ccc\r\n\r\n")
	for _, want := range []string{"bbb", "ccc"} {
		if r := c.Read("GET"); string(r.Body) != want {
			t.Fatalf("got %d %q; want %q", r.Status, r.Body, want)
		}
	}
}

func TestABodyThatStallsFailsItsReadWithATimeout(t *testing.T) {
	errs := make(chan error, 1)
	_, l := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		errs <- err
		w.WriteHeader(http.StatusRequestTimeout)
	}), func(s *h1.Server) { s.ReadTimeout = 200 * time.Millisecond })
	c := wiretest.Dial(t, addr(l))
	c.Send("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc")
	err := <-errs
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("got %v; want a timeout", err)
	}
	if r := c.Read("POST"); r.Status != http.StatusRequestTimeout || !r.Close {
		t.Fatalf("got %d close=%v", r.Status, r.Close)
	}
}

func TestTheContextEndsWhenTheClientGoesAway(t *testing.T) {
	ended := make(chan error, 1)
	_, l := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			ended <- r.Context().Err()
		case <-time.After(5 * time.Second):
			ended <- nil
		}
	}), nil)
	c, err := net.Dial("tcp", addr(l))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	c.Close()
	if err := <-ended; err != context.Canceled {
		t.Fatalf("got %v; want the context cancelled", err)
	}
}

func TestAPipelinedRequestIsNotTakenForTheClientGoing(t *testing.T) {
	_, l := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-r.Context().Done():
				http.Error(w, "cancelled", http.StatusInternalServerError)
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
		io.WriteString(w, r.URL.Path)
	}), nil)
	c := wiretest.Dial(t, addr(l))
	c.Send("GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(30 * time.Millisecond) // the watch is reading
	c.Send("GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
	for _, want := range []string{"/slow", "/next"} {
		if r := c.Read("GET"); string(r.Body) != want {
			t.Fatalf("got %d %q; want %q", r.Status, r.Body, want)
		}
	}
}

func TestShutdownClosesIdleConnectionsAndLetsRequestsFinish(t *testing.T) {
	release := make(chan struct{})
	s, l := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, r.URL.Path)
	}), nil)
	idle := wiretest.Dial(t, addr(l))
	idle.Send("GET /idle HTTP/1.1\r\nHost: h\r\n\r\n")
	idle.Read("GET")
	busy := wiretest.Dial(t, addr(l))
	busy.Send("GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	var wg sync.WaitGroup
	wg.Add(1)
	var err error
	go func() {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = s.Shutdown(ctx)
	}()
	if rest, _ := io.ReadAll(idle.R); len(rest) != 0 {
		t.Fatalf("the idle connection got %q; want EOF", rest)
	}
	close(release)
	if r := busy.Read("GET"); string(r.Body) != "/slow" || !r.Close {
		t.Fatalf("the request in flight: got %d %q close=%v; want it answered, then the connection closed", r.Status, r.Body, r.Close)
	}
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", addr(l)); err == nil {
		t.Fatal("the listener still accepts")
	}
}

func TestConnectionCloseFromTheHandlerEndsTheConnection(t *testing.T) {
	_, l := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
	}), nil)
	c := wiretest.Dial(t, addr(l))
	c.Send("GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n")
	if r := c.Read("GET"); !r.Close {
		t.Fatal("want Connection: close")
	}
	if rest, _ := io.ReadAll(c.R); len(rest) != 0 {
		t.Fatalf("got %q; want EOF", rest)
	}
}

func TestTrailersFollowAChunkedBody(t *testing.T) {
	_, l := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		io.WriteString(w, "data")
		w.Header().Set("X-Sum", "1")
		w.Header().Set(http.TrailerPrefix+"X-Late", "2")
	}), nil)
	c := wiretest.Dial(t, addr(l))
	c.Send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	resp, err := http.ReadResponse(c.R, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "data" || resp.Trailer.Get("X-Sum") != "1" || resp.Trailer.Get("X-Late") != "2" {
		t.Fatalf("got %q trailer %v", b, resp.Trailer)
	}
}

// TestTheHandlerSeesARequestTrailerAsNetHTTPGivesIt: the same bytes to
// both engines, and the handler sees the same: the Trailer field gone
// from a chunked request's header, the names it announces in r.Trailer
// before the body is read, values and unannounced fields after; a
// framing field announced is refused by both. A second request follows
// on the connection, so that a trailer left behind would show.
func TestTheHandlerSeesARequestTrailerAsNetHTTPGivesIt(t *testing.T) {
	view := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		declared := fmt.Sprint(r.Trailer, r.Trailer == nil)
		b, err := io.ReadAll(r.Body)
		fmt.Fprintf(w, "header Trailer %q; declared %s; body %q %v; trailer %v %v",
			r.Header["Trailer"], declared, b, err, r.Trailer, r.Trailer == nil)
	})
	_, fast := start(t, view, nil)
	std, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ns := &http.Server{Handler: view, ReadHeaderTimeout: 2 * time.Second}
	go ns.Serve(std)
	t.Cleanup(func() { ns.Close() })

	chunked := "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	next := "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
	for _, tc := range []struct {
		name, req string
		status    int
	}{
		{"announced, sent, and one unannounced", chunked + "Trailer: X-Sum, x-other\r\n\r\n3\r\nabc\r\n0\r\nx-sum: 1\r\nX-Extra: 2\r\n\r\n", 200},
		{"sent without an announcement", chunked + "\r\n3\r\nabc\r\n0\r\nX-Sum: 1\r\nx-sum: 2\r\nHost: b\r\n\r\n", 200},
		{"announced in two fields, none sent", chunked + "Trailer: X-Sum\r\ntrailer: , X-B \r\n\r\n3\r\nabc\r\n0\r\n\r\n", 200},
		{"an announcement of nothing", chunked + "Trailer: ,\r\n\r\n0\r\n\r\n", 200},
		{"Trailer on a body with a length is a field", "POST / HTTP/1.1\r\nHost: h\r\nTrailer: Content-Length\r\nContent-Length: 3\r\n\r\nabc", 200},
		{"a framing field announced", chunked + "Trailer: X-Sum, Content-Length\r\n\r\n0\r\n\r\n", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got [2]string
			for i, l := range []net.Listener{fast, std} {
				c := wiretest.Dial(t, addr(l))
				c.Send(tc.req + next)
				r := c.Read("POST")
				if r.Status != tc.status {
					t.Fatalf("engine %d: status %d (%s); want %d", i, r.Status, r.Body, tc.status)
				}
				if tc.status != 200 {
					continue
				}
				got[i] = string(r.Body)
				if r := c.Read("POST"); string(r.Body) != `header Trailer []; declared map[] true; body "ok" <nil>; trailer map[] true` {
					t.Errorf("engine %d: the next request saw %s", i, r.Body)
				}
			}
			if got[0] != got[1] {
				t.Errorf("the fast engine's handler saw\n%s\nnet/http's\n%s", got[0], got[1])
			}
		})
	}
}

func TestHTTP10KeepAliveIsHonouredOnlyWhenAskedFor(t *testing.T) {
	_, l := start(t, echo, nil)
	c := wiretest.Dial(t, addr(l))
	c.Send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n")
	if r := c.Read("GET"); r.Close || string(r.Body) != "GET /a  " {
		t.Fatalf("asked for keep-alive: got %q close=%v", r.Body, r.Close)
	}
	if r := c.Read("GET"); !r.Close || string(r.Body) != "GET /b  " {
		t.Fatalf("not asked: got %q close=%v; want the connection closed", r.Body, r.Close)
	}
	if rest, _ := io.ReadAll(c.R); len(rest) != 0 {
		t.Fatalf("got %q; want EOF", rest)
	}
}

func TestAHandlerPanicCutsTheConnectionAndTheServerLivesOn(t *testing.T) {
	_, l := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		io.WriteString(w, "fine")
	}), nil)
	c := wiretest.Dial(t, addr(l))
	c.Send("GET /panic HTTP/1.1\r\nHost: h\r\n\r\n")
	resp, err := http.ReadResponse(c.R, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("the cut chunked body read as complete")
	}
	next := wiretest.Dial(t, addr(l))
	next.Send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	if r := next.Read("GET"); string(r.Body) != "fine" {
		t.Fatalf("got %q", r.Body)
	}
}

// A refusal (here 413, as the proxy gives a declared length over its
// limit; a 401 or 429 alike) of a request whose declared body is too long
// to drop goes out at once, as net/http sends it: the engine must not
// wait for a body the client may never send before answering.
func TestARefusalOfABodyTooLongToDropIsNotHeldForTheBody(t *testing.T) {
	_, l := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
	}), nil)
	for _, size := range []int{300 << 10, 1 << 30} {
		c := wiretest.Dial(t, addr(l))
		c.Send(fmt.Sprintf("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\nabc", size))
		begin := time.Now()
		r := c.Read("POST")
		if took := time.Since(begin); took > time.Second {
			t.Errorf("Content-Length %d, body not sent: the %d came after %v (the read timeout), not at once", size, r.Status, took.Round(time.Millisecond))
		}
		if !r.Close {
			t.Errorf("Content-Length %d: the connection stays open with the body unread", size)
		}
	}
}

// Zero timeouts mean no limit, as on net/http's Server: a head or a body
// that comes in parts is read, not refused at once.
func TestZeroTimeoutsMeanNoLimit(t *testing.T) {
	_, l := start(t, echo, func(s *h1.Server) { s.ReadHeaderTimeout, s.ReadTimeout = 0, 0 })
	for _, parts := range [][2]string{
		{"POST /a HTTP/1.1\r\nHost: h\r\n", "Content-Length: 3\r\n\r\nabc"},
		{"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\na", "bc"},
	} {
		c := wiretest.Dial(t, addr(l))
		c.Send(parts[0])
		time.Sleep(50 * time.Millisecond)
		c.Send(parts[1])
		if r := c.Read("POST"); r.Status != http.StatusOK || string(r.Body) != "POST /a  abc" {
			t.Errorf("%q then %q: %d %q; want 200 %q", parts[0], parts[1], r.Status, r.Body, "POST /a  abc")
		}
	}
}
