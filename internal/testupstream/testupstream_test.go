package testupstream_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// ---- helpers ----

func get(t *testing.T, c *http.Client, url string) *http.Response {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readBody(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return b
}

func wantStatus(t *testing.T, resp *http.Response, code int) {
	t.Helper()
	if resp.StatusCode != code {
		t.Fatalf("status = %s, want %d", resp.Status, code)
	}
}

// dial opens a raw TCP connection to the upstream, closed at cleanup.
func dial(t *testing.T, u *testupstream.Upstream) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", u.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond (no timing assertion: it only bounds a hang).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func wsURL(u *testupstream.Upstream, path string) string {
	return "ws" + strings.TrimPrefix(u.URL, "http") + path
}

// ---- echo ----

func TestEcho(t *testing.T) {
	t.Parallel()
	u := testupstream.Start(t, testupstream.WithName("up1"))
	req, _ := http.NewRequest(http.MethodPost, u.URL+"/echo/a/b?x=1&y=%20", strings.NewReader("hello"))
	req.Host = "example.test"
	req.Header.Set("X-Forwarded-For", "10.0.0.1")
	req.Header.Add("X-Multi", "a")
	req.Header.Add("X-Multi", "b")
	resp, err := u.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, resp, 200)
	if got := resp.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := resp.Header.Get("X-Upstream-Name"); got != "up1" {
		t.Errorf("X-Upstream-Name = %q", got)
	}
	e, err := testupstream.DecodeEcho(resp)
	if err != nil {
		t.Fatal(err)
	}
	want := testupstream.Echo{
		Method: "POST", Path: "/echo/a/b", RawQuery: "x=1&y=%20", RequestURI: "/echo/a/b?x=1&y=%20",
		Proto: "HTTP/1.1", Host: "example.test", ContentLength: 5,
		BodySHA256: sha([]byte("hello")), BodyLen: 5, Upstream: "up1",
	}
	got := *e
	got.Headers, got.RemoteAddr = nil, ""
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("echo =\n%+v\nwant\n%+v", got, want)
	}
	if !slices.Equal(e.Headers["X-Multi"], []string{"a", "b"}) || e.Headers["X-Forwarded-For"][0] != "10.0.0.1" {
		t.Errorf("headers = %v", e.Headers)
	}
	if !strings.HasPrefix(e.RemoteAddr, "127.0.0.1:") {
		t.Errorf("remote_addr = %q", e.RemoteAddr)
	}

	last := u.LastRequest()
	if last.Method != "POST" || last.URL.Path != "/echo/a/b" || last.URL.RawQuery != "x=1&y=%20" ||
		last.Proto != "HTTP/1.1" || last.Host != "example.test" || last.Header.Get("X-Forwarded-For") != "10.0.0.1" {
		t.Errorf("LastRequest = %+v", last)
	}
	if string(last.Body) != "hello" || last.BodyLen != 5 || !last.BodyComplete || last.BodyTruncated {
		t.Errorf("LastRequest body = %q len %d complete %v truncated %v", last.Body, last.BodyLen, last.BodyComplete, last.BodyTruncated)
	}
	if u.Requests() != 1 || u.Connections() != 1 {
		t.Errorf("Requests = %d, Connections = %d, want 1, 1", u.Requests(), u.Connections())
	}
}

