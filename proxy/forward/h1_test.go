package forward

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// newH1 returns an h1Transport for the upstream at rawURL, its idle
// connections closed at the end of the test.
func newH1(t testing.TB, rawURL string, read time.Duration) *h1Transport {
	t.Helper()
	u := mustURL(t, rawURL)
	tr := newH1Transport(transportKey{scheme: "http", host: u.Host, connect: time.Second, read: read})
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func (t *h1Transport) idleLen() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.idle)
}

func newReq(t testing.TB, ctx context.Context, method, url string, body io.Reader) *http.Request {
	t.Helper()
	r, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// readAll reads and closes resp.Body.
func readAll(t testing.TB, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	return b
}

// waitFor polls cond for up to 5s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// watchedBody is a request body that counts what was read from it and
// reports its Close.
type watchedBody struct {
	r      io.Reader
	read   atomic.Int64
	closed chan struct{}
	once   sync.Once
}

func newWatchedBody(r io.Reader) *watchedBody {
	return &watchedBody{r: r, closed: make(chan struct{})}
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read.Add(int64(n))
	return n, err
}

func (b *watchedBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

func (b *watchedBody) waitClosed(t testing.TB) {
	t.Helper()
	select {
	case <-b.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("request body never closed: its writer is stuck")
	}
}

func TestH1KeepsOneConnectionForSequentialRequests(t *testing.T) {
	up := testupstream.Start(t)
	tr := newH1(t, up.URL, 5*time.Second)
	for i := range 20 {
		resp, err := tr.RoundTrip(newReq(t, context.Background(), "GET", up.URL+"/bytes/1000", nil))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if b := readAll(t, resp); !bytes.Equal(b, testupstream.Pattern(1000)) {
			t.Fatalf("request %d: got %d bytes, not the pattern", i, len(b))
		}
	}
	if n := up.Connections(); n != 1 {
		t.Errorf("upstream saw %d connections for 20 sequential requests; want 1", n)
	}
	if n := tr.idleLen(); n != 1 {
		t.Errorf("got %d idle connections; want 1", n)
	}
}

func TestH1WritesTheRequestHead(t *testing.T) {
	up := testupstream.Start(t)
	tr := newH1(t, up.URL, 5*time.Second)
	r := newReq(t, context.Background(), "POST", up.URL+"/echo/a%2Fb/c?x=1&y=%20", nil)
	r.Host = "api.example.com"
	r.Header.Set("X-One", "  1  ")
	r.Header["X-Two"] = []string{"a", "b"}
	r.Header.Set("Content-Length", "99")   // framing is the transport's
	r.Header.Set("Host", "evil.example")   // so is Host
	r.Header.Set("Transfer-Encoding", "x") // and this
	resp, err := tr.RoundTrip(r)
	if err != nil {
		t.Fatal(err)
	}
	e, err := testupstream.DecodeEcho(resp)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"request URI", e.RequestURI, "/echo/a%2Fb/c?x=1&y=%20"},
		{"Host", e.Host, "api.example.com"},
		{"X-One", e.Headers["X-One"], []string{"1"}},
		{"X-Two", e.Headers["X-Two"], []string{"a", "b"}},
		{"Content-Length of a bodiless POST", e.ContentLength, int64(0)},
		{"Content-Length header", e.Headers["Content-Length"], []string{"0"}},
		{"Transfer-Encoding", len(e.TransferEncoding), 0},
		{"User-Agent (none added)", e.Headers["User-Agent"], []string(nil)},
		{"proto", e.Proto, "HTTP/1.1"},
	}
	for _, c := range checks {
		if !equalAny(c.got, c.want) {
			t.Errorf("%s: got %v; want %v", c.what, c.got, c.want)
		}
	}
}

func equalAny(a, b any) bool {
	as, ok1 := a.([]string)
	bs, ok2 := b.([]string)
	if ok1 && ok2 {
		return strings.Join(as, "\x00") == strings.Join(bs, "\x00") && (as == nil) == (bs == nil)
	}
	return a == b
}