// Any path that is not a mode echoes, exactly as sent: no cleaning, no
// redirect.
func TestEchoIsDefaultAndPathIsRaw(t *testing.T) {
	t.Parallel()
	u := testupstream.Start(t)
	c := dial(t, u)
	write(t, c, "GET /x/../y//z/%2Fenc?q HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, resp, 200)
	e, err := testupstream.DecodeEcho(resp)
	if err != nil {
		t.Fatal(err)
	}
	if e.RequestURI != "/x/../y//z/%2Fenc?q" || e.Path != "/x/../y//z//enc" || e.RawQuery != "q" || e.BodyLen != 0 ||
		e.BodySHA256 != sha(nil) || e.Headers["Connection"][0] != "close" {
		t.Errorf("echo = %+v", e)
	}
}

// A large upload of unknown length is streamed: hash and length match,
// LastRequest keeps only MaxRecordedBody bytes.
func TestEchoLargeStreamedUpload(t *testing.T) {
	t.Parallel()
	u := testupstream.Start(t)
	const n = 16 << 20
	h := sha256.New()
	body := io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{1}), n), h)
	req, _ := http.NewRequest(http.MethodPut, u.URL+"/echo/upload", io.NopCloser(body))
	req.Trailer = http.Header{"X-Checksum": nil}
	// The trailer value is only known once the body is read.
	req.Body = readCloser{io.MultiReader(body, eofHook(func() { req.Trailer.Set("X-Checksum", "done") }))}
	resp, err := u.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	e, err := testupstream.DecodeEcho(resp)
	if err != nil {
		t.Fatal(err)
	}
	if e.BodyLen != n || e.BodySHA256 != hex.EncodeToString(h.Sum(nil)) {
		t.Errorf("body_len %d sha %s, want %d %x", e.BodyLen, e.BodySHA256, n, h.Sum(nil))
	}
	if !slices.Equal(e.TransferEncoding, []string{"chunked"}) || e.ContentLength != -1 {
		t.Errorf("transfer_encoding %v content_length %d", e.TransferEncoding, e.ContentLength)
	}
	if got := e.Trailers["X-Checksum"]; !slices.Equal(got, []string{"done"}) {
		t.Errorf("trailers = %v", e.Trailers)
	}
	last := u.LastRequest()
	if last.BodyLen != n || len(last.Body) != testupstream.MaxRecordedBody || !last.BodyTruncated || !last.BodyComplete ||
		last.Trailer.Get("X-Checksum") != "done" {
		t.Errorf("LastRequest: BodyLen %d, len(Body) %d, truncated %v, complete %v, trailer %v",
			last.BodyLen, len(last.Body), last.BodyTruncated, last.BodyComplete, last.Trailer)
	}
}

type readCloser struct{ io.Reader }

func (readCloser) Close() error { return nil }

type eofHook func()

func (f eofHook) Read([]byte) (int, error) { f(); return 0, io.EOF }

// ---- /status, /headers, /bytes, /chunked ----

func TestStatus(t *testing.T) {
	t.Parallel()
	u := testupstream.Start(t)
	c := u.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, tc := range []struct {
		path   string
		code   int
		body   string
		header map[string]string
	}{
		{"/status/200", 200, "200 OK\n", nil},
		{"/status/201", 201, "201 Created\n", nil},
		{"/status/404", 404, "404 Not Found\n", nil},
		{"/status/503?retry_after=7", 503, "503 Service Unavailable\n", map[string]string{"Retry-After": "7"}},
		{"/status/302?location=/elsewhere", 302, "302 Found\n", map[string]string{"Location": "/elsewhere"}},
		{"/status/429?set=X-Rate:0", 429, "429 Too Many Requests\n", map[string]string{"X-Rate": "0"}},
		{"/status/599", 599, "599 \n", nil},
		{"/status/204", 204, "", nil},
		{"/status/304", 304, "", nil},
	} {
		resp := get(t, c, u.URL+tc.path)
		body := readBody(t, resp)
		if resp.StatusCode != tc.code || string(body) != tc.body {
			t.Errorf("%s: %d %q, want %d %q", tc.path, resp.StatusCode, body, tc.code, tc.body)
		}
		for k, v := range tc.header {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", tc.path, k, got, v)
			}
		}
	}
	for _, path := range []string{"/status/abc", "/status/42", "/status/600", "/status/101", "/status/"} {
		resp := get(t, c, u.URL+path)
		if resp.StatusCode != 400 {
			t.Errorf("%s: %s, want 400", path, resp.Status)
		}
	}
}

// /status/1xx sends the informational response, then a final 200.
func TestStatusInformational(t *testing.T) {
	t.Parallel()
	u := testupstream.Start(t)
	var got []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		got = append(got, fmt.Sprintf("%d %s", code, h.Get("Link")))
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace),
		http.MethodGet, u.URL+"/status/103?set=Link:</style.css>", nil)
	resp, err := u.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	wantStatus(t, resp, 200)
	if !slices.Equal(got, []string{"103 </style.css>"}) {
		t.Errorf("1xx responses = %q", got)
	}
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	u := testupstream.Start(t)
	// Raw, so that nothing between the wire and the test drops headers.
	c := dial(t, u)
	write(t, c, "GET /headers?set=Connection:X-Secret&set=X-Secret:1&set=X-Multi:a&set=x-multi:b&set=X-Link:%3Ca%3E%3B%20rel%3Dpreload HTTP/1.1\r\nHost: h\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, resp, 200)
	if got := resp.Header["Connection"]; !slices.Equal(got, []string{"X-Secret"}) {
		t.Errorf("Connection = %q", got)
	}
	if got := resp.Header.Get("X-Secret"); got != "1" {
		t.Errorf("X-Secret = %q", got)
	}
	if got := resp.Header["X-Multi"]; !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("X-Multi = %q", got)
	}
	if got := resp.Header.Get("X-Link"); got != "<a>; rel=preload" {
		t.Errorf("X-Link = %q", got)
	}

	cl := u.Client()
	for _, path := range []string{"/headers?set=novalue", "/headers?set=:v", "/headers?set=A:b;c"} {
		if resp := get(t, cl, u.URL+path); resp.StatusCode != 400 {
			t.Errorf("%s: %s, want 400", path, resp.Status)
		}
	}
}

func TestBytes(t *testing.T) {
	t.Parallel()
	u := testupstream.Start(t)
	c := u.Client()
	for _, n := range []int{0, 1, 1024, 100_000} {
		resp := get(t, c, u.URL+"/bytes/"+strconv.Itoa(n))
		wantStatus(t, resp, 200)
		body := readBody(t, resp)
		if resp.ContentLength != int64(n) || !bytes.Equal(body, testupstream.Pattern(n)) {
			t.Errorf("/bytes/%d: Content-Length %d, %d bytes, equal pattern %v", n, resp.ContentLength, len(body), bytes.Equal(body, testupstream.Pattern(n)))
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
			t.Errorf("Content-Type = %q", ct)
		}
	}
	if p := string(testupstream.Pattern(28)); p != "abcdefghijklmnopqrstuvwxyzab" {
		t.Errorf("Pattern(28) = %q", p)
	}
	resp := get(t, c, u.URL+"/bytes/007")
	if body := readBody(t, resp); resp.Header.Get("Content-Length") != "7" || string(body) != "abcdefg" {
		t.Errorf("/bytes/007: Content-Length %q body %q", resp.Header.Get("Content-Length"), body)
	}
	resp, err := c.Head(u.URL + "/bytes/10")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ContentLength != 10 {
		t.Errorf("HEAD /bytes/10: Content-Length %d", resp.ContentLength)
	}
	for _, path := range []string{"/bytes/-1", "/bytes/x", "/bytes/", "/bytes/1/2"} {
		if resp := get(t, c, u.URL+path); resp.StatusCode != 400 {
			t.Errorf("%s: %s, want 400", path, resp.Status)
		}
	}
}

func TestChunked(t *testing.T) {
	t.Parallel()
	u := testupstream.Start(t)
	// The wire: one chunk per flush, of exactly size bytes.
	c := dial(t, u)
	write(t, c, "GET /chunked?chunks=4&size=1000 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
	raw, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	head, body, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !ok || !bytes.Contains(head, []byte("\r\nTransfer-Encoding: chunked")) {
		t.Fatalf("response head:\n%s", head)
	}
	var sizes []int64
	var content []byte
	br := bufio.NewReader(bytes.NewReader(body))
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("chunk size line: %v (sizes so far %v)", err, sizes)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(line), 16, 64)
		if err != nil {
			t.Fatalf("chunk size %q: %v", line, err)
		}
		if n == 0 {
			break
		}
		sizes = append(sizes, n)
		chunk := make([]byte, n+2)
		if _, err := io.ReadFull(br, chunk); err != nil {
			t.Fatal(err)
		}
		content = append(content, chunk[:n]...)
	}
	if !slices.Equal(sizes, []int64{1000, 1000, 1000, 1000}) || !bytes.Equal(content, testupstream.Pattern(4000)) {
		t.Errorf("chunk sizes %v, content equal pattern %v", sizes, bytes.Equal(content, testupstream.Pattern(4000)))
	}

	// And through net/http.
	resp := get(t, u.Client(), u.URL+"/chunked?chunks=3&size=70000")
	got := readBody(t, resp)
	if !slices.Equal(resp.TransferEncoding, []string{"chunked"}) || resp.ContentLength != -1 || !bytes.Equal(got, testupstream.Pattern(210000)) {
		t.Errorf("TransferEncoding %v ContentLength %d len %d", resp.TransferEncoding, resp.ContentLength, len(got))
	}
	if resp := get(t, u.Client(), u.URL+"/chunked?size=0"); resp.StatusCode != 400 {
		t.Errorf("size=0: %s, want 400", resp.Status)
	}
}