func TestH1RefusesHeadersThatWouldSmuggle(t *testing.T) {
	up := testupstream.Start(t)
	tr := newH1(t, up.URL, 5*time.Second)
	for _, h := range []http.Header{
		{"X-Bad": {"a\r\nX-Injected: 1"}},
		{"X-Bad\r\nX-Injected": {"1"}},
		{"": {"x"}},
	} {
		r := newReq(t, context.Background(), "GET", up.URL+"/", nil)
		r.Header = h
		_, err := tr.RoundTrip(r)
		if err == nil {
			t.Fatalf("header %q was sent; want it refused", h)
		}
		if f := classify(context.Background(), err); f != failInvalid {
			t.Errorf("got failure %d; want failInvalid (not retryable)", f)
		}
	}
	if n := up.Requests(); n != 0 {
		t.Errorf("upstream got %d requests; want none", n)
	}
}

func TestH1ChunkedRequestBodyWithTrailer(t *testing.T) {
	up := testupstream.Start(t)
	tr := newH1(t, up.URL, 5*time.Second)
	payload := testupstream.Pattern(100_000)
	trailer := http.Header{"X-Checksum": nil}
	sum := sha256.Sum256(payload)
	// No length known up front: the body is sent chunked, its trailer
	// value set only once the body has been read.
	body := &trailerAtEOF{r: bytes.NewReader(payload), set: func() { trailer.Set("X-Checksum", hex.EncodeToString(sum[:])) }}
	r := newReq(t, context.Background(), "POST", up.URL+"/echo", body)
	r.ContentLength = -1
	r.Trailer = trailer
	resp, err := tr.RoundTrip(r)
	if err != nil {
		t.Fatal(err)
	}
	e, err := testupstream.DecodeEcho(resp)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.TransferEncoding) != 1 || e.TransferEncoding[0] != "chunked" {
		t.Errorf("upstream saw Transfer-Encoding %v; want [chunked]", e.TransferEncoding)
	}
	if e.BodyLen != int64(len(payload)) || e.BodySHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("upstream got %d bytes (sha %s); want %d intact", e.BodyLen, e.BodySHA256, len(payload))
	}
	if got := e.Trailers["X-Checksum"]; len(got) != 1 || got[0] != hex.EncodeToString(sum[:]) {
		t.Errorf("upstream got trailer %v; want the checksum", got)
	}
	if n := tr.idleLen(); n != 1 {
		t.Errorf("got %d idle connections after a complete exchange; want 1", n)
	}
}

type trailerAtEOF struct {
	r   io.Reader
	set func()
}

func (b *trailerAtEOF) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.set()
	}
	return n, err
}