// ---- /sse ----

type event struct{ id, data string }

func readEvent(t *testing.T, br *bufio.Reader) (event, error) {
	t.Helper()
	var e event
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return e, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			return e, nil
		}
		k, v, _ := strings.Cut(line, ": ")
		switch k {
		case "id":
			e.id = v
		case "data":
			e.data = v
		}
	}
}

func TestSSE(t *testing.T) {
	t.Parallel()
	u := testupstream.Start(t)
	resp := get(t, u.Client(), u.URL+"/sse?events=5&interval=1ms")
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type = %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	for i := 1; i <= 5; i++ {
		e, err := readEvent(t, br)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if want := (event{strconv.Itoa(i), fmt.Sprintf("event %d", i)}); e != want {
			t.Fatalf("event %d = %+v, want %+v", i, e, want)
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after the last event: %v, want EOF", err)
	}
}

// Events are flushed as written: the first event is read while the server
// waits an hour before the second.
func TestSSEIncremental(t *testing.T) {
	t.Parallel()
	u := testupstream.Start(t)
	resp := get(t, u.Client(), u.URL+"/sse?events=3&interval=1h")
	br := bufio.NewReader(resp.Body)
	e, err := readEvent(t, br)
	if err != nil {
		t.Fatal(err)
	}
	if e != (event{"1", "event 1"}) {
		t.Errorf("first event = %+v", e)
	}
	resp.Body.Close()
}

// ---- /fault ----

func TestFaultReset(t *testing.T) {
	t.Parallel()
	u := testupstream.Start(t)
	c := dial(t, u)
	write(t, c, "POST /fault/reset HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc")
	n, err := c.Read(make([]byte, 100))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("raw read: %d bytes, %v; want ECONNRESET", n, err)
	}
	if last := u.LastRequest(); string(last.Body) != "abc" || !last.BodyComplete {
		t.Errorf("request body not read: %q complete %v", last.Body, last.BodyComplete)
	}

	_, err = u.Client().Get(u.URL + "/fault/reset")
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("client: %v; want ECONNRESET", err)
	}
}

func TestFaultResetMidResponse(t *testing.T) {
	t.Parallel()
	u := testupstream.Start(t, testupstream.WithName("n"))
	resp := get(t, u.Client(), u.URL+"/fault/reset-mid-response")
	wantStatus(t, resp, 200)
	if resp.ContentLength != 1000 || resp.Header.Get("X-Upstream-Name") != "n" {
		t.Errorf("ContentLength %d, header %v", resp.ContentLength, resp.Header)
	}
	body, err := io.ReadAll(resp.Body)
	if err == nil || len(body) >= 1000 || !bytes.Equal(body, testupstream.Pattern(len(body))) {
		t.Errorf("body: %d bytes, %v; want a short pattern prefix and an error", len(body), err)
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Logf("body error is %v (not ECONNRESET)", err)
	}

	// Raw: head, 100 body bytes, then a reset.
	c := dial(t, u)
	write(t, c, "GET /fault/reset-mid-response?sent=100 HTTP/1.1\r\nHost: h\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err = io.ReadAll(resp.Body)
	if len(body) != 100 || !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("raw: %d body bytes, %v; want 100 and ECONNRESET", len(body), err)
	}
}

func TestFaultGarbage(t *testing.T) {
	t.Parallel()
	u := testupstream.Start(t)
	_, err := u.Client().Get(u.URL + "/fault/garbage")
	if err == nil || !strings.Contains(err.Error(), "malformed HTTP response") {
		t.Errorf("client: %v; want a malformed-response error", err)
	}
	c := dial(t, u)
	write(t, c, "GET /fault/garbage HTTP/1.1\r\nHost: h\r\n\r\n")
	raw, err := io.ReadAll(c)
	if string(raw) != "this-is-not-http\r\n\r\n" || err != nil {
		t.Errorf("raw: %q, %v", raw, err)
	}
}

func TestFaultCloseAfterHeaders(t *testing.T) {
	t.Parallel()
	u := testupstream.Start(t)
	resp := get(t, u.Client(), u.URL+"/fault/close-after-headers")
	wantStatus(t, resp, 200)
	body, err := io.ReadAll(resp.Body)
	if resp.ContentLength != 1000 || len(body) != 0 || err != io.ErrUnexpectedEOF {
		t.Errorf("ContentLength %d, %d bytes, %v; want 1000, 0, unexpected EOF", resp.ContentLength, len(body), err)
	}
}

func TestFaultStall(t *testing.T) {
	t.Parallel()
	u := testupstream.Start(t)
	c := u.Client()
	// Connect first, so that the timeout below is spent waiting for the
	// answer, not dialing.
	readBody(t, get(t, c, u.URL+"/bytes/0"))
	c.Timeout = 100 * time.Millisecond
	_, err := c.Get(u.URL + "/fault/stall")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("got %v, want a client timeout", err)
	}
	waitFor(t, "the upstream to see the request", func() bool { return u.Requests() == 2 })
	if p := u.LastRequest().URL.Path; p != "/fault/stall" {
		t.Errorf("last request %q", p)
	}
}

func TestFaultSlow(t *testing.T) {
	t.Parallel()
	u := testupstream.Start(t)
	start := time.Now()
	resp := get(t, u.Client(), u.URL+"/fault/slow?delay=30ms")
	wantStatus(t, resp, 200)
	if _, err := testupstream.DecodeEcho(resp); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 30*time.Millisecond { // a lower bound only
		t.Errorf("answered after %v, before the delay", d)
	}
	for _, path := range []string{"/fault/slow?delay=x", "/fault/slow?delay=-1s"} {
		if resp := get(t, u.Client(), u.URL+path); resp.StatusCode != 400 {
			t.Errorf("%s: %s, want 400", path, resp.Status)
		}
	}
	// Milliseconds work too.
	if resp := get(t, u.Client(), u.URL+"/fault/slow?delay=1"); resp.StatusCode != 200 {
		t.Errorf("delay=1: %s", resp.Status)
	}
}

func TestFaultSlowBody(t *testing.T) {
	t.Parallel()
	u := testupstream.Start(t)
	// Headers arrive at once although the first chunk is an hour away.
	resp := get(t, u.Client(), u.URL+"/fault/slow-body?chunks=2&interval=1h")
	wantStatus(t, resp, 200)
	resp.Body.Close()

	resp = get(t, u.Client(), u.URL+"/fault/slow-body?chunks=4&size=10&interval=1ms")
	if body := readBody(t, resp); !bytes.Equal(body, testupstream.Pattern(40)) || resp.ContentLength != -1 {
		t.Errorf("body %q, ContentLength %d", body, resp.ContentLength)
	}
}

func TestFaultUnknown(t *testing.T) {
	t.Parallel()
	u := testupstream.Start(t)
	if resp := get(t, u.Client(), u.URL+"/fault/nope"); resp.StatusCode != 404 {
		t.Errorf("%s, want 404", resp.Status)
	}
}

// ---- Expect: 100-continue ----