func TestH1EarlyResponseWhileTheBodyIsStillSent(t *testing.T) {
	const size = 64 << 20 // far more than the socket buffers hold
	t.Run("upstream keeps the connection open", func(t *testing.T) {
		stop := make(chan struct{})
		u := rawUpstream(t, func(c net.Conn) {
			// The head is read; answer without reading the body, then
			// neither read nor close until the test ends.
			io.WriteString(c, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\n\r\nbig!")
			<-stop
		})
		t.Cleanup(func() { close(stop) }) // before rawUpstream's cleanup waits for serve
		tr := newH1(t, u.String(), 5*time.Second)
		body := newWatchedBody(io.LimitReader(zeros{}, size))
		r := newReq(t, context.Background(), "PUT", u.String()+"/upload", body)
		r.ContentLength = size
		start := time.Now()
		resp, err := tr.RoundTrip(r)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 413 || string(readAll(t, resp)) != "big!" {
			t.Fatalf("got %d; want the upstream's 413", resp.StatusCode)
		}
		body.waitClosed(t)
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("took %v; want the exchange to end with the response", d)
		}
		if n := tr.idleLen(); n != 0 {
			t.Errorf("got %d idle connections; want the half-written one closed", n)
		}
	})
	t.Run("upstream closes after answering", func(t *testing.T) {
		up := testupstream.Start(t)
		tr := newH1(t, up.URL, 5*time.Second)
		body := newWatchedBody(io.LimitReader(zeros{}, size))
		r := newReq(t, context.Background(), "PUT", up.URL+"/continue/reject?status=413", body)
		r.ContentLength = size
		resp, err := tr.RoundTrip(r)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if resp.StatusCode != 413 {
			t.Fatalf("got %d; want the upstream's 413", resp.StatusCode)
		}
		body.waitClosed(t)
		if n := tr.idleLen(); n != 0 {
			t.Errorf("got %d idle connections; want none", n)
		}
	})
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestH1ExpectContinue(t *testing.T) {
	up := testupstream.Start(t)
	t.Run("accepted: the body follows the upstream's 100", func(t *testing.T) {
		tr := newH1(t, up.URL, 5*time.Second)
		r := newReq(t, context.Background(), "POST", up.URL+"/continue/accept", strings.NewReader("hello, upstream"))
		r.Header.Set("Expect", "100-continue")
		start := time.Now()
		resp, err := tr.RoundTrip(r)
		if err != nil {
			t.Fatal(err)
		}
		e, err := testupstream.DecodeEcho(resp)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 201 || e.BodyLen != int64(len("hello, upstream")) {
			t.Errorf("got %d with %d body bytes upstream; want 201 with 15", resp.StatusCode, e.BodyLen)
		}
		if d := time.Since(start); d >= expectContinueTimeout {
			t.Errorf("took %v; want the body sent on the 100, not after the %v wait", d, expectContinueTimeout)
		}
	})
	t.Run("rejected: the body is never sent", func(t *testing.T) {
		tr := newH1(t, up.URL, 5*time.Second)
		body := newWatchedBody(strings.NewReader("never to be read"))
		r := newReq(t, context.Background(), "POST", up.URL+"/continue/reject?status=417", body)
		r.ContentLength = int64(len("never to be read"))
		r.Header.Set("Expect", "100-continue")
		resp, err := tr.RoundTrip(r)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if resp.StatusCode != 417 {
			t.Errorf("got %d; want 417", resp.StatusCode)
		}
		body.waitClosed(t)
		if n := body.read.Load(); n != 0 {
			t.Errorf("%d body bytes were read; want none", n)
		}
		if n := tr.idleLen(); n != 0 {
			t.Errorf("got %d idle connections; want the one whose body was skipped closed", n)
		}
	})
}

func TestH1RelaysEarlyHintsToTheTrace(t *testing.T) {
	up := testupstream.Start(t)
	tr := newH1(t, up.URL, 5*time.Second)
	var codes []int
	var hints []string
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			codes = append(codes, code)
			hints = append(hints, h.Get("X-Hint"))
			return nil
		},
	})
	resp, err := tr.RoundTrip(newReq(t, ctx, "GET", up.URL+"/status/103?set=X-Hint:early", nil))
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if resp.StatusCode != 200 {
		t.Errorf("got final status %d; want 200", resp.StatusCode)
	}
	if len(codes) != 1 || codes[0] != 103 || hints[0] != "early" {
		t.Errorf("trace got %v %q; want one 103 with X-Hint: early", codes, hints)
	}
}

func TestH1UpgradeReturnsTheConnection(t *testing.T) {
	up := testupstream.Start(t)
	tr := newH1(t, up.URL, 5*time.Second)
	r := newReq(t, context.Background(), "GET", up.URL+"/ws", nil)
	key := "dGhlIHNhbXBsZSBub25jZQ=="
	r.Header = http.Header{
		"Connection":            {"Upgrade"},
		"Upgrade":               {"websocket"},
		"Sec-Websocket-Version": {"13"},
		"Sec-Websocket-Key":     {key},
	}
	resp, err := tr.RoundTrip(r)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-Websocket-Accept") != testupstream.WSAccept(key) {
		t.Fatalf("got %d %v; want 101 with the accept key", resp.StatusCode, resp.Header)
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		t.Fatalf("101 body is %T; want an io.ReadWriteCloser", resp.Body)
	}
	defer rwc.Close()
	// One masked text frame out, its unmasked echo back (RFC 6455 §5.2).
	msg := []byte("round trip")
	mask := [4]byte{1, 2, 3, 4}
	frame := append([]byte{0x81, 0x80 | byte(len(msg))}, mask[:]...)
	for i, c := range msg {
		frame = append(frame, c^mask[i%4])
	}
	if _, err := rwc.Write(frame); err != nil {
		t.Fatal(err)
	}
	echo := make([]byte, 2+len(msg))
	if _, err := io.ReadFull(rwc, echo); err != nil {
		t.Fatal(err)
	}
	if echo[0] != 0x81 || int(echo[1]) != len(msg) || string(echo[2:]) != string(msg) {
		t.Errorf("got frame %q; want the echo of %q", echo, msg)
	}
	if n := tr.idleLen(); n != 0 {
		t.Errorf("got %d idle connections; want the upgraded one to be the caller's", n)
	}
}