func TestContinueRaw(t *testing.T) {
	t.Parallel()
	u := testupstream.Start(t)

	c := dial(t, u)
	write(t, c, "POST /continue/accept HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, resp, 100)
	write(t, c, "hello")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, resp, 201)
	if e, err := testupstream.DecodeEcho(resp); err != nil || e.BodyLen != 5 || e.BodySHA256 != sha([]byte("hello")) {
		t.Errorf("echo %+v, %v", e, err)
	}

	c = dial(t, u)
	write(t, c, "POST /continue/reject HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	resp, err = http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, resp, 417) // first response, so no 100 before it
	if last := u.LastRequest(); last.BodyLen != 0 || last.BodyComplete {
		t.Errorf("reject read the body: %d bytes", last.BodyLen)
	}
}

type countingBody struct {
	r     io.Reader
	reads atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) { b.reads.Add(1); return b.r.Read(p) }
func (b *countingBody) Close() error               { return nil }

func TestContinueClient(t *testing.T) {
	t.Parallel()
	u := testupstream.Start(t)
	c := u.Client()
	c.Transport.(*http.Transport).ExpectContinueTimeout = time.Hour // only a response releases the body
	for _, tc := range []struct {
		path      string
		code      int
		bodyReads bool
	}{
		{"/continue/accept", 201, true},
		{"/continue/reject", 417, false},
		{"/continue/reject?status=403", 403, false},
	} {
		body := &countingBody{r: strings.NewReader("hello")}
		req, _ := http.NewRequest(http.MethodPost, u.URL+tc.path, body)
		req.ContentLength = 5
		req.Header.Set("Expect", "100-continue")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || (body.reads.Load() > 0) != tc.bodyReads {
			t.Errorf("%s: %s, body reads %d; want %d, reads %v", tc.path, resp.Status, body.reads.Load(), tc.code, tc.bodyReads)
		}
	}
}

// ---- WebSocket ----

func TestWebSocketEcho(t *testing.T) {
	t.Parallel()
	u := testupstream.Start(t, testupstream.WithName("ws1"))
	ws, resp, err := testupstream.DialWebSocket(wsURL(u, "/ws"), http.Header{
		"X-Test":                 {"1"},
		"Sec-Websocket-Protocol": {"chat, superchat"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Protocol") != "chat" || resp.Header.Get("X-Upstream-Name") != "ws1" {
		t.Errorf("handshake response %s %v", resp.Status, resp.Header)
	}
	if err := ws.WriteText("hello"); err != nil {
		t.Fatal(err)
	}
	if got, err := ws.ReadText(); got != "hello" || err != nil {
		t.Errorf("ReadText = %q, %v", got, err)
	}
	for _, n := range []int{0, 125, 126, 200, 65535, 70_000} {
		msg := testupstream.Pattern(n)
		if err := ws.WriteBinary(msg); err != nil {
			t.Fatal(err)
		}
		op, got, err := ws.ReadMessage()
		if err != nil || op != testupstream.OpBinary || !bytes.Equal(got, msg) {
			t.Errorf("binary %d: op %d, %d bytes, %v", n, op, len(got), err)
		}
	}
	if err := ws.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if last := u.LastRequest(); last.Header.Get("X-Test") != "1" || last.Header.Get("Upgrade") != "websocket" {
		t.Errorf("upstream saw %v", last.Header)
	}
	waitFor(t, "the upstream to close the WebSocket connection", func() bool { return u.OpenConnections() == 0 })
}

// The wire format, independent of the package's own client: RFC 6455's
// masked "Hello" example in, an unmasked "Hello" out, then a close.
func TestWebSocketWire(t *testing.T) {
	t.Parallel()
	if got := testupstream.WSAccept("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Errorf("WSAccept = %q", got)
	}
	u := testupstream.Start(t)
	c := dial(t, u)
	write(t, c, "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("handshake: %s %v", resp.Status, resp.Header)
	}
	c.Write([]byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58})
	got := make([]byte, 7)
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "\x81\x05Hello" {
		t.Errorf("echo frame %q, %v", got, err)
	}
	// An unmasked client frame is a protocol error: close 1002, then EOF.
	c.Write([]byte{0x81, 0x02, 'h', 'i'})
	hdr := make([]byte, 4)
	if _, err := io.ReadFull(br, hdr); err != nil || hdr[0] != 0x88 || int(hdr[2])<<8|int(hdr[3]) != 1002 {
		t.Errorf("close frame header %x, %v", hdr, err)
	}
	io.CopyN(io.Discard, br, int64(hdr[1]&0x7f)-2)
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after close: %v, want EOF", err)
	}
}

func TestWebSocketRejected(t *testing.T) {
	t.Parallel()
	u := testupstream.Start(t)
	if resp := get(t, u.Client(), u.URL+"/ws"); resp.StatusCode != 400 {
		t.Errorf("plain GET /ws: %s, want 400", resp.Status)
	}
	_, resp, err := testupstream.DialWebSocket(wsURL(u, "/ws"), http.Header{"Sec-Websocket-Version": {"8"}})
	if err == nil || resp == nil || resp.StatusCode != 426 || resp.Header.Get("Sec-WebSocket-Version") != "13" {
		t.Errorf("version 8: %v, %v", resp, err)
	}
}

// ---- options ----

func TestH2C(t *testing.T) {
	t.Parallel()
	u := testupstream.Start(t, testupstream.WithH2C())
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	c := &http.Client{Transport: &http.Transport{Protocols: p}}
	defer c.CloseIdleConnections()
	resp := get(t, c, u.URL+"/echo")
	if resp.Proto != "HTTP/2.0" {
		t.Errorf("Proto = %q", resp.Proto)
	}
	if e, err := testupstream.DecodeEcho(resp); err != nil || e.Proto != "HTTP/2.0" {
		t.Errorf("echo %+v, %v", e, err)
	}
	// The raw faults become stream resets.
	for _, path := range []string{"/fault/reset", "/fault/garbage"} {
		if _, err := c.Get(u.URL + path); err == nil {
			t.Errorf("%s over h2c: no error", path)
		}
	}
	resp = get(t, c, u.URL+"/fault/close-after-headers")
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Errorf("close-after-headers over h2c: no body error")
	}
	// HTTP/1.1 on the same port.
	c1 := &http.Client{Transport: &http.Transport{}}
	defer c1.CloseIdleConnections()
	resp = get(t, c1, u.URL+"/echo")
	if e, err := testupstream.DecodeEcho(resp); err != nil || resp.Proto != "HTTP/1.1" || e.Proto != "HTTP/1.1" {
		t.Errorf("HTTP/1: Proto %q, echo %+v, %v", resp.Proto, e, err)
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	u := testupstream.Start(t, testupstream.WithTLS())
	if !strings.HasPrefix(u.URL, "https://") || u.Certificate() == nil {
		t.Fatalf("URL %q", u.URL)
	}
	resp := get(t, u.Client(), u.URL+"/echo")
	if resp.TLS == nil || resp.Proto != "HTTP/2.0" {
		t.Errorf("TLS %v Proto %q", resp.TLS != nil, resp.Proto)
	}
	if e, err := testupstream.DecodeEcho(resp); err != nil || !e.TLS {
		t.Errorf("echo %+v, %v", e, err)
	}
	// HTTP/1.1 over TLS still hijacks for the raw faults.
	c1 := &http.Client{Transport: &http.Transport{TLSClientConfig: u.ClientTLSConfig()}}
	defer c1.CloseIdleConnections()
	if _, err := c1.Get(u.URL + "/fault/reset"); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("reset over TLS: %v", err)
	}
	if _, err := c1.Get(u.URL + "/fault/garbage"); err == nil || !strings.Contains(err.Error(), "malformed HTTP response") {
		t.Errorf("garbage over TLS: %v", err)
	}
	// wss://
	ws, _, err := (&testupstream.WSDialer{TLSConfig: u.ClientTLSConfig()}).Dial("wss"+strings.TrimPrefix(u.URL, "https")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.WriteText("secure")
	if got, err := ws.ReadText(); got != "secure" || err != nil {
		t.Errorf("wss echo %q, %v", got, err)
	}
}

// CloseIdle closes a connection as soon as it is idle, without announcing
// it, so a client reusing it meets a stale connection.
func TestCloseIdle(t *testing.T) {
	t.Parallel()
	u := testupstream.Start(t, testupstream.WithCloseIdle())
	c := dial(t, u)
	write(t, c, "GET /bytes/3 HTTP/1.1\r\nHost: h\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, resp); string(body) != "abc" || resp.Close {
		t.Errorf("body %q, Close %v (want no Connection: close)", body, resp.Close)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("idle connection: %v, want EOF", err)
	}

	// A client retries its idempotent requests on new connections.
	cl := u.Client()
	for range 3 {
		resp := get(t, cl, u.URL+"/bytes/1")
		readBody(t, resp)
		resp.Body.Close()
	}
	if u.Requests() != 4 || u.Connections() != 4 {
		t.Errorf("Requests %d Connections %d, want 4 and 4", u.Requests(), u.Connections())
	}
}

// CloseIdle leaves HTTP/2 connections alone (an h2 connection is "idle"
// from its start).
func TestCloseIdleH2C(t *testing.T) {
	t.Parallel()
	u := testupstream.Start(t, testupstream.WithH2C(), testupstream.WithCloseIdle())
	c := u.Client()
	defer c.CloseIdleConnections()
	for range 3 {
		resp := get(t, c, u.URL+"/bytes/1")
		readBody(t, resp)
		if resp.Proto != "HTTP/2.0" {
			t.Fatalf("Proto %q", resp.Proto)
		}
	}
	if u.Connections() != 1 {
		t.Errorf("Connections %d, want 1", u.Connections())
	}
	// HTTP/1.1 on the same upstream is still closed when idle.
	c1 := dial(t, u)
	write(t, c1, "GET /bytes/1 HTTP/1.1\r\nHost: h\r\n\r\n")
	br := bufio.NewReader(c1)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("idle HTTP/1.1 connection: %v, want EOF", err)
	}
}