func TestH1ResponsesWithoutBodyReleaseTheConnection(t *testing.T) {
	up := testupstream.Start(t)
	tr := newH1(t, up.URL, 5*time.Second)
	for _, tc := range []struct{ method, path string }{
		{"HEAD", "/bytes/5000"},
		{"GET", "/status/204"},
		{"GET", "/status/304"},
		{"GET", "/bytes/0"},
	} {
		resp, err := tr.RoundTrip(newReq(t, context.Background(), tc.method, up.URL+tc.path, nil))
		if err != nil {
			t.Fatal(err)
		}
		// Back in the idle stack before the body is even looked at.
		if n := tr.idleLen(); n != 1 {
			t.Errorf("%s %s: got %d idle connections on return; want 1", tc.method, tc.path, n)
		}
		if b := readAll(t, resp); len(b) != 0 {
			t.Errorf("%s %s: got a %d-byte body; want none", tc.method, tc.path, len(b))
		}
		resp.Body.Close() // again: harmless
	}
	if n := up.Connections(); n != 1 {
		t.Errorf("upstream saw %d connections; want 1", n)
	}
}

func TestH1StaleIdleConnection(t *testing.T) {
	up := testupstream.Start(t, testupstream.WithCloseIdle())
	p := newTestPool(t, Config{Targets: []Target{{URL: mustURL(t, up.URL), Weight: 1}}, MaxFails: 1})
	tr := p.targets[0].rt.(*h1Transport)
	requests := []struct {
		method string
		body   io.Reader
	}{
		// Every method: the idle connection is checked when taken, and
		// the closed one is never written to.
		{"GET", nil},
		{"GET", nil},
		{"POST", nil},
		{"POST", oneShot{strings.NewReader("x")}},
		{"PUT", strings.NewReader("replayable")},
	}
	for i, rq := range requests {
		if i > 0 {
			// The upstream closes each connection once idle; wait until it
			// has, so the next request certainly meets a stale one.
			waitFor(t, "the upstream to close the idle connection", func() bool { return up.OpenConnections() == 0 })
			if n := tr.idleLen(); n != 1 {
				t.Fatalf("got %d idle connections; want the stale one", n)
			}
		}
		r := do(t, p, request(t, context.Background(), rq.method, "/echo", rq.body))
		if r.status != 200 {
			t.Fatalf("%s #%d: got %d (%v); want 200 on a fresh connection", rq.method, i, r.status, r.err)
		}
	}
	if n := p.targets[0].fails.Load(); n != 0 {
		t.Errorf("got %d recorded failures; want none for a stale connection", n)
	}
	if n, want := up.Connections(), int64(len(requests)); n != want {
		t.Errorf("upstream saw %d connections; want %d", n, want)
	}
}

func TestH1ExpiredIdleConnectionsAreClosed(t *testing.T) {
	up := testupstream.Start(t)
	tr := newH1(t, up.URL, 5*time.Second)
	get := func() {
		t.Helper()
		resp, err := tr.RoundTrip(newReq(t, context.Background(), "GET", up.URL+"/bytes/10", nil))
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
	}
	age := func() {
		tr.mu.Lock()
		for _, pc := range tr.idle {
			pc.since = pc.since.Add(-idleConnTimeout)
		}
		tr.mu.Unlock()
	}
	get()
	age()
	get() // finds the expired one on get: dials
	if n := up.Connections(); n != 2 {
		t.Errorf("upstream saw %d connections; want 2 (the expired one not reused)", n)
	}
	age()
	tr.prune() // as the janitor does when it fires
	if n := tr.idleLen(); n != 0 {
		t.Errorf("got %d idle connections after pruning; want 0", n)
	}
	waitFor(t, "the upstream to see both connections closed", func() bool { return up.OpenConnections() == 0 })
}

func TestH1CancelAbortsPromptly(t *testing.T) {
	up := testupstream.Start(t)
	tr := newH1(t, up.URL, time.Minute)
	t.Run("waiting for the head", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		_, err := tr.RoundTrip(newReq(t, ctx, "GET", up.URL+"/fault/stall", nil))
		if err == nil {
			t.Fatal("got a response; want the exchange aborted")
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("took %v after cancel; want prompt", d)
		}
		if f := classify(ctx, err); f != failCanceled {
			t.Errorf("got failure %d (%v); want failCanceled", f, err)
		}
	})
	t.Run("mid-response", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		resp, err := tr.RoundTrip(newReq(t, ctx, "GET", up.URL+"/fault/slow-body?chunks=10&size=16&interval=10s", nil))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		_, err = io.Copy(io.Discard, resp.Body)
		if err == nil {
			t.Fatal("body ended cleanly; want it aborted")
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("took %v after cancel; want prompt", d)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v; want context.Canceled", err)
		}
	})
	if n := tr.idleLen(); n != 0 {
		t.Errorf("got %d idle connections; want the aborted ones closed", n)
	}
}

func TestH1ReadTimeout(t *testing.T) {
	up := testupstream.Start(t)
	const read = 100 * time.Millisecond
	tr := newH1(t, up.URL, read)
	t.Run("no head in time is a timeout", func(t *testing.T) {
		start := time.Now()
		_, err := tr.RoundTrip(newReq(t, context.Background(), "GET", up.URL+"/fault/stall", nil))
		if err == nil {
			t.Fatal("got a response from a stalled upstream")
		}
		if d := time.Since(start); d < read || d > 2*time.Second {
			t.Errorf("failed after %v; want about %v", d, read)
		}
		gerr, _ := Classify(context.Background(), err)
		if got := statusOf(gerr); got != 504 {
			t.Errorf("got %d (%v); want 504", got, err)
		}
	})
	t.Run("the timeout runs from the end of the body", func(t *testing.T) {
		// The body takes three times the read timeout to send: that is
		// the client's pace, not the upstream's slowness.
		body := &slowBody{chunks: 6, every: read / 2}
		r := newReq(t, context.Background(), "POST", up.URL+"/echo", body)
		resp, err := tr.RoundTrip(r)
		if err != nil {
			t.Fatalf("got %v; want the upstream's answer", err)
		}
		e, err := testupstream.DecodeEcho(resp)
		if err != nil {
			t.Fatal(err)
		}
		if e.BodyLen != 6 {
			t.Errorf("upstream got %d bytes; want 6", e.BodyLen)
		}
	})
	t.Run("the body streams without a deadline", func(t *testing.T) {
		resp, err := tr.RoundTrip(newReq(t, context.Background(), "GET", up.URL+"/fault/slow-body?chunks=3&size=4&interval=150ms", nil))
		if err != nil {
			t.Fatal(err)
		}
		if b := readAll(t, resp); len(b) != 12 {
			t.Errorf("got %d bytes; want 12", len(b))
		}
	})
}

// slowBody yields one byte every interval.
type slowBody struct {
	chunks int
	every  time.Duration
}

func (b *slowBody) Read(p []byte) (int, error) {
	if b.chunks == 0 {
		return 0, io.EOF
	}
	time.Sleep(b.every)
	b.chunks--
	p[0] = 'x'
	return 1, nil
}

func TestH1BodyClosedEarly(t *testing.T) {
	up := testupstream.Start(t)
	tr := newH1(t, up.URL, 5*time.Second)
	for _, tc := range []struct {
		desc     string
		path     string
		wantIdle int
	}{
		{"a large remainder closes the connection", "/bytes/1000000", 0},
		{"a small buffered remainder is drained", "/bytes/200", 1},
		{"a chunked remainder still on the wire closes it", "/fault/slow-body?chunks=3&size=4&interval=1s", 0},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			tr.CloseIdleConnections()
			resp, err := tr.RoundTrip(newReq(t, context.Background(), "GET", up.URL+tc.path, nil))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(resp.Body, make([]byte, 4)); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			resp.Body.Close()
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Errorf("Close took %v; want it never to wait on the upstream", d)
			}
			if n := tr.idleLen(); n != tc.wantIdle {
				t.Errorf("got %d idle connections; want %d", n, tc.wantIdle)
			}
			if _, err := resp.Body.Read(make([]byte, 1)); err == nil {
				t.Error("Read after Close succeeded; want an error")
			}
		})
	}
}