func TestCountersAndReset(t *testing.T) {
	t.Parallel()
	u := testupstream.Start(t)
	c := u.Client()
	for range 3 {
		readBody(t, get(t, c, u.URL+"/bytes/0"))
	}
	if u.Requests() != 3 || u.Connections() != 1 || u.LastRequest() == nil {
		t.Errorf("Requests %d Connections %d", u.Requests(), u.Connections())
	}
	u.Reset()
	if u.Requests() != 0 || u.Connections() != 0 || u.LastRequest() != nil {
		t.Errorf("after Reset: Requests %d Connections %d LastRequest %v", u.Requests(), u.Connections(), u.LastRequest())
	}

	n := testupstream.Start(t, testupstream.WithNoRecord())
	readBody(t, get(t, n.Client(), n.URL+"/echo"))
	if n.Requests() != 1 || n.LastRequest() != nil {
		t.Errorf("NoRecord: Requests %d LastRequest %v", n.Requests(), n.LastRequest())
	}
}

// ---- Close ----

// packageGoroutines returns the stacks of goroutines running code of
// package testupstream (not of this test package).
func packageGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "gatehouse/internal/testupstream.") {
			found = append(found, g)
		}
	}
	return found
}

// Close returns promptly while requests of every long-lived kind are open
// (HTTP/1.1 and h2c, hijacked or not), fails them, and leaves no goroutine
// of the package behind. Not parallel: it counts goroutines.
func TestCloseWithOpenRequests(t *testing.T) {
	before := runtime.NumGoroutine()
	u, err := testupstream.New(testupstream.Options{H2C: true})
	if err != nil {
		t.Fatal(err)
	}
	c1 := &http.Client{Transport: &http.Transport{}}
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	c2 := &http.Client{Transport: &http.Transport{Protocols: p}}

	var wg sync.WaitGroup
	errs := make(chan error, 10)
	open := func(c *http.Client, method, path string, body io.Reader) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(method, u.URL+path, body)
			resp, err := c.Do(req)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if err == nil {
				err = fmt.Errorf("%s %s completed", method, path)
			} else {
				err = nil
			}
			errs <- err
		}()
	}
	pr, pw := io.Pipe() // an upload that never ends
	go pw.Write([]byte("partial"))
	open(c1, "GET", "/fault/stall", nil)
	open(c1, "GET", "/fault/slow?delay=1h", nil)
	open(c1, "GET", "/sse?events=2&interval=1h", nil)
	open(c1, "GET", "/fault/slow-body?interval=1h", nil)
	open(c1, "POST", "/echo", pr)
	open(c2, "GET", "/fault/stall", nil)
	open(c2, "GET", "/sse?events=2&interval=1h", nil)
	ws, _, err := testupstream.DialWebSocket(wsURL(u, "/ws"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.WriteText("x")
	if _, err := ws.ReadText(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "8 requests", func() bool { return u.Requests() == 8 })

	closed := make(chan error, 1)
	go func() { closed <- u.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung with open requests")
	}
	pw.CloseWithError(errors.New("upload abandoned"))
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if _, err := ws.ReadText(); err == nil {
		t.Error("WebSocket still open after Close")
	}
	ws.Close()
	if err := u.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := net.Dial("tcp", u.Addr); err == nil {
		t.Error("still listening after Close")
	}
	c1.CloseIdleConnections()
	c2.CloseIdleConnections()

	waitFor(t, "package goroutines to exit", func() bool { return len(packageGoroutines()) == 0 })
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Close, %d before", n, before)
	}
}

// ---- benchmark path ----

// discardWriter is a ResponseWriter that costs nothing, so that the
// benchmark measures the handler alone.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkBytesHandler measures the /bytes/{n} path of the handler (what
// cmd/testupstream serves the benchmark harness), without the network.
func BenchmarkBytesHandler(b *testing.B) {
	u, err := testupstream.New(testupstream.Options{NoRecord: true})
	if err != nil {
		b.Fatal(err)
	}
	defer u.Close()
	for _, n := range []string{"0", "1024"} {
		b.Run(n, func(b *testing.B) {
			req, _ := http.NewRequest(http.MethodGet, "/bytes/"+n, nil)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				u.ServeHTTP(w, req)
			}
		})
	}
}