func TestH1HeadTooLarge(t *testing.T) {
	u := rawUpstream(t, func(c net.Conn) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		// Long lines: fewer than h1.MaxFields of them pass the limit.
		line := []byte("X-Filler: " + strings.Repeat("a", 100<<10) + "\r\n")
		for range maxResponseHeaderBytes/len(line) + 10 {
			if _, err := c.Write(line); err != nil {
				return
			}
		}
	})
	tr := newH1(t, u.String(), 5*time.Second)
	_, err := tr.RoundTrip(newReq(t, context.Background(), "GET", u.String()+"/", nil))
	if !errors.Is(err, errHeaderTooLarge) {
		t.Fatalf("got %v; want the head refused as too large", err)
	}
	if f := classify(context.Background(), err); f != failInvalid {
		t.Errorf("got failure %d; want failInvalid", f)
	}
}

func TestH1Concurrent(t *testing.T) {
	up := testupstream.Start(t, testupstream.WithNoRecord())
	p := newTestPool(t, Config{Targets: []Target{{URL: mustURL(t, up.URL), Weight: 1}}})
	const workers, each = 8, 200
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				var r *http.Request
				want := 0
				if (w+i)%3 == 0 {
					want = 1 + (w*each+i)%5000
					r = request(t, context.Background(), "POST", "/echo", bytes.NewReader(testupstream.Pattern(want)))
				} else {
					r = request(t, context.Background(), "GET", "/bytes/"+strconv.Itoa(1+i%3000), nil)
				}
				resp, _, err := p.RoundTrip(r)
				if err != nil {
					errs <- err
					return
				}
				if want > 0 {
					e, err := testupstream.DecodeEcho(resp)
					if err != nil || e.BodyLen != int64(want) {
						errs <- errors.New("echo of " + strconv.Itoa(want) + " bytes came back wrong")
						return
					}
					continue
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || len(b) != 1+i%3000 {
					errs <- errors.New("GET body came back wrong")
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
	// At most one connection per worker, plus a few for the rare body
	// writer not done within maxWriteWaitBeforeReuse.
	if n := up.Connections(); n > 2*workers {
		t.Errorf("upstream saw %d connections for %d workers; want them reused", n, workers)
	}
}

func TestH1UnsolicitedBytesAreNotTheNextResponse(t *testing.T) {
	t.Run("a 408 sent on an idle connection", func(t *testing.T) {
		u := rawUpstream(t, func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			time.Sleep(50 * time.Millisecond) // idle, then timed out by the server
			io.WriteString(c, "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
		})
		tr := newH1(t, u.String(), 5*time.Second)
		for i := range 2 {
			resp, err := tr.RoundTrip(newReq(t, context.Background(), "GET", u.String()+"/", nil))
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			readAll(t, resp)
			if resp.StatusCode != 200 {
				t.Fatalf("request %d: got %d; want 200 (the 408 answered no request)", i, resp.StatusCode)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	t.Run("bytes past the response body", func(t *testing.T) {
		u := rawUpstream(t, func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nX-Smuggled: yes\r\nContent-Length: 0\r\n\r\n")
			io.Copy(io.Discard, c)
		})
		tr := newH1(t, u.String(), 5*time.Second)
		resp, err := tr.RoundTrip(newReq(t, context.Background(), "GET", u.String()+"/", nil))
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if n := tr.idleLen(); n != 0 {
			t.Errorf("got %d idle connections; want the one with stray bytes closed", n)
		}
	})
}

// TestH1ResponseFitsItsSizeClass: the inline head is sized so that an
// h1Response, allocated for every response, stays within 1 KiB.
func TestH1ResponseFitsItsSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(h1Response{}); n > 1024 {
		t.Errorf("h1Response is %d bytes; want at most 1024 (shrink h1InlineHead)", n)
	}
}
